"""The one comparison of two evaluations: `genius eval compare` and every report use it, so the
same two folders give the same numbers everywhere.

- ``load_eval_dir``: the finished tasks of an evaluation folder (``<task>/metrics.json``) with
  each item's correctness (``<task>/samples.jsonl``);
- ``paired_difference``: B - A over the items both evaluated, its paired bootstrap 95% interval
  (``RESAMPLES`` resamples from ``random.Random(SEED)``) and the exact McNemar p-value;
- ``compare_runs``: that difference per task shared by two evaluation folders.
"""

from __future__ import annotations

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
    """Items only A got right."""
    only_b: int
    p_value: float
    """Exact McNemar, two-sided."""


def paired_difference(a: Mapping[str, bool], b: Mapping[str, bool]) -> Paired:
    """Compare two evaluations item by item (item id -> correct) over the ids both hold."""
    ids = sorted(set(a) & set(b))  # sorted: the resamples do not depend on file order
    xa = [float(a[i]) for i in ids]
    xb = [float(b[i]) for i in ids]
    diff, low, high = paired_bootstrap(xa, xb, rng=random.Random(SEED), resamples=RESAMPLES)
    only_a = sum(1 for x, y in zip(xa, xb) if x > y)
    only_b = sum(1 for x, y in zip(xa, xb) if y > x)
    n = len(ids)
    return Paired(n=n, acc_a=sum(xa) / n if n else 0.0, acc_b=sum(xb) / n if n else 0.0, diff=diff, low=low,
                  high=high, only_a=only_a, only_b=only_b, p_value=mcnemar_exact(only_a, only_b))


def load_eval_dir(path: Path) -> dict[str, dict[str, Any]]:
    """task -> {"accuracy", "ci", "n", "correct": {item id: bool}} of the finished tasks of one
    evaluation folder; {} when it holds none."""
    tasks = {}
    for metrics_path in sorted(Path(path).glob("*/metrics.json")):
        m = read_json(metrics_path)
        samples = metrics_path.parent / "samples.jsonl"
        correct = {str(r["id"]): bool(r.get("correct")) for r in read_jsonl(samples)} if samples.is_file() else {}
        ci = m.get("ci95") or [math.nan, math.nan]
        tasks[str(m.get("task", metrics_path.parent.name))] = {
            "accuracy": float(m.get("accuracy", 0.0)), "ci": (float(ci[0]), float(ci[1])),
            "n": int(m.get("n", len(correct))), "correct": correct}
    return tasks


def _load_for_compare(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_dir():
        raise UserError(f"{path}: no such run folder (expected the --out folder of a genius eval run)")
    tasks = load_eval_dir(path)
    if not any(t["correct"] for t in tasks.values()):
        raise UserError(f"{path}: holds no finished task (<task>/metrics.json and <task>/samples.jsonl; "
                        "expected the --out folder of a genius eval run)")
    return tasks


def compare_runs(run_a: Path, run_b: Path) -> dict[str, Paired]:
    """task -> B - A, per task both evaluation folders finished, over the items both answered."""
    a, b = _load_for_compare(Path(run_a)), _load_for_compare(Path(run_b))
    rows = {}
    for task in sorted(set(a) & set(b)):
        pr = paired_difference(a[task]["correct"], b[task]["correct"])
        if pr.n:
            rows[task] = pr
    if not rows:
        raise UserError(f"{run_a} and {run_b} share no task with common item ids; nothing to compare")
    return rows
