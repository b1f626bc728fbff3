"""Write a run's report, or put several runs side by side: genius report RUN [RUN...].

One run: (re)writes RUN/report.md and RUN/plots/*.png and prints the accuracy table; for the
folder of a ``compare`` run (several methods, one config) it rebuilds the comparison report and
prints its table.
Several runs: prints one table, a row per run (trained accuracy per task and the mean, the
shared base model first), e.g. Genius vs its ablations vs other losses (paper Tables 3 and 4);
--out FILE also writes it as markdown.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, help="run directories of genius run")
    p.add_argument("--out", type=Path, default=None, help="also write the table (markdown) to this file")


def run(args: argparse.Namespace) -> int:
    from genius import report
    from genius.errors import UserError
    from genius.io import atomic_write_text
    from genius.layout import RunLayout

    for run_dir in args.runs:
        if not run_dir.is_dir():
            raise UserError(f"{run_dir}: no such run directory")
    members = report.comparison_members(args.runs[0]) if len(args.runs) == 1 else None
    if members is not None:
        report.build_comparison_report(args.runs[0], members)
        table = report.runs_table(members)
        print(f"report: {RunLayout(args.runs[0]).report}")
    elif len(args.runs) == 1:
        report.build_report(args.runs[0])
        base, trained = report.final_points(report.eval_points(args.runs[0]))
        table = report.accuracy_table(base, trained)
        print(f"report: {RunLayout(args.runs[0]).report}")
    else:
        for run_dir in args.runs:
            report.build_report(run_dir)
        table = report.runs_table(args.runs)
    print(table)
    if args.out:
        atomic_write_text(args.out, table)
    return 0
