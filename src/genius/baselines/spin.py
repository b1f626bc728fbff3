"""SPIN (Chen et al. 2024, self-play fine-tuning; supervised baseline).

chosen = the corpus response, rejected = the current model's own response to the same query
(greedy by default, or sampled). Trained with DPO against the previous iteration as reference;
each iteration regenerates the rejected side with the newly trained model, so the model learns
to tell the corpus' responses from its own until it cannot.
"""

from __future__ import annotations

from genius.baselines.common import QueryResult, generate
from genius.baselines.config import BaselineConfig
from genius.engines.base import Engine
from genius.queries import Query


def spin_pair(messages: list[dict[str, str]], corpus_response: str, own_response: str) -> dict | None:
    """A SPIN pair, or None when either side is blank or the model already reproduces the
    corpus response (chosen == rejected carries no preference)."""
    if not corpus_response.strip() or not own_response.strip() or corpus_response.strip() == own_response.strip():
        return None
    return {"prompt": messages, "chosen": corpus_response, "rejected": own_response}


def process(batch: list[Query], engine: Engine | None, cfg: BaselineConfig, seed: int) -> list[QueryResult]:
    assert engine is not None
    # No assistant prefix: the corpus responses (chosen) do not start with one.
    own = generate(engine, [q.messages for q in batch], prefix="", n=1,
                   temperature=0.0 if cfg.spin_greedy else cfg.temperature, top_p=cfg.top_p,
                   max_new_tokens=cfg.max_new_tokens, seed=seed)
    results = []
    for q, [response] in zip(batch, own):
        pair = spin_pair(q.messages, q.response or "", response.text)
        results.append(QueryResult(q.id, [pair] if pair else [], {"own_response": response.text}))
    return results
