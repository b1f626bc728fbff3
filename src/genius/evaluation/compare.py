"""The one comparison of two evaluations: `genius eval compare` and every report use it, so the
same two folders give the same numbers everywhere.

- ``load_eval_dir``: the finished tasks of an evaluation folder (``<task>/metrics.json``) with
  each item's score (``<task>/samples.jsonl``): 1 or 0 for a checked answer (correct), the
  judge's score in [0, 1] for a judged task (Arena-Hard, AlpacaEval; WildBench's WB-Score share
  in [-0.8, 1] or WB-Reward in [-1, 1]; an item the judge failed on or gave no verdict for is
  left out);
- ``paired_difference``: B - A over the items both evaluated, of the mean score (accuracy,
  pass@1, win rate, WB-Score / 100 or WB-Reward / 100), its paired bootstrap 95% interval (``RESAMPLES``
  resamples from ``random.Random(SEED)``) and the exact McNemar p-value on the items each side
  won (score above 0.5: correct, preferred by the judge to the reference, or scored above 7.5
  of 10 by WildBench's judge; a WB-Reward above 0); with 0/1 scores that is the usual McNemar
  on correctness;
- ``compare_runs``: that difference per task shared by two evaluation folders.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genius.errors import UserError
from genius.evaluation.stats import mcnemar_exact, paired_bootstrap
from genius.io import read_json, read_jsonl

RESAMPLES = 10_000
SEED = 0


@dataclass(frozen=True)
class Paired:
    """B minus A on the items both evaluated."""

    n: int
    acc_a: float
    acc_b: float
    diff: float
    low: float
    high: float
    """The paired bootstrap 95% interval of ``diff``."""
    only_a: int
    """Items only A got right (judged: only A's answer won)."""
    only_b: int
    p_value: float
    """Exact McNemar, two-sided, on those two counts."""
    metric: str = "accuracy"
    """What the scores are: accuracy, pass@1 or win_rate (the task's metrics.json)."""


JUDGED_METRICS = ("win_rate", "wb_score", "wb_reward")
"""The metrics of judged tasks: an item's score is the judge's (win rate: 0..1, a tie half;
WildBench's WB-Score (judge score - 5) / 5 and WB-Reward -1..1), not its correctness."""
POINT_METRICS = ("wb_score", "wb_reward")
"""Metrics written as points (x 100 of a mean that can be negative), not as a share of items."""
WON_ABOVE = {"wb_reward": 0.0}
"""An item counts as won (right) when its score is above this (default 0.5): a WB-Reward above 0
means the judge preferred the answer to the reference's."""


def won_above(metric: str) -> float:
    return WON_ABOVE.get(metric, 0.5)


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], threshold: float = 0.5) -> Paired:
    """Compare two evaluations item by item (item id -> score: correct as bool or 0/1, or a
    judge's score) over the ids both hold; an item is won when its score is above ``threshold``."""
    ids = sorted(set(a) & set(b))  # sorted: the resamples do not depend on file order
    xa = [float(a[i]) for i in ids]
    xb = [float(b[i]) for i in ids]
    diff, low, high = paired_bootstrap(xa, xb, rng=random.Random(SEED), resamples=RESAMPLES)
    only_a = sum(1 for x, y in zip(xa, xb) if x > threshold >= y)
    only_b = sum(1 for x, y in zip(xa, xb) if y > threshold >= x)
    n = len(ids)
    return Paired(n=n, acc_a=sum(xa) / n if n else 0.0, acc_b=sum(xb) / n if n else 0.0, diff=diff, low=low,
                  high=high, only_a=only_a, only_b=only_b, p_value=mcnemar_exact(only_a, only_b))


def item_scores(records: list[dict], judged: bool) -> dict[str, float]:
    """item id -> score: the judge's for the records of a ``judged`` task (an item without one
    is left out), else 1.0 or 0.0 for its correctness."""
    if judged:
        return {str(r["id"]): float(r["score"]) for r in records if r.get("score") is not None}
    return {str(r["id"]): float(bool(r.get("correct"))) for r in records}


def load_eval_dir(path: Path) -> dict[str, dict[str, Any]]:
    """task -> {"accuracy", "ci", "n", "metric", "scores": {item id: score}, "correct": {item id:
    bool}} of the finished tasks of one evaluation folder ("accuracy" is the task's score:
    pass@1 for code, the win rate for judged tasks, None when no item has one; "correct" is
    score > won_above(metric)); {} when it holds none."""
    tasks = {}
    for metrics_path in sorted(Path(path).glob("*/metrics.json")):
        m = read_json(metrics_path)
        samples = metrics_path.parent / "samples.jsonl"
        metric = str(m.get("metric", "accuracy"))
        scores = item_scores(read_jsonl(samples), judged=metric in JUDGED_METRICS) if samples.is_file() else {}
        ci = m.get("ci95") or [math.nan, math.nan]
        accuracy = m.get("accuracy", 0.0)
        tasks[str(m.get("task", metrics_path.parent.name))] = {
            "accuracy": None if accuracy is None else float(accuracy), "ci": (float(ci[0]), float(ci[1])),
            "n": int(m.get("n", len(scores))), "metric": metric, "scores": scores,
            "correct": {i: s > won_above(metric) for i, s in scores.items()}}
    return tasks


def _load_for_compare(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder (expected the --out folder of a genius eval run)")
    tasks = load_eval_dir(path)
    if not any(t["scores"] for t in tasks.values()):
        raise UserError(f"{path}: holds no finished task (<task>/metrics.json and <task>/samples.jsonl; "
                        "expected the --out folder of a genius eval run)")
    return tasks


def compare_runs(run_a: Path, run_b: Path) -> dict[str, Paired]:
    """task -> B - A, per task both evaluation folders finished, over the items both answered."""
    a, b = _load_for_compare(Path(run_a)), _load_for_compare(Path(run_b))
    rows = {}
    for task in sorted(set(a) & set(b)):
        pr = paired_difference(a[task]["scores"], b[task]["scores"], won_above(a[task]["metric"]))
        if pr.n:
            rows[task] = dataclasses.replace(pr, metric=a[task]["metric"])
    if not rows:
        raise UserError(f"{run_a} and {run_b} share no task with common item ids; nothing to compare")
    return rows
