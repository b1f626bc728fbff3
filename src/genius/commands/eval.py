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

from genius.commands._common import (add_config_flag, add_config_flags, add_model_arguments, add_parallel_arguments,
                                     add_set_argument, launch_share)

# EvalConfig fields with a flag of the same name (flags left unset do not override --config).
CONFIG_FLAGS = ("limit", "samples", "temperature", "top_p", "max_new_tokens", "batch_size", "seed")


def _task_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from genius.evaluation.evaluate import EvalConfig
    from genius.evaluation.prompts import PRESETS
    from genius.evaluation.tasks import list_tasks

    p.add_argument("compare", nargs="*", metavar="compare RUN_A RUN_B",
                   help="compare two eval output folders instead of evaluating")
    p.add_argument("--config", type=Path, default=None, help="YAML EvalConfig; flags override it")
    add_set_argument(p, "engine_options.max_model_len=2048")
    add_model_arguments(p, config=EvalConfig)
    add_parallel_arguments(p)
    add_config_flag(p, EvalConfig, "--tasks", dest="tasks", type=_task_list,
                    help=f"comma-separated tasks (default gsm8k): {', '.join(list_tasks())}")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/eval/<model name>); for compare: also write the table here")
    add_config_flags(p, EvalConfig, CONFIG_FLAGS)
    add_config_flag(p, EvalConfig, "--preset", dest="preset", choices=sorted(PRESETS),
                    help="prompt protocol: paper (default; few-shot GSM8K/MATH), code (reference code shots), "
                         "zero-shot")
    add_config_flag(p, EvalConfig, "--data-dir", dest="data_dir", type=Path,
                    help="folder with a subfolder per task in the official formats (default: the config's, "
                         "else $GENIUS_DATA, else the hub)")
    add_config_flags(p, EvalConfig, ("allow_code_execution", "livecodebench_release", "livecodebench_dates",
                                      "wildbench_reference", "judge_url", "judge_model", "judge_local",
                                      "judge_max_tokens"))
    add_config_flag(p, EvalConfig, "--judge-key-env", dest="judge_api_key_env", metavar="VAR",
                    help="environment variable holding the judge API's key (default: OPENAI_API_KEY; never stored)")
    p.add_argument("--force", action="store_true", help="go on in an --out folder started with other settings")


def run(args: argparse.Namespace) -> int:
    from genius.errors import UserError

    if args.compare:
        if args.compare[0] != "compare" or len(args.compare) != 3:
            raise UserError(f"unexpected arguments {' '.join(args.compare)}: use 'genius eval compare RUN_A RUN_B'")
        return _compare(Path(args.compare[1]), Path(args.compare[2]), args.out)
    return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    import time

    from genius.commands._common import config_from_args
    from genius.evaluation import EvalConfig, run_eval

    cfg = config_from_args(EvalConfig, args, args.config)
    args.device = cfg.device
    share = launch_share(args)  # under a launcher: this process's GPU
    if share is None:
        return 0
    cfg.device = args.device
    if cfg.data_dir is None and os.environ.get("GENIUS_DATA"):
        cfg.data_dir = Path(os.environ["GENIUS_DATA"])
    out = args.out or Path("runs") / "eval" / Path(cfg.model.rstrip("/")).name
    t0 = time.perf_counter()
    from genius.lock import hold_folder

    with hold_folder(out, shard=share[0]):  # one writer per shard of the folder, before the model loads
        results = run_eval(cfg, out, shard=share[0], together=share[1], force=args.force)
    if len(results) < len(cfg.tasks):
        print(f"eval: shard {share[0][0]}/{share[0][1]} done in {time.perf_counter() - t0:.0f}s; "
              f"another process merges the shards into {out}")
        return 0
    print((out / "results.md").read_text(), end="")
    print(f"eval: {len(cfg.tasks)} task(s) in {time.perf_counter() - t0:.0f}s -> {out}")
    return 0


def _compare(run_a: Path, run_b: Path, out: Path | None) -> int:
    from genius.evaluation.compare import compare_runs  # the one comparison: report.md shows the same numbers
    from genius.evaluation.report import compare_table
    from genius.io import atomic_write_text

    table = compare_table(compare_runs(run_a, run_b), str(run_a), str(run_b))
    print(table, end="")
    if out is not None:
        target = out / "compare.md" if out.is_dir() or not out.suffix else out
        atomic_write_text(target, table)
        print(f"written to {target}")
    return 0
