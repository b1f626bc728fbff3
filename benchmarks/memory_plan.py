"""Generation memory of the paper presets on one GPU: the hf engine's chunks and vLLM's KV room.

    python benchmarks/memory_plan.py [--gpu-gib 80] [configs/paper_llama8b_magpie.yaml ...]

For each preset's sampling and evaluation: the hf engine's bytes per prompt and prompts per chunk
(``genius.engines.memory.plan_chunk``) within ``gpu_memory_utilization`` of the GPU less the
bf16 weights, for a typical and for the longest prompt ``max_model_len`` allows; and how many
tokens of KV cache vLLM has in the same share (its own profile also reserves activations, so
its figure is a little lower). The model shapes are written here (their config.json values), so
that the script needs no hub access.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from genius import pipeline  # noqa: E402
from genius.engines.memory import ModelShape, plan_chunk  # noqa: E402

CONFIGS = {  # config.json of the hub models, and their parameter counts
    "meta-llama/Llama-3.1-8B-Instruct": (SimpleNamespace(
        num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
        intermediate_size=14336, vocab_size=128256), 8.03e9),
    "Qwen/Qwen2.5-7B-Instruct": (SimpleNamespace(
        num_hidden_layers=28, hidden_size=3584, num_attention_heads=28, num_key_value_heads=4, head_dim=128,
        intermediate_size=18944, vocab_size=152064), 7.62e9),
}
TYPICAL_QUERY_TOKENS = 300
"""A Magpie/OpenHermes query with the chat template (most are shorter)."""
TYPICAL_EVAL_PROMPT_TOKENS = 1000
"""The paper preset's few-shot GSM8K/MATH prompt with the question."""
GIB = 2**30


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", default=sorted(str(p) for p in Path("configs").glob("paper_*.yaml")))
    ap.add_argument("--gpu-gib", type=float, default=79.0,
                    help="GPU memory in GiB (an 80 GB A100/H100 shows torch ~79.2 GiB)")
    args = ap.parse_args()
    for path in args.configs:
        cfg = pipeline.load_config(path)
        config, params = CONFIGS[cfg.model]
        shape = ModelShape.from_config(config, 2)
        sample, ev = pipeline.sample_config(cfg, 1), pipeline.eval_config(cfg, cfg.model)
        util, window = cfg.engine_options.memory_utilization("cuda"), cfg.engine_options.max_model_len
        weights = int(params * 2)
        budget = int(util * args.gpu_gib * GIB) - weights
        print(f"{path}: {cfg.model}, bf16 weights {weights / GIB:.1f} GiB, {util} of {args.gpu_gib:.0f} GiB -> "
              f"{budget / GIB:.1f} GiB for generation; KV {shape.kv_bytes_per_token / 1024:.0f} KiB per token")
        longest_step_prompt = TYPICAL_QUERY_TOKENS + sample.steps * sample.max_step_tokens
        cases = [
            ("sampling, rollout after step K", longest_step_prompt, sample.max_rollout_tokens, 1,
             sample.batch_sequences),
            ("sampling, longest prompt max_model_len allows", window - sample.max_rollout_tokens,
             sample.max_rollout_tokens, 1, sample.batch_sequences),
            ("evaluation, few-shot prompt", TYPICAL_EVAL_PROMPT_TOKENS, ev.max_new_tokens, ev.samples,
             ev.batch_size * ev.samples),
        ]
        for name, prompt, new, n, rows in cases:
            plan = plan_chunk(shape, prompt_tokens=prompt, new_tokens=new, samples=n, budget_bytes=budget)
            chunks = -(-rows // max(plan.prompts * n, 1))
            fits = "fits" if plan.prompts >= 1 else "DOES NOT FIT"
            print(f"  hf   {name:46s} {prompt:5d} + {new:4d} tokens: {plan.bytes_per_prompt / GIB:6.3f} GiB per "
                  f"prompt, {plan.prompts:4d} prompts per chunk, a call of {rows} sequences in {chunks} chunks "
                  f"({fits}); unchunked it would need {rows // n * plan.bytes_per_prompt / GIB:.0f} GiB")
        tokens = budget // shape.kv_bytes_per_token
        print(f"  vllm KV cache room {tokens:,} tokens = {tokens // window} sequences of max_model_len {window} "
              f"at once ({'fits' if tokens >= window else 'DOES NOT FIT'}); the rest of a call waits its turn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
