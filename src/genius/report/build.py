"""``report.md`` of a run and of a comparison run, section by section; the figures go to the
run's ``plots/`` (genius.report.plots), the tables come from genius.report.tables."""

from __future__ import annotations

import shutil
from pathlib import Path

from genius.evaluation.report import pct
from genius.io import atomic_write_text, read_json, read_jsonl
from genius.layout import RoundLayout, RunLayout
from genius.report.plots import (advantage_bins, plot_advantages, plot_comparison, plot_scaling, plot_training,
                                 scaling_series)
from genius.report.runs import EvalPoint, eval_points, final_points, stage_times
from genius.report.tables import accuracy_table, comparison_rows, config_summary, fmt, runs_table, stats_rows


def build_report(run_dir: str | Path) -> str:
    """Write ``report.md`` and ``plots/*.png`` into a run directory; return the markdown."""
    layout = RunLayout(run_dir)
    layout.plots.mkdir(exist_ok=True)
    points = eval_points(layout.root)
    base, trained = final_points(points)
    md = [f"# Run report: {layout.root.name}", "", "## Results", "",
          f"Base model vs the model after the last round ({trained.label if trained else 'not trained yet'}). "
          "Intervals: Wilson 95%; paired diff: bootstrap 95% over the items both evaluated; "
          "McNemar: exact two-sided test on the items only one of the two got right.", "",
          accuracy_table(base, trained), "## Config", "", *config_summary(layout.read_config()), ""]
    md += _stages_section(layout.root)
    round_steps: dict[int, int] = {}
    for rnd in layout.rounds():
        md += _sampling_section(rnd, layout.plots)
        md += _training_section(rnd, layout.plots)
        if (steps := rnd.last_train_step()) is not None:
            round_steps[rnd.number] = steps
    if any(p.round > 0 and p.step is not None for p in points):
        md += _scaling_section(points, round_steps, layout.plots)
    text = "\n".join(md)
    atomic_write_text(layout.report, text)
    return text


def build_comparison_report(run_dir: str | Path, runs: list[Path]) -> str:
    """Write ``report.md`` (and ``plots/comparison.png``) of a ``compare`` run: every run's
    trained accuracy in one table, its cost and its paired difference to the base model; each
    run's own report is rebuilt too. Returns the markdown."""
    layout = RunLayout(run_dir)
    for run in runs:
        if run.is_dir():
            build_report(run)
    runs = [r for r in runs if r.is_dir()]
    md = [f"# Comparison: {layout.root.name}", "",
          "The same queries, model and evaluation for every run; each run's own report: "
          + ", ".join(f"[{r.name}]({r.name}/report.md)" for r in runs) + ".", "",
          "## Accuracy after training (%)", "", runs_table(runs),
          "## Data, cost and paired difference to the base model", "",
          "Paired difference: trained minus base over all evaluated items (bootstrap 95%); "
          "McNemar: exact two-sided test on the items only one of the two got right.", "",
          comparison_rows(runs)]
    layout.plots.mkdir(parents=True, exist_ok=True)
    figure = layout.plots / "comparison.png"
    if plot_comparison(runs, figure):
        md += [f"![accuracy per run](plots/{figure.name})", ""]
    md += ["## Config", "", *config_summary(layout.read_config()), ""]
    text = "\n".join(md)
    atomic_write_text(layout.report, text)
    return text


def _stages_section(run_dir: Path) -> list[str]:
    times = stage_times(run_dir)
    if not times:
        return []
    md = ["## Stages", "", "Wall-clock seconds, and the CPU seconds of the process (all threads).", "",
          "| stage | seconds | CPU seconds |", "|---|---|---|"]
    md += [f"| {name} | {sec:.0f} | {'-' if cpu is None else f'{cpu:.0f}'} |" for name, sec, cpu in times]
    cpu_total = sum(c for _, _, c in times if c is not None)
    return md + [f"| total | {sum(s for _, s, _ in times):.0f} | {cpu_total:.0f} |", ""]


