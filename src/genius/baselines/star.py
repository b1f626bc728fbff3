"""STaR (Zelikman et al. 2022), unsupervised variant: keep the rationales the majority agrees with.

STaR keeps self-generated rationales whose final answer is correct and fine-tunes on them.
Without labels, "correct" becomes "agrees with the majority of the model's own k samples"
(the label-free proxy, see genius.baselines.voting: final answers, else final sentences,
clustered by token-set Jaccard similarity; a rationale cut off by the token budget states no
answer and casts no vote). The kept rationales are SFT examples; as in STaR,
every outer iteration regenerates the rationales with the latest model and fine-tunes the
*base* model on them afresh.
"""

from __future__ import annotations

from collections.abc import Sequence

from genius.baselines.common import QueryResult, ballots, sample
from genius.baselines.config import BaselineConfig
from genius.baselines.voting import vote, vote_counts
from genius.engines.base import Engine
from genius.queries import Query


def majority_members(cluster_ids: Sequence[int | None], min_votes: int) -> list[int]:
    """Indices of the samples in the single largest cluster; empty when the largest cluster is
    tied with another (no majority) or holds fewer than ``min_votes`` samples."""
    counts = vote_counts(cluster_ids)
    if not counts:
        return []
    top = max(counts.values())
    winners = [c for c, v in counts.items() if v == top]
    if len(winners) != 1 or top < min_votes:
        return []
    return [i for i, c in enumerate(cluster_ids) if c == winners[0]]


def star_select(texts: Sequence[str], cluster_ids: Sequence[int | None], min_votes: int) -> list[int]:
    """Indices of the rationales to keep: majority members, an exact duplicate kept once."""
    kept: list[int] = []
    seen: set[str] = set()
    for i in majority_members(cluster_ids, min_votes):
        if texts[i] not in seen:
            seen.add(texts[i])
            kept.append(i)
    return kept


def process(batch: list[Query], engine: Engine | None, cfg: BaselineConfig, seed: int) -> list[QueryResult]:
    assert engine is not None
    samples = sample(engine, cfg, [q.messages for q in batch], n=cfg.k, seed=seed)
    results = []
    for q, responses in zip(batch, samples):
        texts = [r.text for r in responses]
        clusters = vote(ballots(responses, cfg.assistant_prefix), cfg.vote_threshold)
        kept = star_select(texts, clusters, cfg.star_min_votes)
        records = [{"prompt": q.messages, "response": texts[i], "weight": 1.0} for i in kept]
        results.append(QueryResult(q.id, records, {"samples": texts, "complete": [r.complete for r in responses],
                                                         "clusters": clusters, "kept_indices": kept}))
    return results
