"""Run the whole loop: queries -> sample -> pairs -> train -> evaluate base and trained -> report.

genius run                       the demo preset (embedded model, synthetic problems, CPU, ~15 min)
genius run configs/demo.yaml     a pipeline config (see configs/)
genius run CONFIG --set queries.count=8 --set rounds=2     override keys (values are YAML)
genius run configs/table1_micro.yaml     Genius and the six baselines side by side (``compare``)

Everything goes into the config's run_dir; rerunning the same command skips finished stages
and resumes a half-finished one (Ctrl-C is safe). The results table is printed at the end and
written to run_dir/report.md with its plots.
"""

from __future__ import annotations

import argparse

from genius.engines.options import ENGINE_NAMES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="pipeline config YAML (default: the packaged demo preset)")
    p.add_argument("--run-dir", default=None, help="override run_dir")
    p.add_argument("--model", default=None, help="override the starting model")
    p.add_argument("--engine", default=None, choices=ENGINE_NAMES,
                   help="override the engine of sampling and evaluation: hf, vllm or auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted for sections (e.g. sample.steps=2); repeatable")
    p.add_argument("--only", default=None, metavar="STAGE[,STAGE]",
                   help="run only these stages (names as printed, e.g. round1-train)")
    p.add_argument("--force", action="store_true", help="go on in a run_dir that was started with other settings")


def parse_sets(items: list[str]) -> dict:
    import yaml

    from genius.errors import UserError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. queries.count=8")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: the value is not valid YAML") from None
    return out


def run(args: argparse.Namespace) -> int:
    from genius import pipeline, report

    overrides = parse_sets(args.set)
    if args.run_dir:
        overrides["run_dir"] = args.run_dir
    if args.model:
        overrides["model"] = args.model
    if args.engine:
        overrides["engine"] = args.engine
    cfg = pipeline.load_config(args.config, overrides)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    run_dir = pipeline.run_pipeline(cfg, force=args.force, only=only)
    print()
    members = report.comparison_members(run_dir)
    if members is not None:
        print(report.runs_table(members))
        print(f"comparison report: {run_dir / 'report.md'}")
        return 0
    base, trained = report.final_points(report.eval_points(run_dir))
    print(report.accuracy_table(base, trained))
    return 0
