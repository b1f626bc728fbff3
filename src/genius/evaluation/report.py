"""Markdown tables: the results of one run, and the paired comparison of two runs
(genius.evaluation.compare); ``pct``, the one way a share is written as a percentage."""

from __future__ import annotations

from genius.evaluation.compare import Paired


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal; "-" for None."""
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
        row = [name, str(m["n"]), pct(m["accuracy"]), f"{pct(lo)}-{pct(hi)}",
               *(pct(m.get(k)) for k in sampled), str(m["n_no_answer"]), str(m.get("n_truncated", 0)),
               *([str(m.get("n_prompt_too_long", 0))] if too_long else []), f"{m['mean_tokens']:.0f}",
               f"{m['seconds']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    if len(metrics) > 1:
        avg = sum(m["accuracy"] for m in metrics.values()) / len(metrics)
        lines.append("| average | " + " | ".join([str(sum(m["n"] for m in metrics.values())), pct(avg)]
                                                   + [""] * (len(head) - 3)) + " |")
    return "\n".join(lines) + "\n"


def compare_table(rows: dict[str, Paired], name_a: str, name_b: str) -> str:
    """One row per task of ``compare_runs``: B - A with its interval, discordant counts, McNemar p."""
    head = ["task", "paired n", "A %", "B %", "B - A (pts)", "95% CI (bootstrap)", "only A right", "only B right",
            "McNemar p"]
    lines = [f"A = {name_a}", f"B = {name_b}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, r in rows.items():
        lines.append("| " + " | ".join([
            task, str(r.n), pct(r.acc_a), pct(r.acc_b), f"{100 * r.diff:+.1f}",
            f"{100 * r.low:+.1f} to {100 * r.high:+.1f}", str(r.only_a), str(r.only_b), f"{r.p_value:.3g}",
        ]) + " |")
    return "\n".join(lines) + "\n"
