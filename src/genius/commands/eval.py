"""Evaluate a model on reasoning benchmarks with the paper's protocol, or compare two runs.

  genius eval --model smollm2-135m --tasks gsm8k,math500 --limit 20 --data-dir ../shared/data/bench --out runs/eval/base
  genius eval --model runs/demo/checkpoint --tasks gsm8k --samples 8 --out runs/eval/trained
  genius eval compare runs/eval/base runs/eval/trained [--out compare.md]
  torchrun --nproc-per-node 8 -m genius.cli eval --model M --tasks gsm8k,math500 --out runs/eval/m   # 8 GPUs

Writes <out>/<task>/samples.jsonl, <out>/<task>/metrics.json and <out>/results.md; rerunning the
same command resumes (answered items are skipped). --data-dir is a folder with one subfolder
per task in the official formats (default: $GENIUS_DATA; without it, tasks load from the hub).
compare prints, per task, B - A over the paired items with a bootstrap 95% interval and an exact
McNemar p-value.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from genius.commands._common import add_model_arguments, add_parallel_arguments, launch_share


def add_arguments(p: argparse.ArgumentParser) -> None:
    from genius.evaluation.prompts import PRESETS
    from genius.evaluation.tasks import list_tasks

    p.add_argument("compare", nargs="*", metavar="compare RUN_A RUN_B",
                   help="compare two eval output folders instead of evaluating")
    # Every setting defaults to None: a flag overrides --config only when given.
    add_model_arguments(p, default=None)
    add_parallel_arguments(p)
    p.add_argument("--tasks", default=None, help=f"comma-separated tasks (default gsm8k): {', '.join(list_tasks())}")
    p.add_argument("--limit", type=int, default=None, help="only the first N items of each task")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/eval/<model name>); for compare: also write the table here")
    p.add_argument("--samples", type=int, default=None,
                   help="responses per item (default 1 = greedy; n > 1 adds maj@n, pass@n)")
    p.add_argument("--temperature", type=float, default=None, help="default 0 for 1 sample, 0.6 for several")
    p.add_argument("--top-p", type=float, default=None, help="default 1.0")
    p.add_argument("--max-new-tokens", type=int, default=None, help="token budget of each response (default 1024)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="prompt protocol: paper (default; few-shot GSM8K/MATH), code (reference code shots), zero-shot")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder with a subfolder per task in the official formats (default: the config's, "
                        "else $GENIUS_DATA, else the hub)")
    p.add_argument("--batch-size", type=int, default=None, help="items per generate call (default 64)")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--config", type=Path, default=None, help="YAML EvalConfig; flags override it")


def run(args: argparse.Namespace) -> int:
    from genius.errors import UserError

    if args.compare:
        if args.compare[0] != "compare" or len(args.compare) != 3:
            raise UserError(f"unexpected arguments {' '.join(args.compare)}: use 'genius eval compare RUN_A RUN_B'")
        return _compare(Path(args.compare[1]), Path(args.compare[2]), args.out)
    return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    import time

    from genius import config as config_io
    from genius.evaluation import EvalConfig, run_eval

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks is not None else None
    overrides = {
        "model": args.model, "tasks": tasks, "limit": args.limit,
        "samples": args.samples, "temperature": args.temperature, "top_p": args.top_p,
        "max_new_tokens": args.max_new_tokens, "preset": args.preset,
        "data_dir": str(args.data_dir) if args.data_dir else None, "seed": args.seed,
        "batch_size": args.batch_size, "engine": args.engine, "trust_remote_code": args.trust_remote_code or None,
        # auto is the flags' default as well as the config's: it never overrides a config's choice
        "dtype": None if args.dtype == "auto" else args.dtype,
    }
    share = launch_share(args)
    if share is None:
        return 0
    overrides["device"] = None if args.device == "auto" else args.device  # this process's GPU under a launcher
    cfg = config_io.load(EvalConfig, args.config, overrides)
    if cfg.data_dir is None and os.environ.get("GENIUS_DATA"):
        cfg.data_dir = Path(os.environ["GENIUS_DATA"])
    out = args.out or Path("runs") / "eval" / Path(cfg.model.rstrip("/")).name
    t0 = time.perf_counter()
    results = run_eval(cfg, out, shard=share[0], together=share[1])
    if len(results) < len(cfg.tasks):
        print(f"eval: shard {share[0][0]}/{share[0][1]} done in {time.perf_counter() - t0:.0f}s; "
              f"another process merges the shards into {out}")
        return 0
    print((out / "results.md").read_text(), end="")
    print(f"eval: {len(cfg.tasks)} task(s) in {time.perf_counter() - t0:.0f}s -> {out}")
    return 0


def _compare(run_a: Path, run_b: Path, out: Path | None) -> int:
    from genius.evaluation import compare_runs, compare_table
    from genius.io import atomic_write_text

    table = compare_table(compare_runs(run_a, run_b), str(run_a), str(run_b))
    print(table, end="")
    if out is not None:
        target = out / "compare.md" if out.is_dir() or not out.suffix else out
        atomic_write_text(target, table)
        print(f"written to {target}")
    return 0
