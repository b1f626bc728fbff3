"""Markdown tables: the results of one run, and the paired comparison of two runs."""

from __future__ import annotations

import random
from pathlib import Path

from genius.errors import UserError
from genius.evaluation.stats import mcnemar_exact, paired_bootstrap
from genius.io import read_jsonl


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def results_table(metrics: dict[str, dict], title: str = "") -> str:
    """One row per task: n, accuracy, its 95% interval, maj@n / pass@n when sampled, no-answer
    count, mean tokens, seconds; a last row averages the accuracies (unweighted, as the paper)."""
    sampled = sorted({k for m in metrics.values() for k in m if k.startswith(("maj@", "pass@")) and "ci" not in k})
    too_long = any(m.get("n_prompt_too_long") for m in metrics.values())
    head = ["task", "n", "accuracy %", "95% CI", *sampled, "no answer", "truncated",
            *(["prompt too long"] if too_long else []), "mean tokens", "seconds"]
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in metrics.items():
        lo, hi = m["ci95"]
        row = [name, str(m["n"]), _pct(m["accuracy"]), f"{_pct(lo)}-{_pct(hi)}",
               *(_pct(m.get(k)) for k in sampled), str(m["n_no_answer"]), str(m.get("n_truncated", 0)),
               *([str(m.get("n_prompt_too_long", 0))] if too_long else []), f"{m['mean_tokens']:.0f}",
               f"{m['seconds']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    if len(metrics) > 1:
        avg = sum(m["accuracy"] for m in metrics.values()) / len(metrics)
        lines.append("| average | " + " | ".join([str(sum(m["n"] for m in metrics.values())), _pct(avg)]
                                                   + [""] * (len(head) - 3)) + " |")
    return "\n".join(lines) + "\n"


def load_run(run_dir: Path) -> dict[str, dict[str, bool]]:
    """task -> {item id: correct (first sample)} from every ``<task>/samples.jsonl`` of a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder (expected the --out folder of a genius eval run)")
    runs = {}
    for path in sorted(run_dir.glob("*/samples.jsonl")):
        runs[path.parent.name] = {r["id"]: bool(r["correct"]) for r in read_jsonl(path, repair=True)}
    if not runs:
        raise UserError(f"{run_dir}: holds no <task>/samples.jsonl (expected the --out folder of a genius eval run)")
    return runs


def compare_runs(run_a: Path, run_b: Path, *, seed: int = 0, resamples: int = 10000) -> list[dict]:
    """Per task present in both runs, over the items both answered: accuracies, B - A with a
    paired bootstrap 95% interval, the discordant counts and the exact McNemar p-value."""
    a, b = load_run(run_a), load_run(run_b)
    rows = []
    for task in sorted(set(a) & set(b)):
        ids = [i for i in a[task] if i in b[task]]
        if not ids:
            continue
        xa = [float(a[task][i]) for i in ids]
        xb = [float(b[task][i]) for i in ids]
        diff, lo, hi = paired_bootstrap(xa, xb, rng=random.Random(f"{seed}/{task}"), resamples=resamples)
        only_a = sum(x > y for x, y in zip(xa, xb))
        only_b = sum(y > x for x, y in zip(xa, xb))
        rows.append({"task": task, "n": len(ids), "acc_a": sum(xa) / len(ids), "acc_b": sum(xb) / len(ids),
                     "diff": diff, "ci95": [lo, hi], "only_a": only_a, "only_b": only_b,
                     "mcnemar_p": mcnemar_exact(only_a, only_b)})
    if not rows:
        raise UserError(f"{run_a} and {run_b} share no task with common item ids; nothing to compare")
    return rows


def compare_table(rows: list[dict], name_a: str, name_b: str) -> str:
    head = ["task", "paired n", "A %", "B %", "B - A (pts)", "95% CI (bootstrap)", "only A right", "only B right",
            "McNemar p"]
    lines = [f"A = {name_a}", f"B = {name_b}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append("| " + " | ".join([
            r["task"], str(r["n"]), _pct(r["acc_a"]), _pct(r["acc_b"]), f"{100 * r['diff']:+.1f}",
            f"{100 * lo:+.1f} to {100 * hi:+.1f}", str(r["only_a"]), str(r["only_b"]), f"{r['mcnemar_p']:.3g}",
        ]) + " |")
    return "\n".join(lines) + "\n"
