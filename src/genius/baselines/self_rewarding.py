"""Self-Rewarding (Yuan et al. 2024): the model judges its own candidates, best vs worst -> DPO.

For each query: k candidates; the same model judges every candidate ``judge_samples`` times
with the additive 5-point LLM-as-a-judge prompt (genius.baselines.prompts); a judgement's
score is its last "Score: X" (0-5; judgements without one are ignored) and a candidate's
score is the mean of its parsed judgements. chosen = the highest-scored candidate, rejected =
the lowest; a query whose candidates all score the same (or with fewer than two scored
candidates) gives no pair. Iterations use the newly trained model as the next generator,
judge and DPO reference. Option (not in the paper): ``judge_prefix: "Score: "`` starts every
judgement with "Score: " so that a small model states a score at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from genius.baselines.common import QueryResult, generate, sample
from genius.baselines.config import BaselineConfig
from genius.baselines.prompts import judge_prompt
from genius.engines.base import Engine
from genius.models import chat_prompt_ids
from genius.queries import Query

_SCORE = re.compile(r"score\s*:\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_score(judgement: str) -> float | None:
    """The judgement's last "Score: X" when X is in [0, 5], else None."""
    matches = _SCORE.findall(judgement)
    if not matches:
        return None
    value = float(matches[-1])
    return value if 0 <= value <= 5 else None


def mean_score(judgements: Sequence[str]) -> float | None:
    """Mean of the parsed scores of one candidate's judgements (None when none parses)."""
    scores = [s for s in map(parse_score, judgements) if s is not None]
    return sum(scores) / len(scores) if scores else None


def best_worst(scores: Sequence[float | None]) -> tuple[int, int] | None:
    """(index of the best, index of the worst) candidate; the first one wins a tie within
    the best or the worst; None when fewer than two are scored or all scores are equal."""
    scored = [(i, s) for i, s in enumerate(scores) if s is not None]
    if len(scored) < 2:
        return None
    best = max(scored, key=lambda t: t[1])  # max/min return the first of equal items
    worst = min(scored, key=lambda t: t[1])
    if best[1] == worst[1]:
        return None
    return best[0], worst[0]


def process(batch: list[Query], engine: Engine | None, cfg: BaselineConfig, seed: int) -> list[QueryResult]:
    assert engine is not None
    candidates = [[r.text for r in rs] for rs in sample(engine, cfg, [q.messages for q in batch], n=cfg.k, seed=seed)]
    judge_prompts = [judge_prompt(q.messages, c) for q, cands in zip(batch, candidates) for c in cands]
    # A judge prompt that leaves no room for the judgement in the context is not judged (score None).
    room = engine.max_context - cfg.judge_max_new_tokens
    fits = [len(chat_prompt_ids(engine.tokenizer, m, cfg.judge_prefix)) <= room for m in judge_prompts]
    judged_fit = iter(generate(engine, [m for m, ok in zip(judge_prompts, fits) if ok], prefix=cfg.judge_prefix,
                               n=cfg.judge_samples, temperature=cfg.judge_temperature, top_p=cfg.top_p,
                               max_new_tokens=cfg.judge_max_new_tokens, seed=seed + 1))
    judgements = [[r.text for r in next(judged_fit)] if ok else [] for ok in fits]
    results = []
    for j, (q, cands) in enumerate(zip(batch, candidates)):
        judged = judgements[j * cfg.k:(j + 1) * cfg.k]
        scores = [mean_score(js) for js in judged]
        pick = best_worst(scores)
        records = []
        if pick is not None:
            w, l = pick
            records.append({"prompt": q.messages, "chosen": cands[w], "rejected": cands[l],
                            "score_w": scores[w], "score_l": scores[l]})
        results.append(QueryResult(q.id, records, {"candidates": cands, "scores": scores, "judgements": judged}))
    return results