def _training_section(rnd: RoundLayout, plots: Path) -> list[str]:
    if not rnd.train_log.is_file():
        return []
    log = read_jsonl(rnd.train_log, repair=False)
    r = rnd.number
    drawn = plot_training(log, plots / f"training_round{r}.png")
    md = [f"## Training, round {r}", "", f"{len(log)} logged steps; curves: {', '.join(drawn) or 'none'}.", ""]
    if drawn:
        md += [f"![training round {r}](plots/training_round{r}.png)", ""]
    return md


def _scaling_section(points: list[EvalPoint], round_steps: dict[int, int], plots: Path) -> list[str]:
    series = scaling_series(points, round_steps)
    plot_scaling(series, plots / "scaling.png")
    first = next(iter(series.values()))
    md = ["## Post-training scaling", "", "Accuracy against training steps (paper Fig. 6).", "",
          "| task | " + " | ".join(f"step {x}" for x, _ in first) + " |", "|---" * (len(first) + 1) + "|"]
    md += [f"| {t} | " + " | ".join(pct(y) for _, y in pts) + " |" for t, pts in sorted(series.items())]
    return md + ["", "![scaling](plots/scaling.png)", ""]


def _sampling_section(rnd: RoundLayout, plots: Path) -> list[str]:
    md: list[str] = []
    r = rnd.number
    if rnd.stats.is_file():
        stats = read_json(rnd.stats)
        md += [f"## Sampling, round {r}", "", "| statistic | value |", "|---|---|", *stats_rows(stats), ""]
        if stats.get("signal"):
            md += _signal_section(r, stats["signal"], rnd.signal_figure, plots)
    if rnd.pairs.is_file():
        pairs = read_jsonl(rnd.pairs, repair=False)
        if plot_advantages(pairs, plots / f"advantages_round{r}.png"):
            if not md:
                md += [f"## Sampling, round {r}", ""]
            md += [f"{len(pairs)} pairs. Advantage histogram (A_w of chosen, A_l of rejected):", "",
                   "| bin | A_w | A_l |", "|---|---|---|"]
            md += [f"| [{lo:.3g}, {hi:.3g}] | {cw} | {cl} |" for lo, hi, cw, cl in advantage_bins(pairs)]
            md += ["", f"![advantages round {r}](plots/advantages_round{r}.png)", ""]
    return md


def _signal_section(r: int, signal: dict, figure: Path, plots: Path) -> list[str]:
    """The signal diagnostics of a round (genius.sampling.signal): answers never used in training."""
    diff = signal["chosen_minus_rejected"]
    ci = "-" if diff["ci95"] is None else f"[{100 * diff['ci95'][0]:+.1f}, {100 * diff['ci95'][1]:+.1f}]"
    gap = "-" if diff["mean"] is None else f"{100 * diff['mean']:+.1f}"
    md = [f"### Signal of the self-reward, round {r}", "",
          f"Checked against the {signal['task']} answers of {signal['queries']} queries, which sampling and "
          "training never see.", "", "| measure | value |", "|---|---|",
          f"| chosen response correct | {pct(signal['chosen_correct'])}% of {signal['pairs']} pairs |",
          f"| rejected response correct | {pct(signal['rejected_correct'])}% |",
          f"| chosen - rejected (paired, 95% CI) | {gap} pts {ci} |",
          f"| final beams correct | {pct(signal['final_beams_correct'])}% of {signal['final_beams']} |",
          f"| candidates correct | {pct(signal['candidates_correct'])}% of {signal['candidates']} |",
          f"| AUROC of f vs correct | {fmt(signal['auroc_f'])} |",
          f"| AUROC of s vs correct | {fmt(signal['auroc_s'])} |",
          f"| rollouts cut by their budget | {pct(signal['rollouts_cut_share'])}% of {signal['rollouts']} |", ""]
    if figure.is_file():
        shutil.copyfile(figure, plots / f"signal_round{r}.png")
        md += [f"![f of correct vs wrong responses, round {r}](plots/signal_round{r}.png)", ""]
    return md
