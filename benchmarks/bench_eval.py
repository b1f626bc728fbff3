"""Evaluation throughput: one item at a time through HF ``generate()`` vs ``genius eval`` batched.

    python benchmarks/bench_eval.py [--items 64] [--max-new-tokens 128] [--model smollm2-135m]

Both sides answer the same GSM8K items (the development slice in ../shared/data/bench/gsm8k,
cycled if it holds fewer) with the same model object, the same prompts (the paper preset) and
greedy decoding with the same token budget:

(a) one item at a time: ``model.generate(prompt, do_sample=False, max_new_tokens=M)``, the usual
    evaluation loop;
(b) ``genius.evaluation.run_eval``: all items through the Engine protocol, ``--batch-size`` items
    per ``engine.generate`` call.

Prints items/s and generated tokens/s of both, the ratio, and how many extracted answers agree
(greedy decoding in fp32: they should nearly all agree; batching changes float summation order).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from genius.engines.hf import HFEngine
from genius.evaluation import EvalConfig, Task, get_task, register_task, run_eval
from genius.evaluation.prompts import build_messages, get_preset
from genius.models import chat_prompt_ids, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--preset", default="paper")
    args = ap.parse_args()

    model, tokenizer = load_model(args.model, dtype="fp32", device="cpu")
    task = get_task("gsm8k")
    pool = task.load(args.data_dir / "gsm8k")
    items = [pool[i % len(pool)] for i in range(args.items)]
    preset = get_preset(args.preset)
    print(f"{args.model} fp32 on cpu ({torch.get_num_threads()} threads), {len(items)} GSM8K items "
          f"({len(pool)} distinct), {args.preset} preset, greedy, max_new_tokens={args.max_new_tokens}")

    # (a) one item at a time through HF generate().
    answers_a = []
    tokens_a = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for item in items:
        ids = torch.tensor([chat_prompt_ids(tokenizer, build_messages(task, item, preset))])
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=args.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        new = out[0, ids.shape[1]:]
        tokens_a += int(new.shape[0])
        answers_a.append(task.extract(tokenizer.decode(new, skip_special_tokens=True), item))
    secs_a, cpu_a = time.perf_counter() - t0, time.process_time() - c0

    # (b) genius eval, batched, on the same model object. Items repeat when the slice is short,
    # and the runner keys records by id, so give the repeats their own ids.
    engine = HFEngine(model, tokenizer, max_batch_size=args.batch_size)
    bench_task = Task(name="_bench_gsm8k", answer_type="number", description="bench", few_shot="gsm8k",
                      generate=lambda n, seed: [replace(it, id=f"{it.id}#{k}") for k, it in enumerate(items[:n])])
    register_task(bench_task, replace=True)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = EvalConfig(model=args.model, tasks=[bench_task.name], limit=len(items), preset=args.preset,
                         max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        t0, c0 = time.perf_counter(), time.process_time()
        run_eval(cfg, Path(tmp), engine=engine)
        secs_b, cpu_b = time.perf_counter() - t0, time.process_time() - c0
        records = [json.loads(line) for line in (Path(tmp) / bench_task.name / "samples.jsonl").open()]
    tokens_b = sum(r["tokens"] for r in records)
    answers_b = [r["extracted"] for r in records]
    agree = sum(a == b for a, b in zip(answers_a, answers_b))

    n = len(items)
    print(f"{'':34}{'items/s':>10}{'tokens/s':>10}{'seconds':>10}{'CPU s':>10}")
    print(f"{'(a) HF generate(), one at a time':34}{n / secs_a:10.3f}{tokens_a / secs_a:10.1f}{secs_a:10.1f}{cpu_a:10.1f}")
    print(f"{'(b) genius eval, batched':34}{n / secs_b:10.3f}{tokens_b / secs_b:10.1f}{secs_b:10.1f}{cpu_b:10.1f}")
    # On a shared machine wall time depends on the neighbours; CPU time (process_time) counts
    # only the work this process did, so its ratio is the steadier one there.
    print(f"ratio (b)/(a) items/s: {secs_a / secs_b:.2f}x wall, {cpu_a / cpu_b:.2f}x CPU time; "
          f"extracted answers agree on {agree}/{n}")


if __name__ == "__main__":
    main()
