"""Train a model on preference pairs (ACO, DPO, IPO, SimPO, ROPO, DPO+NLL) or SFT data.

Examples:
  genius train --config configs/train_cpu_demo.yaml --data pairs.jsonl --out runs/aco
  genius train --data pairs.jsonl --loss dpo --set beta=0.2 --set lora.r=8 --out runs/dpo
  accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml -m genius.cli train \\
      --config configs/train_paper_llama8b.yaml --data pairs.jsonl --out runs/paper

Writes OUT/train_config.yaml, OUT/train_log.jsonl, OUT/checkpoint-<step>/ and OUT/final/ (a
plain HF model folder: `genius generate --model OUT/final` loads it). Rerunning the same command
after a kill resumes from the last checkpoint with the same data order.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genius.commands._common import add_config_flag, add_set_argument

# TrainConfig imports torch (its losses) and the parser is built for every command, so its flags
# name the class and are written out; tests/integration/test_cli_flags.py checks them against it.
TRAIN_CONFIG = "genius.training.config.TrainConfig"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="YAML train config (genius.training.TrainConfig)")
    add_config_flag(p, TRAIN_CONFIG, "--data", dest="data", type=Path, action="append",
                    help="pairs.jsonl or sft.jsonl (repeatable); overrides the config's data")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    add_config_flag(p, TRAIN_CONFIG, "--model", dest="model",
                    help="starting model spec (default: the config's, else smollm2-135m)")
    add_config_flag(p, TRAIN_CONFIG, "--loss", dest="loss", help="aco (default), dpo, ipo, simpo, ropo, sft, dpo_nll")
    add_config_flag(p, TRAIN_CONFIG, "--max-steps", dest="max_steps", type=int,
                    help="optimizer steps (overrides epochs)")
    add_config_flag(p, TRAIN_CONFIG, "--lr", dest="lr", type=float, help="peak learning rate")
    add_config_flag(p, TRAIN_CONFIG, "--cpu", dest="cpu", action="store_true",
                    help="train on CPU even when a GPU is visible")
    add_set_argument(p, "beta=0.2, lora.r=8, trackers=[tensorboard]")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the last checkpoint in --out (default); --no-resume refuses a used folder")
    p.add_argument("--force", action="store_true",
                   help="go on in an --out folder started with other settings (its checkpoints were trained with "
                        "the old ones)")


def run(args: argparse.Namespace) -> int:
    from genius.commands._common import config_from_args
    from genius.lock import hold_folder
    from genius.ranks import Ranks
    from genius.training import TrainConfig, run_train

    cfg = config_from_args(TrainConfig, args, args.config)
    # Every process of a launch holds its own shard of the folder: a second launch is refused.
    with hold_folder(args.out, Ranks.from_env().lock_shard):
        run_train(cfg, args.out, resume=args.resume, force=args.force)
    return 0
