"""Build a paper baseline's training data (sft, spin, star, coh, self-rewarding, scpo); optionally train it.

Writes the same files as Genius (pairs.jsonl or sft.jsonl in the shared schema, plus
candidates.jsonl with every sample/score/vote and baseline.yaml), so `genius train` takes them
unchanged. A rerun with the same --out resumes.

  genius baseline scpo --queries queries.jsonl --out runs/scpo --limit 32 --k 4
  genius baseline sft  --queries alpaca_cleaned.sft.jsonl --out runs/sft       # corpus 'output'
  genius baseline spin --queries alpaca_cleaned.sft.jsonl --out runs/spin --limit 64 \\
      --train --iterations 2 --train-config train.yaml   # build -> train -> build with the new model

With --train the rounds run through the round driver of `genius run` (no evaluation): OUT is a
run directory (genius.layout: OUT/round<r>/sample with the data, OUT/round<r>/train with the
genius.training run, DONE.json per stage); the method fixes the loss (sft, dpo or dpo_nll) and
the reference (the previous round's model for the DPO baselines, as their papers iterate), round r
samples with seed + r, and torchrun / accelerate launch splits each round's data over the
processes as in `genius run`. --config takes a YAML of BaselineConfig keys (k, temperature,
judge_samples, vote_threshold, ...; see genius.baselines.config).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genius.baselines.config import BaselineConfig
from genius.commands._common import (add_config_flags, add_model_arguments, add_parallel_arguments, add_set_argument,
                                     engine_from_args, launch_share)

NAMES_HELP = "the baseline: sft, spin, star, coh, self_rewarding (or self-rewarding) or scpo"
"""Written out, tested against genius.baselines.BUILDERS."""

# BaselineConfig fields with a flag of the same name (flags left unset do not override --config).
CONFIG_FLAGS = ("k", "temperature", "max_new_tokens", "batch_size", "seed", "system_prompt")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help=NAMES_HELP)
    add_model_arguments(p, config=BaselineConfig)
    add_parallel_arguments(p)
    p.add_argument("--queries", required=True,
                   help="JSONL/JSON/CSV queries (instruction [+ input] or prompt); sft/spin need a JSONL 'output'")
    p.add_argument("--out", required=True, type=Path, help="output folder (resumed when it exists)")
    p.add_argument("--config", type=Path, help="YAML of BaselineConfig keys; the flags below override it")
    add_set_argument(p, "judge_samples=1")
    p.add_argument("--limit", type=int, help="use only the first N queries")
    p.add_argument("--field", help="which field holds the query text when a record has several")
    add_config_flags(p, BaselineConfig, CONFIG_FLAGS)
    p.add_argument("--force", action="store_true", help="go on in an --out folder started with other settings")
    p.add_argument("--train", action="store_true", help="train on the data (genius.training) after building it")
    p.add_argument("--iterations", type=int, default=1, help="build -> train rounds (needs --train; default 1)")
    p.add_argument("--train-config", type=Path,
                   help="YAML of TrainConfig keys for --train (model, reference_model, data and seed are set by the "
                        "rounds; loss defaults to the method's)")


def run_config(name: str, cfg: BaselineConfig, args: argparse.Namespace) -> Any:
    """``genius baseline NAME --train`` as the run config it is: the method's rounds through the
    round driver of ``genius run`` (one seed rule, one done marker, one reference rule), without
    evaluation (``eval: {tasks: []}``). The seed and engine settings of the baseline config become
    the run's; --train-config is the run's ``train`` section."""
    from genius import config
    from genius.run_config import PipelineConfig, validate_stages

    settings = config.to_dict(cfg)
    data = {
        "model": args.model, "run_dir": str(args.out), "method": name, "rounds": args.iterations,
        "seed": settings.pop("seed"), "engine": settings.pop("engine"), "engine_options": settings.pop("engine_options"),
        "dtype": args.dtype, "device": args.device, "baseline": settings, "eval": {"tasks": []},
        "queries": {"source": str(args.queries), "count": args.limit, "field": args.field},
        "train": config.read_mapping(args.train_config) if args.train_config else {},
    }
    source = str(args.train_config or "genius baseline --train")
    run = config.from_dict(PipelineConfig, data, source=source)
    validate_stages(run, source=source)
    return run


def run(args: argparse.Namespace) -> int:
    from genius.baselines import build, get_builder
    from genius.baselines.common import load_baseline_queries
    from genius.commands._common import config_from_args
    from genius.errors import UserError

    builder = get_builder(args.name)
    cfg = config_from_args(BaselineConfig, args, args.config)
    if args.iterations != 1 and not args.train:
        raise UserError("--iterations needs --train (each iteration builds its data with the model trained before)")
    if args.train:
        return _build_and_train(builder.name, cfg, args)
    queries = load_baseline_queries(args.queries, supervised=builder.supervised, limit=args.limit, field=args.field,
                                    system=cfg.system_prompt)
    share = launch_share(args)
    if share is None:
        return 0
    from genius.lock import hold_folder

    from genius.sampling.runner import check_inputs, sample_inputs

    inputs = sample_inputs(args.model, args.queries)
    with hold_folder(args.out, shard=share[0]):  # one writer per shard of the folder, before the model loads
        check_inputs(Path(args.out), inputs, force=args.force)  # another model or query file: refused before loading
        engine = engine_from_args(args, cfg) if builder.uses_engine else None
        build(builder.name, cfg, queries, engine, args.out, shard=share[0], together=share[1], force=args.force,
              inputs=inputs)
    return 0


def _build_and_train(name: str, cfg: BaselineConfig, args: argparse.Namespace) -> int:
    from genius.errors import UserError
    from genius.io import read_json
    from genius.layout import DONE, RunLayout
    from genius.lock import hold_folder
    from genius.pipeline import run_pipeline
    from genius.ranks import Ranks

    if args.shard is not None:
        raise UserError("--shard builds data only; with --train use torchrun (genius.ranks splits each round's data "
                        "over the processes)")
    if args.trust_remote_code:
        raise UserError("--trust-remote-code goes with a plain build: with --train the rounds run through genius run, "
                        "which loads no model code")
    with hold_folder(Path(args.out), Ranks.from_env().lock_shard):
        run_dir = run_pipeline(run_config(name, cfg, args), force=args.force)
    if Ranks.from_env().is_main:
        last = read_json(RunLayout(run_dir).round(args.iterations).train / DONE)["result"]
        print(f"{name}: {args.iterations} round(s) done in {run_dir}; final model {last['model']}")
    return 0
