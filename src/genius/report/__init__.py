"""``report.md`` and PNG plots of a run directory, and a side-by-side table of several runs.

What it reads, through the run's layout (genius.layout; every part is optional: a missing file
drops its section, never the report):

- ``config.yaml``: the pipeline config as run (summary at the top);
- ``*/DONE.json``: stage timings (``{"stage", "seconds"}``);
- ``roundR/sample/stats.json``: sampling statistics (numbers shown as they are);
- ``roundR/sample/pairs.jsonl``: advantages ``A_w``, ``A_l`` of every pair (histogram);
- ``roundR/train/train_log.jsonl``: one record per logged training step (``step`` plus numbers;
  the curves plot the keys listed in ``CURVES``);
- ``eval/base``, ``roundR/eval``, ``roundR/eval-stepS``: evaluation folders of
  ``genius.evaluation`` holding ``<task>/metrics.json`` (``accuracy``, ``ci95``, ``n``) and
  ``<task>/samples.jsonl`` (``id``, ``correct``: for the paired comparison, which is
  genius.evaluation.compare, the one `genius eval compare` uses).

Modules: ``runs`` (what is read), ``tables`` (markdown tables), ``plots`` (figures), ``build``
(report.md, section by section).
"""

from genius.report.build import build_comparison_report, build_report
from genius.report.plots import (CURVES, advantage_bins, curves, plot_advantages, plot_comparison, plot_scaling,
                                 plot_training, scaling_series)
from genius.report.runs import EvalPoint, comparison_members, eval_points, final_points, stage_times
from genius.report.tables import accuracy_table, comparison_rows, runs_table

__all__ = ["CURVES", "EvalPoint", "accuracy_table", "advantage_bins", "build_comparison_report",
           "build_report", "comparison_members", "comparison_rows", "curves", "eval_points", "final_points",
           "plot_advantages", "plot_comparison", "plot_scaling", "plot_training", "runs_table", "scaling_series",
           "stage_times"]
