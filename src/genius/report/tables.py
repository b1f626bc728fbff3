"""The markdown tables of the reports: one run's accuracies against its base model, several runs
side by side, and their cost and paired difference (genius.evaluation.compare) to the base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genius.evaluation.compare import Paired, paired_difference, won_above
from genius.evaluation.report import pct
from genius.report.runs import (EvalPoint, eval_points, final_points, method_of, model_of, pooled, stage_times,
                                trained_steps, training_examples)


def fmt(x: Any) -> str:
    """A number as a report shows it (floats to 4 significant digits)."""
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _paired_cells(pr: Paired) -> tuple[str, str, str]:
    """Paired diff [95% CI], only base / only trained right, McNemar p; dashes when no item is shared."""
    if not pr.n:
        return "-", "-", "-"
    return (f"{100 * pr.diff:+.1f} [{100 * pr.low:+.1f}, {100 * pr.high:+.1f}]", f"{pr.only_a} / {pr.only_b}",
            f"{pr.p_value:.3g}")


def _accuracy_cell(point: EvalPoint | None, task: str) -> tuple[str, float | None]:
    m = point.tasks.get(task) if point else None
    if not m:
        return "-", None
    lo, hi = m["ci"]
    return f"{pct(m['accuracy'])} [{pct(lo)}, {pct(hi)}]", m["accuracy"]


def accuracy_table(base: EvalPoint | None, trained: EvalPoint | None) -> str:
    """Markdown: per task base and trained accuracy (95% Wilson intervals), delta, paired test."""
    if base is None and trained is None:
        return "_no evaluation results yet_\n"
    tasks = sorted(set(base.tasks if base else {}) | set(trained.tasks if trained else {}))
    lines = ["| task | n | base acc % [95% CI] | trained acc % [95% CI] | delta | paired diff [95% CI] | "
             "only base / only trained right | McNemar p |",
             "|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        b_txt, b_acc = _accuracy_cell(base, task)
        t_txt, t_acc = _accuracy_cell(trained, task)
        n = max((p.tasks[task]["n"] for p in (base, trained) if p and task in p.tasks), default=0)
        delta = f"{100 * (t_acc - b_acc):+.1f}" if b_acc is not None and t_acc is not None else "-"
        pair_txt = share_txt = p_txt = "-"
        if base and trained and task in base.tasks and task in trained.tasks:
            pair_txt, share_txt, p_txt = _paired_cells(
                paired_difference(base.tasks[task]["scores"], trained.tasks[task]["scores"],
                                  won_above(base.tasks[task]["metric"])))
        lines.append(f"| {task} | {n} | {b_txt} | {t_txt} | {delta} | {pair_txt} | {share_txt} | {p_txt} |")
    return "\n".join(lines + _metric_notes([base, trained])) + "\n"


def _metric_notes(points: list[EvalPoint | None]) -> list[str]:
    """A line saying which tasks' "acc" is pass@1 or a judged win rate, when some are."""
    by_metric: dict[str, set[str]] = {}
    for point in filter(None, points):
        for task, m in point.tasks.items():
            by_metric.setdefault(m.get("metric", "accuracy"), set()).add(task)
    names = {"win_rate": "the win rate against the reference (paired diff of the judge's scores; right = preferred "
                         "to the reference)",
             "wb_score": "WildBench's WB-Score (paired diff of the per-item (judge score - 5) x 20; right = above 7.5)",
             "wb_reward": "WildBench's WB-Reward (paired diff of the per-item rewards; right = preferred to the "
                          "reference)"}
    other = [f"{names.get(k, k)} for {', '.join(sorted(v))}" for k, v in sorted(by_metric.items()) if k != "accuracy"]
    return ["", "acc is " + "; ".join(other) + "."] if other else []


def _accuracy_rows(runs: list[Path]) -> list[tuple[str, dict[str, float]]]:
    """(row name, task -> accuracy): the base model(s) first, then every run's trained model."""
    rows: list[tuple[str, dict[str, float]]] = []
    bases: dict[str, dict[str, float]] = {}
    for run in runs:
        base, trained = final_points(eval_points(run))
        if base:
            bases[model_of(run)] = {t: m["accuracy"] for t, m in base.tasks.items()}
        if trained:
            rows.append((f"{run.name} ({method_of(run)})", {t: m["accuracy"] for t, m in trained.tasks.items()}))
    if len(bases) == 1:
        model, accs = next(iter(bases.items()))
        rows.insert(0, (f"base: {model}", accs))
    else:
        rows[:0] = [(f"base: {m}", a) for m, a in bases.items()]
    return rows


def runs_table(runs: list[Path]) -> str:
    """Several runs side by side (paper Tables 3/4): trained accuracy per task and the mean,
    with each run's base model as a first row when all runs share one base."""
    rows = _accuracy_rows(runs)
    if not rows:
        return "_no evaluation results in these runs_\n"
    tasks = sorted({t for _, accs in rows for t in accs})
    lines = ["| run | " + " | ".join(tasks) + " | avg |", "|---" * (len(tasks) + 2) + "|"]
    for name, accs in rows:
        vals = [accs.get(t) for t in tasks]
        have = [v for v in vals if v is not None]
        avg = sum(have) / len(have) if len(have) == len(tasks) else None
        lines.append(f"| {name} | " + " | ".join(pct(v) for v in vals) + f" | {pct(avg)} |")
    return "\n".join(lines) + "\n"


def comparison_rows(runs: list[Path]) -> str:
    """Markdown: per run its method and loss, training examples and steps, wall minutes, and the
    paired difference to its base model over all evaluated items (bootstrap 95%, McNemar)."""
    lines = ["| run | method, loss | training examples (last round) | training steps | minutes | "
             "paired diff vs base [95% CI] | only base / only trained right | McNemar p |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        base, trained = final_points(eval_points(run))
        pair_txt = share_txt = p_txt = "-"
        if base and trained:
            pair_txt, share_txt, p_txt = _paired_cells(paired_difference(pooled(base), pooled(trained)))
        examples, steps = training_examples(run), trained_steps(run)
        minutes = sum(sec for _, sec, _ in stage_times(run)) / 60
        lines.append(f"| {run.name} | {method_of(run)} | {'-' if examples is None else examples} | "
                     f"{'-' if steps is None else steps} | {minutes:.1f} | {pair_txt} | {share_txt} | {p_txt} |")
    return "\n".join(lines) + "\n"


def stats_rows(stats: dict) -> list[str]:
    """Table rows of the numbers (and flat dicts of numbers) of a sampling stats.json."""
    rows = []
    for key, value in stats.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append(f"| {key} | {fmt(value)} |")
        elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
            rows.append(f"| {key} | " + ", ".join(f"{k}={fmt(v)}" for k, v in value.items()) + " |")
    return rows


def config_summary(cfg: dict) -> list[str]:
    """The run's config as a YAML block."""
    import yaml

    if not cfg:
        return ["_no config.yaml_"]
    return ["```yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).rstrip(), "```"]
