"""The figures of the reports (matplotlib, files only) and the series they draw: training
curves, advantage histograms, post-training scaling, accuracy per run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from genius.report.runs import EvalPoint, eval_points, final_points, pooled

# Training-log keys (genius.training) per panel.
CURVES: dict[str, tuple[str, ...]] = {
    "loss": ("loss",),
    "reward margin": ("reward_margin",),
    "chosen / rejected rewards": ("chosen_reward", "rejected_reward"),
    "preference accuracy": ("accuracy",),
    "ACO weight w": ("aco_w_mean", "aco_w_min"),
}


def _nums(record: dict, keys: tuple[str, ...]) -> float | None:
    for k in keys:
        v = record.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


def curves(log: list[dict]) -> dict[str, list[tuple[str, list[int], list[float]]]]:
    """panel -> [(key, steps, values)] for the keys of CURVES found in a training log."""
    out: dict[str, list[tuple[str, list[int], list[float]]]] = {}
    for panel, keys in CURVES.items():
        for key in keys:
            pts = [(int(r["step"]), v) for r in log if "step" in r and (v := _nums(r, (key,))) is not None]
            if pts:
                out.setdefault(panel, []).append((key, [s for s, _ in pts], [v for _, v in pts]))
    return out


def _advantages(pairs: list[dict], key: str) -> list[float]:
    return [float(p[key]) for p in pairs if isinstance(p.get(key), (int, float)) and math.isfinite(p[key])]


def advantage_bins(pairs: list[dict], bins: int = 8) -> list[tuple[float, float, int, int]]:
    """Equal-width bins over the range of all A_w and A_l: (left, right, count A_w, count A_l);
    the maximum lands in the last bin."""
    a_w, a_l = _advantages(pairs, "A_w"), _advantages(pairs, "A_l")
    values = a_w + a_l
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi == lo:
        return [(lo, hi, len(a_w), len(a_l))]
    width = (hi - lo) / bins

    def counts(vs: list[float]) -> list[int]:
        c = [0] * bins
        for v in vs:
            c[min(int((v - lo) / width), bins - 1)] += 1
        return c

    cw, cl = counts(a_w), counts(a_l)
    return [(lo + i * width, lo + (i + 1) * width, cw[i], cl[i]) for i in range(bins)]


def _comparison_bars(runs: list[Path]) -> list[tuple[str, float, float, float]]:
    """(label, accuracy over all items, distance to the lower and upper 95% Wilson bound): the
    first base model, then every trained run."""
    from genius.evaluation.stats import wilson_interval

    bars: list[tuple[str, float, float, float]] = []
    for run in runs:
        base, trained = final_points(eval_points(run))
        for label, point in (("base", base), (run.name, trained)):
            if point is None or (label == "base" and any(b[0] == "base" for b in bars)):
                continue
            items = list(pooled(point).values())
            if items:
                acc = sum(items) / len(items)
                lo, hi = wilson_interval(sum(items), len(items))
                bars.append((label, acc, acc - lo, hi - acc))
    return bars


def plot_comparison(runs: list[Path], path: Path) -> bool:
    """Bars: mean accuracy over tasks of the base model and of every trained run, with the
    pooled 95% Wilson interval as error bars."""
    bars = _comparison_bars(runs)
    if len(bars) < 2:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(bars) + 2, 3.6))
    xs = range(len(bars))
    ax.bar(xs, [100 * b[1] for b in bars], yerr=[[100 * b[2] for b in bars], [100 * b[3] for b in bars]],
           color=["tab:gray"] + ["tab:blue"] * (len(bars) - 1), capsize=3)
    ax.set_xticks(list(xs), [b[0] for b in bars], rotation=30, ha="right")
    ax.set_ylabel("accuracy % (all items)")
    ax.set_title("accuracy after training, 95% Wilson intervals")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in tests
    import matplotlib.pyplot as plt

    return plt


def plot_advantages(pairs: list[dict], path: Path) -> bool:
    a_w, a_l = _advantages(pairs, "A_w"), _advantages(pairs, "A_l")
    if not a_w and not a_l:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = 20
    ax.hist([a_w, a_l], bins=bins, label=["chosen A_w", "rejected A_l"], color=["tab:green", "tab:red"], alpha=0.8)
    ax.set_xlabel("advantage A = f - Q(parent)")
    ax.set_ylabel("pairs")
    ax.legend()
    ax.set_title(f"advantages of {len(pairs)} pairs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_training(log: list[dict], path: Path) -> list[str]:
    """One panel per CURVES entry found in the log; returns the panels drawn."""
    found = curves(log)
    if not found:
        return []
    plt = _pyplot()
    cols = min(3, len(found))
    rows = math.ceil(len(found) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(found):]:
        ax.set_visible(False)
    for ax, (panel, series) in zip(axes.flat, found.items()):
        for key, steps, values in series:
            ax.plot(steps, values, marker="." if len(steps) < 40 else None, label=key)
        ax.set_title(panel)
        ax.set_xlabel("step")
        if len(series) > 1:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return list(found)


def scaling_series(points: list[EvalPoint], round_steps: dict[int, int]) -> dict[str, list[tuple[int, float]]]:
    """task -> [(global training step, accuracy)]; rounds follow one another on the step axis
    and a round's final model sits at its last step (``round_steps``: round -> steps trained)."""
    offset, offsets = 0, {}
    for r in sorted(round_steps):
        offsets[r] = offset
        offset += round_steps[r]
    series: dict[str, list[tuple[int, float]]] = {}
    for p in points:
        if p.round == 0:
            x = 0
        elif p.step is not None:
            x = offsets.get(p.round, 0) + p.step
        elif p.round in round_steps:
            x = offsets[p.round] + round_steps[p.round]
        else:
            continue
        for task, m in p.tasks.items():
            if m["accuracy"] is not None:  # a judged task without a verdict has no score
                series.setdefault(task, []).append((x, m["accuracy"]))
    return {t: sorted(set(v)) for t, v in series.items()}


def plot_scaling(series: dict[str, list[tuple[int, float]]], path: Path) -> bool:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for task, pts in sorted(series.items()):
        ax.plot([x for x, _ in pts], [100 * y for _, y in pts], marker="o", label=task)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy %")
    ax.set_title("post-training scaling")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
