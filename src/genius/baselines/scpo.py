"""ScPO (Prasad et al. 2024, self-consistency preference optimisation).

For each query: k samples vote with their final answers (genius.baselines.voting; a sample cut
off by the token budget casts no vote but still counts in k). chosen = a
sample of the most-voted answer, rejected = a sample of the least-voted answer (a random pick
within the cluster, and among equally least-voted clusters), weight = vote margin / k =
(votes_w - votes_l) / k. Trained with the weighted DPO + NLL-on-chosen loss (``dpo_nll``,
the pair's ``weight`` scales its loss); iterations regenerate with the new model.

No pair when: no sample states an answer; the most-voted answer is tied with another (no
consistent preference); it holds fewer than ``scpo_min_votes`` votes (the paper's filter on
low-consistency queries); or every answer has the same number of votes (margin 0).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from genius.baselines.common import QueryResult, ballots, sample
from genius.baselines.config import BaselineConfig
from genius.baselines.voting import vote, vote_counts
from genius.engines.base import Engine
from genius.queries import Query


@dataclass(frozen=True)
class ScpoChoice:
    chosen: int
    rejected: int
    votes_w: int
    votes_l: int
    weight: float


def scpo_select(cluster_ids: Sequence[int | None], min_votes: int, rng: random.Random) -> ScpoChoice | None:
    """Most-voted vs least-voted sample of k = len(cluster_ids), weight = margin / k."""
    counts = vote_counts(cluster_ids)
    if not counts:
        return None
    top = max(counts.values())
    least = min(counts.values())
    winners = sorted(c for c, v in counts.items() if v == top)
    if len(winners) != 1 or top < min_votes or top == least:
        return None
    losers = sorted(c for c, v in counts.items() if v == least)
    loser = rng.choice(losers)
    chosen = rng.choice([i for i, c in enumerate(cluster_ids) if c == winners[0]])
    rejected = rng.choice([i for i, c in enumerate(cluster_ids) if c == loser])
    return ScpoChoice(chosen, rejected, top, least, (top - least) / len(cluster_ids))


def process(batch: list[Query], engine: Engine | None, cfg: BaselineConfig, seed: int) -> list[QueryResult]:
    assert engine is not None
    rng = random.Random(seed)
    samples = sample(engine, cfg, [q.messages for q in batch], n=cfg.k, seed=seed)
    results = []
    for q, responses in zip(batch, samples):
        texts = [r.text for r in responses]
        clusters = vote(ballots(responses, cfg.assistant_prefix), cfg.vote_threshold)
        choice = scpo_select(clusters, cfg.scpo_min_votes, rng)
        records = []
        if choice is not None:
            records.append({"prompt": q.messages, "chosen": texts[choice.chosen], "rejected": texts[choice.rejected],
                            "weight": choice.weight, "votes_w": choice.votes_w, "votes_l": choice.votes_l})
        results.append(QueryResult(q.id, records, {"samples": texts, "complete": [r.complete for r in responses],
                                                         "clusters": clusters}))
    return results
