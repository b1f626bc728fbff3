"""Rebuild preference pairs from foresight trees without sampling again: genius pairs TREES --out PAIRS.

Example:
  genius pairs runs/s1/trees.jsonl --out runs/s1/pairs.uniform.jsonl --negatives uniform

Settings start from the sample_config.yaml beside TREES (when present) and from --config; the
flags below override them. Only the pair settings matter here (negatives, selection, tau, seed).
An empty TREES, or pairs fewer than an existing --out file holds, are refused unless --force:
the old file stays as it was.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from genius.commands._common import add_config_flags, add_set_argument
from genius.sampling.config import SampleConfig

# The SampleConfig fields that make pairs from a tree (the others only matter while sampling).
PAIR_FLAGS = ("negatives", "selection", "tau", "seed", "unfinished")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trees", help="a trees.jsonl written by genius sample")
    p.add_argument("--out", required=True, help="where to write the pairs (JSONL; replaced atomically)")
    p.add_argument("--force", action="store_true",
                   help="write even when TREES holds no tree or --out already holds more pairs than this would write")
    p.add_argument("--config", default=None, help="SampleConfig YAML (default: sample_config.yaml beside TREES)")
    add_set_argument(p, "negatives=uniform")
    add_config_flags(p, SampleConfig, PAIR_FLAGS)


def run(args: argparse.Namespace) -> int:
    from genius.commands._common import config_from_args
    from genius.errors import UserError
    from genius.io import count_lines, input_file
    from genius.sampling.runner import CONFIG_NAME, rewrite_pairs, summarize

    trees = input_file(args.trees, "a trees.jsonl written by genius sample")
    source = args.config or (trees.parent / CONFIG_NAME if (trees.parent / CONFIG_NAME).is_file() else None)
    cfg = config_from_args(SampleConfig, args, source)
    out = Path(args.out)
    if out.resolve() == trees.resolve():
        raise UserError(f"--out {out} is the trees file itself; choose another path")
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder, expected the path of a pairs file (e.g. {out / 'pairs.jsonl'})")
    had = count_lines(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Checked before the new file replaces the old one: a refusal leaves --out as it was.
    rewrite_pairs(trees, out, cfg, check=None if args.force else _no_less(trees, out, had))
    stats = summarize(trees, out, cfg)
    q = stats["pair_advantage_quantiles"]
    print(f"genius pairs: {stats['pairs']} pairs from {stats['queries']} trees -> {out} "
          f"(negatives {cfg.negative_rule}; median A_w {q['A_w']['q50']:.3f}, A_l {q['A_l']['q50']:.3f}; "
          f"{stats['pairs_with_a_cut_side']} with a cut response, unfinished: {cfg.unfinished})")
    return 0


def _no_less(trees: Path, out: Path, had: int) -> Callable[[int, int], None]:
    """The check of rewrite_pairs: no pairs file from an empty trees file, and none that holds fewer
    pairs than the one at --out (a wrong or damaged trees file would replace good data with less)."""
    from genius.errors import UserError

    def check(n_trees: int, n_pairs: int) -> None:
        if n_trees == 0:
            raise UserError(f"{trees}: no trees in it, nothing to make pairs from"
                            f"{f' ({out} keeps its {had} pairs)' if had else ''}; pass --force to write an "
                            "empty pairs file")
        if n_pairs < had:
            raise UserError(f"{out}: has {had} pairs, this would write {n_pairs} (from {n_trees} trees in {trees}); "
                            "nothing replaced: pass --force to replace it, or choose another --out")

    return check
