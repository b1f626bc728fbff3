"""``report.md`` and PNG plots of a run directory, and a side-by-side table of several runs.

What it reads (every part is optional: a missing file drops its section, never the report):

- ``config.yaml``: the pipeline config as run (summary at the top);
- ``*/DONE.json``: stage timings (``{"stage", "seconds"}``);
- ``roundR/sample/stats.json``: sampling statistics (numbers shown as they are);
- ``roundR/sample/pairs.jsonl``: advantages ``A_w``, ``A_l`` of every pair (histogram);
- ``roundR/train/train_log.jsonl``: one record per logged training step (``step`` plus numbers;
  the curves plot the keys listed in ``CURVES``);
- ``eval/base``, ``roundR/eval``, ``roundR/eval-stepS``: evaluation folders of
  ``genius.evaluation`` holding ``<task>/metrics.json`` (``accuracy``, ``ci95``, ``n``) and
  ``<task>/samples.jsonl`` (``id``, ``correct``: for the paired comparison).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genius.io import atomic_write_text, read_json, read_jsonl, read_yaml

# Training-log keys (genius.training) per panel.
CURVES: dict[str, tuple[str, ...]] = {
    "loss": ("loss",),
    "reward margin": ("reward_margin",),
    "chosen / rejected rewards": ("chosen_reward", "rejected_reward"),
    "preference accuracy": ("accuracy",),
    "ACO weight w": ("aco_w_mean", "aco_w_min"),
}


@dataclass
class EvalPoint:
    """One evaluated model: which round and training step it is, and its per-task results."""

    label: str
    round: int
    step: int | None
    """Training step of an intermediate checkpoint; None for the round's final model."""
    tasks: dict[str, dict[str, Any]]
    """task -> {"accuracy", "ci", "n", "correct": {item id: bool}}."""


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


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


# --- reading a run ---------------------------------------------------------------------------

def round_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in run_dir.glob("round*") if (m := re.fullmatch(r"round(\d+)", p.name))]
    return sorted(found)


def load_eval_dir(path: Path) -> dict[str, dict[str, Any]]:
    """task -> {"accuracy", "ci", "n", "correct": {item id: bool}} of one evaluation folder."""
    tasks = {}
    for metrics_path in sorted(path.glob("*/metrics.json")):
        m = read_json(metrics_path)
        samples = metrics_path.parent / "samples.jsonl"
        correct = {str(r["id"]): bool(r.get("correct")) for r in read_jsonl(samples)} if samples.is_file() else {}
        ci = m.get("ci95") or [math.nan, math.nan]
        tasks[str(m.get("task", metrics_path.parent.name))] = {
            "accuracy": float(m.get("accuracy", 0.0)), "ci": (float(ci[0]), float(ci[1])),
            "n": int(m.get("n", len(correct))), "correct": correct}
    return tasks


def eval_points(run_dir: Path) -> list[EvalPoint]:
    """Every evaluation of a run, in order: base, then per round its intermediate steps and final model."""
    points = []
    if (run_dir / "eval" / "base").is_dir():
        points.append(EvalPoint("base", 0, 0, load_eval_dir(run_dir / "eval" / "base")))
    for r, rdir in round_dirs(run_dir):
        steps = sorted((int(m.group(1)), p) for p in rdir.glob("eval-step*")
                       if (m := re.fullmatch(r"eval-step(\d+)", p.name)))
        for s, p in steps:
            points.append(EvalPoint(f"round{r}-step{s}", r, s, load_eval_dir(p)))
        if (rdir / "eval").is_dir():
            points.append(EvalPoint(f"round{r}", r, None, load_eval_dir(rdir / "eval")))
    return [p for p in points if p.tasks]


def stage_times(run_dir: Path) -> list[tuple[str, float, float | None]]:
    """(stage, wall seconds, CPU seconds or None) of every finished stage, in the order they finished."""
    done = [read_json(m) for m in run_dir.glob("**/DONE.json")]
    done.sort(key=lambda d: d.get("finished_at", 0.0))
    return [(d.get("stage", "?"), float(d.get("seconds", 0.0)),
             float(d["cpu_seconds"]) if d.get("cpu_seconds") is not None else None) for d in done]


