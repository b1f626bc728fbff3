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

import yaml


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="YAML train config (genius.training.TrainConfig)")
    p.add_argument("--data", type=Path, action="append", default=None,
                   help="pairs.jsonl or sft.jsonl (repeatable); overrides the config's data")
    p.add_argument("--out", type=Path, required=True, help="run folder")
    p.add_argument("--model", default=None, help="starting model spec (default: the config's, else smollm2-135m)")
    p.add_argument("--loss", default=None, help="aco (default), dpo, ipo, simpo, ropo, sft, dpo_nll")
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (overrides epochs)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--cpu", action="store_true", default=None, help="train on CPU even when a GPU is visible")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, value in YAML syntax (e.g. beta=0.2, lora.r=8, trackers=[tensorboard])")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the last checkpoint in --out (default); --no-resume refuses a used folder")


def parse_sets(items: list[str]) -> dict:
    """['a=1', 'lora.r=8'] -> {'a': 1, 'lora': {'r': 8}}, values parsed as YAML."""
    from genius.errors import UserError

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def run(args: argparse.Namespace) -> int:
    from genius import config as config_io
    from genius.io import read_yaml
    from genius.training import TrainConfig, run_train

    data = (read_yaml(args.config) or {}) if args.config else {}
    for key, value in parse_sets(args.set).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    flags = {"model": args.model, "loss": args.loss, "max_steps": args.max_steps, "lr": args.lr, "cpu": args.cpu,
             "data": [str(p) for p in args.data] if args.data else None}
    data.update({k: v for k, v in flags.items() if v is not None})
    cfg = config_io.from_dict(TrainConfig, data, source=str(args.config or "train flags"))
    run_train(cfg, args.out, resume=args.resume)
    return 0
