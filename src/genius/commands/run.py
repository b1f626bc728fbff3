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

from genius.commands._common import add_config_flags, add_set_argument
from genius.pipeline import PipelineConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="pipeline config YAML (default: the packaged demo preset)")
    add_config_flags(p, PipelineConfig, ["run_dir", "model", "engine"])
    add_set_argument(p, "queries.count=8, sample.steps=2")
    p.add_argument("--only", default=None, metavar="STAGE[,STAGE]",
                   help="run only these stages (names as printed, e.g. round1-train)")
    p.add_argument("--force", action="store_true", help="go on in a run_dir that was started with other settings")
    p.add_argument("--plan", action="store_true",
                   help="dry run: print every stage's model, engine, processes, batch, memory per GPU, tokens and "
                        "time (genius.plan), load no weights, write nothing; exit 2 when a stage does not fit")
    p.add_argument("--gpus", type=int, default=8, help="--plan: GPUs of the run, all nodes (default 8)")
    p.add_argument("--gpus-per-node", type=int, default=8,
                   help="--plan: GPUs per node (default 8; with parallel: node, one engine per node)")
    p.add_argument("--gpu-gib", type=float, default=79.0,
                   help="--plan: memory of one GPU in GiB (default 79: what torch reports on an 80 GB A100/H100)")
    p.add_argument("--distributed", choices=["ddp", "zero2", "zero3", "fsdp"], default="zero3",
                   help="--plan: how training shards weights, gradients and optimizer state (default zero3)")
    p.add_argument("--tokens-per-s", type=float, default=None,
                   help="--plan: generated tokens per second of one engine, for the time column")


def run(args: argparse.Namespace) -> int:
    from genius import pipeline, report
    from genius.commands._common import config_overrides
    from genius.config import parse_sets

    # --set keys are dotted into sections; the flags name top-level fields and win over --set.
    cfg = pipeline.load_config(args.config, {**parse_sets(args.set), **config_overrides(args, PipelineConfig)})
    if args.plan:
        return _plan(cfg, args)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    from genius.lock import hold_folder
    from genius.ranks import Ranks

    # One writer of run_dir (the processes of one launch together), taken before any model loads;
    # a compare config's runs are folders inside it, so this one lock holds them all.
    with hold_folder(cfg.run_dir, Ranks.from_env().lock_shard):
        run_dir = pipeline.run_pipeline(cfg, force=args.force, only=only)
    if not Ranks.from_env().is_main:  # rank 0 prints the tables
        return 0
    print()
    members = report.comparison_members(run_dir)
    if members is not None:
        print(report.runs_table(members))
        print(f"comparison report: {run_dir / 'report.md'}")
        return 0
    base, trained = report.final_points(report.eval_points(run_dir))
    print(report.accuracy_table(base, trained))
    return 0


def _plan(cfg, args: argparse.Namespace) -> int:
    from genius.errors import UserError
    from genius.plan import format_plan, plan_run

    plans = plan_run(cfg, gpus=args.gpus, gpu_gib=args.gpu_gib, mode=args.distributed,
                     gpus_per_node=args.gpus_per_node)
    print(f"plan of {args.config or 'the demo preset'}: {args.gpus} GPU(s) of {args.gpu_gib:g} GiB, "
          f"training as {args.distributed}")
    print(format_plan(plans, args.tokens_per_s))
    short = [p.name for p in plans if not p.fits]
    if short:
        raise UserError(f"--plan: stage(s) {', '.join(short)} do not fit {args.gpu_gib:g} GiB per GPU (see above): "
                        "lower the batch or max_model_len, use more GPUs or another --distributed mode")
    return 0