# --- comparisons -----------------------------------------------------------------------------

@dataclass
class Paired:
    """Trained minus base on the items both evaluated."""

    n: int
    diff: float
    low: float
    high: float
    base_only: int
    """Items only the base model got right."""
    trained_only: int
    p_value: float
    """Exact McNemar, two-sided."""


def paired(base: dict[str, bool], trained: dict[str, bool], seed: int = 0) -> Paired:
    """Paired bootstrap interval of the accuracy difference and exact McNemar over shared items."""
    import random

    from genius.evaluation.stats import mcnemar_exact, paired_bootstrap

    ids = sorted(set(base) & set(trained))
    a = [float(base[i]) for i in ids]
    b = [float(trained[i]) for i in ids]
    diff, lo, hi = paired_bootstrap(a, b, rng=random.Random(seed), resamples=2000)
    only_a = sum(1 for i in ids if base[i] and not trained[i])
    only_b = sum(1 for i in ids if trained[i] and not base[i])
    return Paired(len(ids), diff, lo, hi, only_a, only_b, mcnemar_exact(only_a, only_b))


def accuracy_table(base: EvalPoint | None, trained: EvalPoint | None) -> str:
    """Markdown: per task base and trained accuracy (95% Wilson intervals), delta, paired test."""
    if base is None and trained is None:
        return "_no evaluation results yet_\n"
    tasks = sorted(set(base.tasks if base else {}) | set(trained.tasks if trained else {}))
    lines = ["| task | n | base acc % [95% CI] | trained acc % [95% CI] | delta | paired diff [95% CI] | "
             "only base / only trained right | McNemar p |",
             "|---|---|---|---|---|---|---|---|"]

    def cell(point: EvalPoint | None, task: str) -> tuple[str, float | None]:
        m = point.tasks.get(task) if point else None
        if not m:
            return "-", None
        lo, hi = m["ci"]
        return f"{_pct(m['accuracy'])} [{_pct(lo)}, {_pct(hi)}]", m["accuracy"]

    for task in tasks:
        b_txt, b_acc = cell(base, task)
        t_txt, t_acc = cell(trained, task)
        n = max((p.tasks[task]["n"] for p in (base, trained) if p and task in p.tasks), default=0)
        delta = f"{100 * (t_acc - b_acc):+.1f}" if b_acc is not None and t_acc is not None else "-"
        pair_txt = share_txt = p_txt = "-"
        if base and trained and task in base.tasks and task in trained.tasks:
            pr = paired(base.tasks[task]["correct"], trained.tasks[task]["correct"])
            if pr.n:
                pair_txt = f"{100 * pr.diff:+.1f} [{100 * pr.low:+.1f}, {100 * pr.high:+.1f}]"
                share_txt = f"{pr.base_only} / {pr.trained_only}"
                p_txt = f"{pr.p_value:.3g}"
        lines.append(f"| {task} | {n} | {b_txt} | {t_txt} | {delta} | {pair_txt} | {share_txt} | {p_txt} |")
    return "\n".join(lines) + "\n"


def final_points(points: list[EvalPoint]) -> tuple[EvalPoint | None, EvalPoint | None]:
    """The base evaluation and the last round's final model."""
    base = next((p for p in points if p.label == "base"), None)
    finals = [p for p in points if p.round > 0 and p.step is None]
    return base, (finals[-1] if finals else None)


