"""The metrics of one evaluated task from its samples.jsonl records: pure functions, no I/O.

- accuracy: with one response per item, the share correct and its 95% Wilson interval; with
  several, the mean per-item share correct (normal interval over items), maj@n and pass@n;
- code tasks (``executes_code``): ``pass@1`` (the accuracy: with n samples the unbiased
  estimator of pass@1 is the mean share of passing samples) and pass@n;
- judged tasks: the win rate, the mean of the items' judge scores (a tie is half) over the items
  the judge gave a verdict on, with a percentile bootstrap 95% interval over items (the
  comparison's RESAMPLES and SEED); items whose judge failed or gave no verdict are counted
  apart, never as losses. ``accuracy`` holds the win rate too, so that every table shows it.
  WildBench's is WB-Score or WB-Reward / 100 instead (``wb_score``, ``wb_reward``: the same mean
  and interval of its item scores), with its per-category numbers and task macro
  (genius.evaluation.wildbench);
- per group (``group_by``, e.g. MMLU's subject): n and accuracy of each group, and the
  unweighted mean over groups beside the overall (per item) accuracy;
- counts of every task: no answer, truncated, prompt too long, mean tokens, seconds.
"""

from __future__ import annotations

import random
from typing import Any

from genius.evaluation.compare import RESAMPLES, SEED
from genius.evaluation.stats import bootstrap_interval, mean_interval, pass_at_k, wilson_interval
from genius.evaluation.tasks import Task
from genius.evaluation.wildbench import wildbench_metrics


def task_metrics(records: list[dict], samples: int, task: Task | None = None) -> dict[str, Any]:
    """Everything metrics.json holds about a task's answers (``task`` says what kind it is)."""
    metrics: dict[str, Any] = {"n": len(records), "samples": samples}
    if task is not None and task.judge:
        kind = _WILDBENCH.get(task.judge)  # WildBench's own numbers, not a win rate
        metrics.update(judged_metrics(records, f"wb_{kind}" if kind else "win_rate"))
        if kind:
            metrics.update(wildbench_metrics(records, kind))
    else:
        metrics.update(accuracy_metrics(records, samples))
        if task is not None and task.executes_code:
            metrics.update({"metric": "pass@1", "pass@1": metrics["accuracy"]})
        if task is not None and task.group_by:
            metrics["groups"] = group_metrics(records, task.group_by, samples)
    metrics.update(response_counts(records))
    return metrics


def item_score(record: dict) -> float:
    """An item's share of correct responses (1 or 0 with one response)."""
    group = record.get("samples") or [record]
    return sum(bool(s["correct"]) for s in group) / len(group)


def accuracy_metrics(records: list[dict], samples: int) -> dict[str, Any]:
    """Accuracy with its 95% interval; maj@n and pass@n with several samples."""
    n = len(records)
    if samples == 1:
        k = sum(bool(r["correct"]) for r in records)
        return {"accuracy": k / n if n else 0.0, "n_correct": k, "ci95": list(wilson_interval(k, n)),
                "ci_method": "wilson"}
    per_item = [r.get("samples") or [r] for r in records]
    scores = [item_score(r) for r in records]
    maj = sum(bool(r.get("majority_correct")) for r in records)
    return {"accuracy": sum(scores) / n if n else 0.0, "ci95": list(mean_interval(scores)),
            "ci_method": "normal over items", f"maj@{samples}": maj / n if n else 0.0,
            f"maj@{samples}_ci95": list(wilson_interval(maj, n)),
            f"pass@{samples}": (sum(pass_at_k(len(g), sum(bool(s["correct"]) for s in g), len(g))
                                    for g in per_item) / n) if n else 0.0}


_WILDBENCH = {"wildbench": "score", "wildbench_reward": "reward"}
"""WildBench's judge protocols -> which of its numbers (wb_score, wb_reward) the task reports."""


def judged_metrics(records: list[dict], metric: str = "win_rate") -> dict[str, Any]:
    """The mean of the items' judge scores (the win rate, or WildBench's share of points) over
    the items with one, its bootstrap interval, and the counts."""
    scores = [float(r["score"]) for r in records if r.get("score") is not None]
    failed = sum("judge_error" in r for r in records)
    rate = sum(scores) / len(scores) if scores else None
    out = {"metric": metric, metric: rate, "accuracy": rate,
           "ci95": list(bootstrap_interval(scores, rng=random.Random(SEED), resamples=RESAMPLES)),
           "ci_method": f"percentile bootstrap over items ({RESAMPLES} resamples, seed {SEED})",
           "n_judged": len(scores), "n_judge_failed": failed,
           "n_no_verdict": sum(r.get("score") is None and "judge_error" not in r and "judge" in r for r in records)}
    if metric == "win_rate":
        out["n_won"] = sum(s > 0.5 for s in scores)
    return out


def group_metrics(records: list[dict], key: str, samples: int) -> dict[str, Any]:
    """Per value of ``meta[key]``: n and accuracy (n_correct with one response per item)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(str((r.get("meta") or {}).get(key, "?")), []).append(r)
    per_group = {}
    for name in sorted(groups):
        scores = [item_score(r) for r in groups[name]]
        entry: dict[str, Any] = {"n": len(scores), "accuracy": sum(scores) / len(scores)}
        if samples == 1:
            entry["n_correct"] = int(sum(scores))
        per_group[name] = entry
    macro = sum(g["accuracy"] for g in per_group.values()) / len(per_group) if per_group else 0.0
    return {"by": key, "n_groups": len(per_group), "mean_over_groups": macro, "per_group": per_group}


def response_counts(records: list[dict]) -> dict[str, Any]:
    """Counts over every response: no answer, cut at the budget, prompt too long; tokens, time."""
    flat = [s for r in records for s in (r.get("samples") or [r])]
    seconds = sum(float(r.get("seconds") or 0.0) for r in records)
    return {"n_no_answer": sum(s["extracted"] is None for s in flat),
            "n_truncated": sum(s.get("finish_reason") == "length" for s in flat),
            "n_prompt_too_long": sum(s.get("finish_reason") == "prompt_too_long" for s in flat),
            "mean_tokens": sum(s["tokens"] for s in flat) / len(flat) if flat else 0.0,
            "seconds": seconds, "items_per_s": len(records) / seconds if seconds > 0 else None}
