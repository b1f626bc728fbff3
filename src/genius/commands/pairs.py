"""Rebuild preference pairs from foresight trees without sampling again: genius pairs TREES --out PAIRS.

Example:
  genius pairs runs/s1/trees.jsonl --out runs/s1/pairs.uniform.jsonl --negatives uniform

Settings start from the sample_config.yaml beside TREES (when present) and from --config; the
flags below override them. Only the pair settings matter here (negatives, selection, tau, seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genius.commands._common import add_config_flags, add_set_argument
from genius.sampling.config import SampleConfig

# The SampleConfig fields that make pairs from a tree (the others only matter while sampling).
PAIR_FLAGS = ("negatives", "selection", "tau", "seed", "unfinished")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trees", help="a trees.jsonl written by genius sample")
    p.add_argument("--out", required=True, help="where to write the pairs (JSONL; replaced atomically)")
    p.add_argument("--config", default=None, help="SampleConfig YAML (default: sample_config.yaml beside TREES)")
    add_set_argument(p, "negatives=uniform")
    add_config_flags(p, SampleConfig, PAIR_FLAGS)


def run(args: argparse.Namespace) -> int:
    from genius.commands._common import config_from_args
    from genius.errors import UserError
    from genius.sampling.runner import CONFIG_NAME, rewrite_pairs, summarize

    trees = Path(args.trees)
    if not trees.is_file():
        raise UserError(f"{trees}: file not found (expected a trees.jsonl written by genius sample)")
    source = args.config or (trees.parent / CONFIG_NAME if (trees.parent / CONFIG_NAME).is_file() else None)
    cfg = config_from_args(SampleConfig, args, source)
    out = Path(args.out)
    if out.resolve() == trees.resolve():
        raise UserError(f"--out {out} is the trees file itself; choose another path")
    out.parent.mkdir(parents=True, exist_ok=True)
    rewrite_pairs(trees, out, cfg)
    stats = summarize(trees, out, cfg)
    q = stats["pair_advantage_quantiles"]
    print(f"genius pairs: {stats['pairs']} pairs from {stats['queries']} trees -> {out} "
          f"(negatives {cfg.negative_rule}; median A_w {q['A_w']['q50']:.3f}, A_l {q['A_l']['q50']:.3f}; "
          f"{stats['pairs_with_a_cut_side']} with a cut response, unfinished: {cfg.unfinished})")
    return 0
