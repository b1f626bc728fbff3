"""Combine the shards of a sharded genius sample run: genius merge RUN_DIR [--partial].

Reads trees.<i>-of-<n>.jsonl of every shard and writes trees.jsonl, pairs.jsonl and stats.json
in query order, each query once. The last shard to finish already does this by itself. A shard
file holding fewer trees than its stats recorded when it finished is refused (nothing merged), and
so is a folder that a shard or another merge is writing.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the --out folder of the sharded genius sample runs")
    p.add_argument("--partial", action="store_true", help="merge even though some shards are not finished")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genius.errors import UserError
    from genius.lock import hold_folder
    from genius.sampling import merge_shards

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():  # the lock would create it
        raise UserError(f"{run_dir}: {'not a folder' if run_dir.exists() else 'no such folder'} (expected the --out "
                        "folder of sharded genius sample runs)")
    with hold_folder(args.run_dir):  # refused while a shard (or another merge) writes the folder
        stats = merge_shards(args.run_dir, allow_partial=args.partial)
    print(f"genius merge: {stats['shards_merged']}/{stats['shards']} shards -> {stats['queries']} queries, "
          f"{stats['pairs']} pairs in {args.run_dir}{'' if stats['complete'] else ' (partial)'}")
    return 0
