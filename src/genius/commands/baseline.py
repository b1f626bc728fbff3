"""Build a paper baseline's training data (sft, spin, star, coh, self-rewarding, scpo); optionally train it.

Writes the same files as Genius (pairs.jsonl or sft.jsonl in the shared schema, plus
candidates.jsonl with every sample/score/vote and baseline.yaml), so `genius train` takes them
unchanged. A rerun with the same --out resumes.

  genius baseline scpo --queries queries.jsonl --out runs/scpo --limit 32 --k 4
  genius baseline sft  --queries alpaca_cleaned.sft.jsonl --out runs/sft       # corpus 'output'
  genius baseline spin --queries alpaca_cleaned.sft.jsonl --out runs/spin --limit 64 \\
      --train --iterations 2 --train-config train.yaml   # build -> train -> build with the new model

With --train each iteration writes OUT/iter<t>/ (data) and OUT/iter<t>/train/ (genius.training
run; the method fixes the loss: sft, dpo or dpo_nll). --config takes a YAML of BaselineConfig
keys (k, temperature, judge_samples, vote_threshold, ...; see genius.baselines.config).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

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
    p.add_argument("--force", action="store_true",
                   help="go on in an --out folder built with other settings (without --train)")
    p.add_argument("--train", action="store_true", help="train on the data (genius.training) after building it")
    p.add_argument("--iterations", type=int, default=1, help="build -> train rounds (needs --train; default 1)")
    p.add_argument("--train-config", type=Path,
                   help="YAML of TrainConfig keys for --train (model, reference_model, data and loss are set here)")


def _trainer(path: Path | None) -> Callable:
    """A train(TrainRequest) -> model folder over genius.training.run_train; the YAML is checked now,
    not after minutes of generation."""
    from genius.config import from_dict
    from genius.errors import UserError
    from genius.io import read_yaml
    from genius.training import TrainConfig, run_train

    base = (read_yaml(path) or {}) if path else {}
    source = str(path) if path else "train config"
    owned = ("model", "reference_model", "data", "loss")
    taken = [k for k in owned if k in base]
    if taken:
        raise UserError(f"{source}: key '{taken[0]}' is set by genius baseline (the method and the iteration fix "
                        f"{', '.join(owned)}); remove it")
    from_dict(TrainConfig, base, source=source)

    def train(req) -> str:
        cfg = from_dict(TrainConfig, {**base, "model": req.model, "reference_model": req.reference,
                                      "data": str(req.data), "loss": req.loss}, source=source)
        return str(run_train(cfg, req.out_dir))

    return train


def run(args: argparse.Namespace) -> int:
    from genius.baselines import build, get_builder
    from genius.baselines.common import check_config_copy, load_baseline_queries
    from genius.baselines.iterate import run_iterations
    from genius.commands._common import config_from_args
    from genius.engines import make_engine
    from genius.errors import UserError
    from genius.ranks import Ranks

    builder = get_builder(args.name)
    cfg = config_from_args(BaselineConfig, args, args.config)
    if args.iterations != 1 and not args.train:
        raise UserError("--iterations needs --train (each iteration builds its data with the model trained before)")
    if args.force and args.train:
        raise UserError("--force goes with a plain build: with --train each iteration folder keeps its own settings; "
                        "use another --out")
    train = _trainer(args.train_config) if args.train else None
    queries = load_baseline_queries(args.queries, supervised=builder.supervised, limit=args.limit, field=args.field,
                                    system=cfg.system_prompt)
    if train is None:
        share = launch_share(args)
        if share is None:
            return 0
        engine = engine_from_args(args, cfg) if builder.uses_engine else None
        if args.force:  # the new settings become the folder's, so that the build goes on with them
            Path(args.out).mkdir(parents=True, exist_ok=True)
            check_config_copy(Path(args.out), builder.name, cfg, force=True)
        build(builder.name, cfg, queries, engine, args.out, shard=share[0], together=share[1])
        return 0
    if Ranks.from_env().launched or args.shard is not None:
        raise UserError("genius baseline --train runs in one process; for several GPUs put the baseline in a run "
                        f"config (method: {builder.name}) and launch genius run with torchrun")

    def engine_for(spec: str):
        return make_engine(spec, engine=cfg.engine, options=cfg.engine_options, dtype=args.dtype, device=args.device,
                           trust_remote_code=args.trust_remote_code)

    final = run_iterations(builder.name, cfg, queries, base_model=args.model, iterations=args.iterations,
                           out_dir=args.out, make_engine=engine_for, train=train)
    print(f"{builder.name}: {args.iterations} iteration(s) done; final model {final}")
    return 0
