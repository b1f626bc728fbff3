"""Markdown tables: the results of one run, and the paired comparison of two runs
(genius.evaluation.compare); ``pct``, the one way a share is written as a percentage."""

from __future__ import annotations

from genius.evaluation.compare import JUDGED_METRICS, POINT_METRICS, Paired


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal; "-" for None."""
    return "-" if x is None else f"{100 * x:.1f}"


_METRIC_NAMES = {"accuracy": "accuracy", "pass@1": "pass@1", "win_rate": "win rate against the reference answers",
                 "wb_score": "WB-Score ((judge score - 5) x 20, in points)",
                 "wb_reward": "WB-Reward against the reference model (-100..100 points, K=500)"}
_PROTOCOLS = {"arena_hard": "Arena-Hard v0.1 protocol (two games, a strong verdict counts 3 times, ties half)",
              "alpaca_eval": "AlpacaEval 2.0 protocol (both orders, the judge's preference; raw, not "
                             "length-controlled)",
              "wildbench": "WildBench v2 WB-Score protocol (1-10 against the checklist)",
              "wildbench_reward": "WildBench v2 WB-Reward protocol (five-way against the reference, both orders, "
                                  "length penalty K=500)"}


def results_table(metrics: dict[str, dict], title: str = "") -> str:
    """One row per task: n, its score (accuracy; pass@1 for code; the win rate for judged tasks)
    with the 95% interval, maj@n / pass@n when sampled, no-answer count, mean tokens, seconds; a
    last row averages the scores (unweighted, as the paper). Below it, what the scores are when
    not all are accuracies, and one row per task with groups (MMLU's subjects)."""
    sampled = sorted({k for m in metrics.values() for k in m
                      if k.startswith(("maj@", "pass@")) and "ci" not in k and k != "pass@1"})
    too_long = any(m.get("n_prompt_too_long") for m in metrics.values())
    head = ["task", "n", "score %", "95% CI", *sampled, "no answer", "truncated",
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
    # WildBench's points are no share of items: they stay out of the average, which says so
    shares = {name: m for name, m in metrics.items() if m.get("metric") not in POINT_METRICS}
    scored = [m["accuracy"] for m in shares.values() if m["accuracy"] is not None]
    if len(shares) > 1:
        avg = sum(scored) / len(scored) if len(scored) == len(shares) else None  # a task without a score: no mean
        left_out = sorted(set(metrics) - set(shares))
        label = f"average (not {', '.join(left_out)})" if left_out else "average"
        lines.append(f"| {label} | " + " | ".join([str(sum(m["n"] for m in shares.values())), pct(avg)]
                                                    + [""] * (len(head) - 3)) + " |")
    lines += _score_notes(metrics) + _group_rows(metrics)
    return "\n".join(lines) + "\n"


def _score_notes(metrics: dict[str, dict]) -> list[str]:
    """What the score column holds, when a task's is not accuracy (and how each judge fared)."""
    kinds: dict[str, list[str]] = {}
    for name, m in metrics.items():
        kinds.setdefault(m.get("metric", "accuracy"), []).append(name)
    if set(kinds) <= {"accuracy"}:
        return []
    notes = ["", "score: " + "; ".join(f"{_METRIC_NAMES.get(k, k)} ({', '.join(v)})" for k, v in kinds.items())
             + "."]
    for name, m in metrics.items():
        if m.get("metric") in JUDGED_METRICS:
            key = f"{m['metric']}_task_macro"
            macro = f"; task macro {pct(m[key])}" if m.get(key) is not None else ""
            if m.get("n_not_judged"):
                macro += f"; {m['n_not_judged']} pairs with an empty or cut answer not judged (counted 0)"
            notes.append(f"{name}: judge {m.get('judge', '?')}, {_PROTOCOLS.get(m.get('judge_protocol'), '?')}; "
                         f"{m['n_judged']} judged, {m['n_judge_failed']} judge failures (left out, a rerun asks "
                         f"again), {m.get('n_no_verdict', 0)} without a verdict (left out){macro}; interval: "
                         f"{m['ci_method']}.")
    sandboxes: dict[tuple[str, ...], list[str]] = {}
    for name, m in metrics.items():
        if m.get("isolation"):
            sandboxes.setdefault(tuple(m["isolation"]), []).append(name)
    notes += [f"{', '.join(names)}: sandbox: {'; '.join(layers)}." for layers, names in sandboxes.items()]
    return notes


def _group_rows(metrics: dict[str, dict]) -> list[str]:
    """Per task with groups: how many, their unweighted mean, the lowest and the highest."""
    grouped = {name: m["groups"] for name, m in metrics.items() if m.get("groups")}
    if not grouped:
        return []
    lines = ["", "| task | by | groups | mean over groups % | lowest % (n) | highest % (n) |",
             "|---|---|---|---|---|---|"]
    for name, g in grouped.items():
        ranked = sorted(g["per_group"].items(), key=lambda kv: (kv[1]["accuracy"], kv[0]))
        low, high = ranked[0], ranked[-1]
        lines.append(f"| {name} | {g['by']} | {g['n_groups']} | {pct(g['mean_over_groups'])} | "
                     f"{low[0]} {pct(low[1]['accuracy'])} ({low[1]['n']}) | "
                     f"{high[0]} {pct(high[1]['accuracy'])} ({high[1]['n']}) |")
    lines.append("(every group: metrics.json of the task, key groups.per_group)")
    return lines


def compare_table(rows: dict[str, Paired], name_a: str, name_b: str) -> str:
    """One row per task of ``compare_runs``: B - A with its interval, discordant counts, McNemar p
    (for judged tasks, of win rates: see genius.evaluation.compare)."""
    head = ["task", "paired n", "A %", "B %", "B - A (pts)", "95% CI (bootstrap)", "only A right", "only B right",
            "McNemar p"]
    lines = [f"A = {name_a}", f"B = {name_b}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, r in rows.items():
        lines.append("| " + " | ".join([
            task, str(r.n), pct(r.acc_a), pct(r.acc_b), f"{100 * r.diff:+.1f}",
            f"{100 * r.low:+.1f} to {100 * r.high:+.1f}", str(r.only_a), str(r.only_b), f"{r.p_value:.3g}",
        ]) + " |")
    judged = [task for task, r in rows.items() if r.metric == "win_rate"]
    if judged:
        lines += ["", f"{', '.join(judged)}: win rates over the items both judged; the difference and its interval "
                      "are of the judge's per-item scores, 'right' = the judge preferred the answer to the reference "
                      "(score > 0.5)."]
    scored = [task for task, r in rows.items() if r.metric == "wb_score"]
    if scored:
        lines += ["", f"{', '.join(scored)}: WB-Score over the items both judged, in points; the difference and its "
                      "interval are of the per-item (judge score - 5) x 20, 'right' = the judge scored above 7.5 of "
                      "10."]
    rewarded = [task for task, r in rows.items() if r.metric == "wb_reward"]
    if rewarded:
        lines += ["", f"{', '.join(rewarded)}: WB-Reward over the items both judged, in points; the difference and "
                      "its interval are of the per-item rewards, 'right' = preferred to the reference (reward > 0)."]
    return "\n".join(lines) + "\n"