def runs_table(runs: list[Path]) -> str:
    """Several runs side by side (paper Tables 3/4): trained accuracy per task and the mean,
    with each run's base model as a first row when all runs share one base."""
    rows: list[tuple[str, dict[str, float]]] = []
    bases: dict[str, dict[str, float]] = {}
    for run in runs:
        base, trained = final_points(eval_points(run))
        if base:
            bases[_model_of(run)] = {t: m["accuracy"] for t, m in base.tasks.items()}
        if trained:
            rows.append((f"{run.name} ({_method_of(run)})", {t: m["accuracy"] for t, m in trained.tasks.items()}))
    if len(bases) == 1:
        model, accs = next(iter(bases.items()))
        rows.insert(0, (f"base: {model}", accs))
    else:
        rows[:0] = [(f"base: {m}", a) for m, a in bases.items()]
    if not rows:
        return "_no evaluation results in these runs_\n"
    tasks = sorted({t for _, accs in rows for t in accs})
    lines = ["| run | " + " | ".join(tasks) + " | avg |", "|---" * (len(tasks) + 2) + "|"]
    for name, accs in rows:
        vals = [accs.get(t) for t in tasks]
        have = [v for v in vals if v is not None]
        avg = sum(have) / len(have) if len(have) == len(tasks) else None
        lines.append(f"| {name} | " + " | ".join(_pct(v) for v in vals) + f" | {_pct(avg)} |")
    return "\n".join(lines) + "\n"


def _run_config(run: Path) -> dict:
    path = run / "config.yaml"
    data = read_yaml(path) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def _model_of(run: Path) -> str:
    return str(_run_config(run).get("model", "?"))


def _method_of(run: Path) -> str:
    cfg = _run_config(run)
    method = str(cfg.get("method", "genius"))
    from genius.baselines import BUILDERS  # a baseline trains with its own loss unless told otherwise

    default = BUILDERS[method].loss if method in BUILDERS else "aco"
    loss = (cfg.get("train") or {}).get("loss", default)
    extras = [f"{k}={v}" for k, v in (cfg.get("sample") or {}).items() if k in ("score", "selection")]
    return ", ".join([method, str(loss)] + extras)


def _pooled(point: EvalPoint) -> dict[str, bool]:
    """Every item of every task of an evaluation, keyed task/item."""
    return {f"{t}/{i}": ok for t, m in point.tasks.items() for i, ok in m["correct"].items()}


def _training_examples(run: Path) -> int | None:
    """Examples in the last round's training data (pairs or SFT records), None before it exists."""
    rounds = round_dirs(run)
    if not rounds:
        return None
    done = rounds[-1][1] / "sample" / "DONE.json"
    data = Path(str(read_json(done).get("result", {}).get("data", ""))) if done.is_file() else None
    return len(read_jsonl(data, repair=False)) if data and data.is_file() else None


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
            pr = paired(_pooled(base), _pooled(trained))
            if pr.n:
                pair_txt = f"{100 * pr.diff:+.1f} [{100 * pr.low:+.1f}, {100 * pr.high:+.1f}]"
                share_txt, p_txt = f"{pr.base_only} / {pr.trained_only}", f"{pr.p_value:.3g}"
        steps = [int(x["step"]) for _, rdir in round_dirs(run) if (rdir / "train" / "train_log.jsonl").is_file()
                 for x in read_jsonl(rdir / "train" / "train_log.jsonl", repair=False) if "step" in x]
        examples = _training_examples(run)
        minutes = sum(sec for _, sec, _ in stage_times(run)) / 60
        lines.append(f"| {run.name} | {_method_of(run)} | {'-' if examples is None else examples} | "
                     f"{max(steps) if steps else '-'} | {minutes:.1f} | {pair_txt} | {share_txt} | {p_txt} |")
    return "\n".join(lines) + "\n"


def comparison_members(run_dir: Path) -> list[Path] | None:
    """The run folders of a ``compare`` run that exist so far (from its config.yaml), None for a
    single run."""
    names = _run_config(run_dir).get("compare") or {}
    if not isinstance(names, dict) or not names:
        return None
    return [run_dir / str(name) for name in names if (run_dir / str(name)).is_dir()]


