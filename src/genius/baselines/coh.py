"""CoH (chain of hindsight, Liu et al. 2023), self-prompted as in the Genius paper's appendix.

The model is asked for a good and for a bad response to each query (the two prompts are in
genius.baselines.prompts); the pair is trained on the original query, chosen = the positive
response, rejected = the negative one, with DPO.
"""

from __future__ import annotations

from genius.baselines.common import QueryResult, sample
from genius.baselines.config import BaselineConfig
from genius.baselines.prompts import coh_prompts
from genius.engines.base import Engine
from genius.queries import Query


def coh_pair(messages: list[dict[str, str]], positive: str, negative: str, prefix: str = "") -> dict | None:
    """A CoH pair on the original query, or None when either response says nothing beyond the
    assistant prefix or both are the same text."""
    if not positive[len(prefix):].strip() or not negative[len(prefix):].strip() or positive == negative:
        return None
    return {"prompt": messages, "chosen": positive, "rejected": negative}


def process(batch: list[Query], engine: Engine | None, cfg: BaselineConfig, seed: int) -> list[QueryResult]:
    assert engine is not None
    prompts = [p for q in batch for p in coh_prompts(q.messages)]  # positive, negative, positive, ...
    outs = sample(engine, cfg, prompts, n=1, seed=seed)
    results = []
    for j, q in enumerate(batch):
        positive, negative = outs[2 * j][0].text, outs[2 * j + 1][0].text
        pair = coh_pair(q.messages, positive, negative, cfg.assistant_prefix)
        results.append(QueryResult(q.id, [pair] if pair else [], {"positive": positive, "negative": negative}))
    return results
