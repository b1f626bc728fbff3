"""SFT (supervised baseline): train on the corpus' own responses.

No generation: every query that carries a corpus response (Alpaca's ``output``) becomes one
SFT example ``{prompt, response}``; the trainer's ``sft`` loss fits the response tokens.
"""

from __future__ import annotations

from genius.baselines.common import QueryResult
from genius.baselines.config import BaselineConfig
from genius.engines.base import Engine
from genius.queries import Query


def sft_record(query: Query) -> dict | None:
    """The SFT example of a query, or None when its corpus response is missing or blank."""
    if query.response is None or not query.response.strip():
        return None
    return {"prompt": query.messages, "response": query.response, "weight": 1.0}


def process(batch: list[Query], engine: Engine | None, cfg: BaselineConfig, seed: int) -> list[QueryResult]:
    results = []
    for q in batch:
        record = sft_record(q)
        results.append(QueryResult(q.id, [record] if record else [], {"has_response": record is not None}))
    return results