def build_comparison_report(run_dir: str | Path, runs: list[Path]) -> str:
    """Write ``report.md`` (and ``plots/comparison.png``) of a ``compare`` run: every run's
    trained accuracy in one table, its cost and its paired difference to the base model; each
    run's own report is rebuilt too. Returns the markdown."""
    run_dir = Path(run_dir)
    for run in runs:
        if run.is_dir():
            build_report(run)
    runs = [r for r in runs if r.is_dir()]
    md = [f"# Comparison: {run_dir.name}", "",
          "The same queries, model and evaluation for every run; each run's own report: "
          + ", ".join(f"[{r.name}]({r.name}/report.md)" for r in runs) + ".", "",
          "## Accuracy after training (%)", "", runs_table(runs),
          "## Data, cost and paired difference to the base model", "",
          "Paired difference: trained minus base over all evaluated items (bootstrap 95%); "
          "McNemar: exact two-sided test on the items only one of the two got right.", "",
          comparison_rows(runs)]
    plots = run_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    if plot_comparison(runs, plots / "comparison.png"):
        md += ["![accuracy per run](plots/comparison.png)", ""]
    md += ["## Config", "", *_config_summary(_run_config(run_dir)), ""]
    text = "\n".join(md)
    atomic_write_text(run_dir / "report.md", text)
    return text


# --- plots -----------------------------------------------------------------------------------

def plot_comparison(runs: list[Path], path: Path) -> bool:
    """Bars: mean accuracy over tasks of the base model and of every trained run, with the
    pooled 95% Wilson interval as error bars."""
    from genius.evaluation.stats import wilson_interval

    bars: list[tuple[str, float, float, float]] = []
    for run in runs:
        base, trained = final_points(eval_points(run))
        for label, point in (("base", base), (run.name, trained)):
            if point is None or (label == "base" and any(b[0] == "base" for b in bars)):
                continue
            pooled = list(_pooled(point).values())
            if pooled:
                acc = sum(pooled) / len(pooled)
                lo, hi = wilson_interval(sum(pooled), len(pooled))
                bars.append((label, acc, acc - lo, hi - acc))
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


# --- report.md -------------------------------------------------------------------------------

def _stats_rows(stats: dict) -> list[str]:
    rows = []
    for key, value in stats.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append(f"| {key} | {_fmt(value)} |")
        elif isinstance(value, dict) and value and all(isinstance(v, (int, float)) for v in value.values()):
            rows.append(f"| {key} | " + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + " |")
    return rows


