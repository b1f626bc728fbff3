"""Stepwise foresight re-sampling: queries -> foresight trees and preference pairs (trees.jsonl, pairs.jsonl).

Example:
  genius sample ../shared/data/queries/alpaca_cleaned.queries.jsonl --limit 16 --out runs/s1
  genius sample queries.jsonl --out runs/s1 --score step_logprob      # w/o foresight (paper Table 3)
  genius sample queries.jsonl --out runs/s1 --shard 0/2               # shard 0 of 2, by hand
  torchrun --nproc-per-node 8 -m genius.cli sample queries.jsonl --out runs/s1 --model M   # 8 GPUs

Rerun the same command to resume a killed run: it refuses other settings, another --model or
another queries file (by content) unless --force, and a second process writing the same --out (or
the same shard of it). Settings come from --config YAML (keys of genius.sampling.SampleConfig), with
flags on top. Writes trees.jsonl, pairs.jsonl, stats.json, sample_config.yaml and inputs.json into
--out.
"""

from __future__ import annotations

import argparse

from genius.commands._common import (add_config_flag, add_config_flags, add_model_arguments, add_parallel_arguments,
                                     add_set_argument)
from genius.sampling.config import SampleConfig


def _unescaped(text: str) -> str:
    """Read backslash escapes typed on the command line: --delimiter '\n' means a newline."""
    return text.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


# SampleConfig fields with a flag of the same name (flags left unset do not override the config file).
CONFIG_FLAGS = ("beams", "candidates", "steps", "tau", "step_temperature", "rollout_temperature", "top_p",
                "delimiter", "assistant_prefix", "max_step_tokens", "max_rollout_tokens", "seed", "batch_sequences",
                "score", "selection", "negatives", "unfinished")


def add_query_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of genius.queries.load_queries (shared with the commands that read query files)."""
    p.add_argument("queries", help="a .jsonl/.json/.csv file of queries, or a hub dataset id (online)")
    p.add_argument("--field", default=None, help="the record field holding the query when ambiguous "
                   "(default: instruction [+ input], prompt or question)")
    p.add_argument("--split", default="train", help="split of a hub dataset (default: train)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N queries (after --shuffle)")
    p.add_argument("--shuffle", action="store_true", help="shuffle the queries with --query-seed first")
    p.add_argument("--query-seed", type=int, default=0, help="seed of --shuffle (default: 0)")
    p.add_argument("--skip-invalid", action="store_true", help="skip (and count) malformed records instead of stopping")
    p.add_argument("--max-query-chars", type=int, default=8000, help="longer queries are skipped or truncated (default: 8000)")
    p.add_argument("--overlong", choices=["skip", "truncate"], default="skip", help="what to do with over-long queries")
    p.add_argument("--system", default=None, help="optional system message put before every query")


def load_queries_from_args(args: argparse.Namespace):
    from genius.queries import load_queries

    return load_queries(args.queries, field=args.field, limit=args.limit, shuffle=args.shuffle, seed=args.query_seed,
                        skip_invalid=args.skip_invalid, max_chars=args.max_query_chars, overlong=args.overlong,
                        system=args.system, split=args.split)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_query_arguments(p)
    p.add_argument("--out", required=True, help="run directory (created; an existing one is resumed)")
    p.add_argument("--config", default=None, help="YAML file of SampleConfig settings; the flags below override it")
    add_set_argument(p, "engine_options.max_model_len=2048")
    add_config_flags(p, SampleConfig, CONFIG_FLAGS, types={"delimiter": _unescaped, "assistant_prefix": _unescaped})
    add_config_flag(p, SampleConfig, "--end-marker", dest="end_markers", action="append",
                    help="a string that ends a response like EOS (repeatable)")
    p.add_argument("--answers", default=None,
                   help="answer key JSONL (id, task, gold[, labels, meta]; e.g. a run's queries/answers.jsonl): "
                        "after sampling, check the responses against it (genius.sampling.signal; never used "
                        "for sampling) and print the signal line")
    p.add_argument("--force", action="store_true",
                   help="go on in an --out folder started with other settings, another model or other queries")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(p, config=SampleConfig)
    add_parallel_arguments(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genius.commands._common import config_from_args, launch_share
    from genius.lock import hold_folder

    cfg = config_from_args(SampleConfig, args, args.config)  # validated: bad settings stop here
    share = launch_share(args)
    if share is None:
        return 0
    with hold_folder(args.out, shard=share[0]):  # one writer per shard, before the model loads
        stats = _sample(args, cfg, *share)
        skipped = {k: v for k, v in stats["input"].items() if k not in ("read", "loaded") and v}
        print(f"genius sample: {stats['queries']} queries in {args.out} ({stats['queries_this_run']} now, "
              f"{stats['queries_resumed']} resumed, {stats['queries_too_long']} too long for the context"
              f"{', skipped ' + str(skipped) if skipped else ''}), {stats['pairs']} pairs, "
              f"{stats['generated_tokens']} tokens in {stats['seconds']:.1f}s ({stats['tokens_per_s']:.0f} tok/s, "
              f"{stats['queries_per_min']:.1f} queries/min)")
        if args.answers and stats["merged_here"]:
            from genius.sampling.signal import write_signal

            print(write_signal(Path(args.out), Path(args.answers))["headline"])
    return 0


def _sample(args: argparse.Namespace, cfg: SampleConfig, shard: tuple[int, int] | None, together: bool) -> dict:
    """Check everything a refused resume or bad input would stop, then load the model and sample."""
    from pathlib import Path

    from genius import config as configlib
    from genius.commands._common import engine_from_args
    from genius.errors import UserError
    from genius.sampling import run_sample
    from genius.sampling.runner import CONFIG_NAME, check_inputs, sample_inputs

    # A folder started with other settings is refused now, not after the model has loaded.
    configlib.check_resume(Path(args.out) / CONFIG_NAME, cfg, force=args.force)
    queries = load_queries_from_args(args)
    if not queries.queries:
        raise UserError(f"{args.queries}: no usable queries ({dict(queries.counts)})")
    inputs = sample_inputs(args.model, args.queries, args.split)
    check_inputs(Path(args.out), inputs, force=args.force)  # another model or other queries: refused now
    if args.answers:  # a bad key fails now, not after the sampling
        from genius.sampling.signal import read_answer_key

        read_answer_key(Path(args.answers))
    engine = engine_from_args(args, cfg, max_batch_size=cfg.batch_sequences)
    return run_sample(cfg, queries, args.out, engine, force=args.force, shard=shard, together=together,
                      progress=not args.no_progress, inputs=inputs)