def _config_summary(cfg: dict) -> list[str]:
    import yaml

    if not cfg:
        return ["_no config.yaml_"]
    return ["```yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True).rstrip(), "```"]


def build_report(run_dir: str | Path) -> str:
    """Write ``report.md`` and ``plots/*.png`` into a run directory; return the markdown."""
    run_dir = Path(run_dir)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    points = eval_points(run_dir)
    base, trained = final_points(points)
    md = [f"# Run report: {run_dir.name}", "", "## Results", "",
          f"Base model vs the model after the last round ({trained.label if trained else 'not trained yet'}). "
          "Intervals: Wilson 95%; paired diff: bootstrap 95% over the items both evaluated; "
          "McNemar: exact two-sided test on the items only one of the two got right.", "",
          accuracy_table(base, trained), "## Config", "", *_config_summary(_run_config(run_dir)), ""]
    times = stage_times(run_dir)
    if times:
        md += ["## Stages", "", "Wall-clock seconds, and the CPU seconds of the process (all threads).", "",
               "| stage | seconds | CPU seconds |", "|---|---|---|"]
        md += [f"| {name} | {sec:.0f} | {'-' if cpu is None else f'{cpu:.0f}'} |" for name, sec, cpu in times]
        cpu_total = sum(c for _, _, c in times if c is not None)
        md += [f"| total | {sum(s for _, s, _ in times):.0f} | {cpu_total:.0f} |", ""]
    round_steps: dict[int, int] = {}
    for r, rdir in round_dirs(run_dir):
        md += _sampling_section(r, rdir / "sample", plots)
        log_path = rdir / "train" / "train_log.jsonl"
        if log_path.is_file():
            log = read_jsonl(log_path, repair=False)
            steps = [int(x["step"]) for x in log if "step" in x]
            if steps:
                round_steps[r] = max(steps)
            drawn = plot_training(log, plots / f"training_round{r}.png")
            md += [f"## Training, round {r}", "", f"{len(log)} logged steps; curves: {', '.join(drawn) or 'none'}.", ""]
            if drawn:
                md += [f"![training round {r}](plots/training_round{r}.png)", ""]
    if any(p.round > 0 and p.step is not None for p in points):
        series = scaling_series(points, round_steps)
        plot_scaling(series, plots / "scaling.png")
        md += ["## Post-training scaling", "", "Accuracy against training steps (paper Fig. 6).", "",
               "| task | " + " | ".join(f"step {x}" for x, _ in next(iter(series.values()))) + " |",
               "|---" * (len(next(iter(series.values()))) + 1) + "|"]
        md += [f"| {t} | " + " | ".join(_pct(y) for _, y in pts) + " |" for t, pts in sorted(series.items())]
        md += ["", "![scaling](plots/scaling.png)", ""]
    text = "\n".join(md)
    atomic_write_text(run_dir / "report.md", text)
    return text


def _sampling_section(r: int, sample_dir: Path, plots: Path) -> list[str]:
    md: list[str] = []
    stats_path = sample_dir / "stats.json"
    if stats_path.is_file():
        stats = read_json(stats_path)
        md += [f"## Sampling, round {r}", "", "| statistic | value |", "|---|---|", *_stats_rows(stats), ""]
        if stats.get("signal"):
            md += _signal_section(r, stats["signal"], sample_dir, plots)
    pairs_path = sample_dir / "pairs.jsonl"
    if pairs_path.is_file():
        pairs = read_jsonl(pairs_path, repair=False)
        if plot_advantages(pairs, plots / f"advantages_round{r}.png"):
            if not md:
                md += [f"## Sampling, round {r}", ""]
            md += [f"{len(pairs)} pairs. Advantage histogram (A_w of chosen, A_l of rejected):", "",
                   "| bin | A_w | A_l |", "|---|---|---|"]
            md += [f"| [{lo:.3g}, {hi:.3g}] | {cw} | {cl} |" for lo, hi, cw, cl in advantage_bins(pairs)]
            md += ["", f"![advantages round {r}](plots/advantages_round{r}.png)", ""]
    return md


def _signal_section(r: int, signal: dict, sample_dir: Path, plots: Path) -> list[str]:
    """The signal diagnostics of a round (genius.sampling.signal): answers never used in training."""
    import shutil

    diff = signal["chosen_minus_rejected"]
    ci = "-" if diff["ci95"] is None else f"[{100 * diff['ci95'][0]:+.1f}, {100 * diff['ci95'][1]:+.1f}]"
    gap = "-" if diff["mean"] is None else f"{100 * diff['mean']:+.1f}"
    md = [f"### Signal of the self-reward, round {r}", "",
          f"Checked against the {signal['task']} answers of {signal['queries']} queries, which sampling and "
          "training never see.", "", "| measure | value |", "|---|---|",
          f"| chosen response correct | {_pct(signal['chosen_correct'])}% of {signal['pairs']} pairs |",
          f"| rejected response correct | {_pct(signal['rejected_correct'])}% |",
          f"| chosen - rejected (paired, 95% CI) | {gap} pts {ci} |",
          f"| final beams correct | {_pct(signal['final_beams_correct'])}% of {signal['final_beams']} |",
          f"| candidates correct | {_pct(signal['candidates_correct'])}% of {signal['candidates']} |",
          f"| AUROC of f vs correct | {_fmt(signal['auroc_f'])} |",
          f"| AUROC of s vs correct | {_fmt(signal['auroc_s'])} |",
          f"| rollouts cut by their budget | {_pct(signal['rollouts_cut_share'])}% of {signal['rollouts']} |", ""]
    figure = sample_dir / "signal_f.png"
    if figure.is_file():
        shutil.copyfile(figure, plots / f"signal_round{r}.png")
        md += [f"![f of correct vs wrong responses, round {r}](plots/signal_round{r}.png)", ""]
    return md

