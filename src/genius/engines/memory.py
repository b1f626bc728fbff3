"""How many prompts the hf engine can generate for at once within a memory budget.

The lean decode path allocates each chunk's KV cache up front at its final length (prompt keys
once per prompt, generated keys once per sample), and its prefill materialises the attention
scores of a whole layer (quadratic in the prompt). With the paper presets (512 sequences per
call, 1024-token rollouts after ~1000-token prompts) an unbounded chunk would need ~100-145 GiB of
KV cache for Llama-3.1-8B alone, so the engine cuts each call into chunks that fit the budget
(``plan_chunk``). All the arithmetic is here, in one function, so that it can be checked by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

LOGIT_COPIES = 3
"""fp32 vocabulary-sized rows alive per decoding row: the logits and two sampling temporaries."""


@dataclass(frozen=True)
class ModelShape:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    dtype_bytes: int

    @classmethod
    def from_config(cls, config: Any, dtype_bytes: int) -> "ModelShape":
        heads = int(config.num_attention_heads)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(layers=int(config.num_hidden_layers), hidden=int(config.hidden_size), heads=heads,
                   kv_heads=int(getattr(config, "num_key_value_heads", None) or heads), head_dim=int(head_dim),
                   intermediate=int(getattr(config, "intermediate_size", 4 * config.hidden_size)),
                   vocab=int(config.vocab_size), dtype_bytes=dtype_bytes)

    @property
    def kv_bytes_per_token(self) -> int:
        """Keys and values of one token in every layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True)
class ChunkPlan:
    kv_bytes_per_token: int
    """KV cache of one token of one row, all layers."""
    bytes_per_prompt: int
    """Peak memory one prompt and its samples add: KV cache (prompt once, samples' tokens each),
    one layer's prefill activations and attention scores, the decoding rows' logits."""
    budget_bytes: int
    prompts: int
    """Prompts (each with all its samples) per chunk: budget // bytes_per_prompt (0: none fits)."""


def plan_chunk(shape: ModelShape, *, prompt_tokens: int, new_tokens: int, samples: int,
               budget_bytes: int) -> ChunkPlan:
    """The hf engine's memory per prompt of ``prompt_tokens`` tokens with ``samples`` samples of
    up to ``new_tokens`` tokens each, and how many such prompts fit in ``budget_bytes``."""
    b, p = shape.dtype_bytes, prompt_tokens
    kv = shape.kv_bytes_per_token * (p + samples * new_tokens)
    # One layer at a time: residual, norm and attention output (hidden each), q/k/v, gate/up and
    # their product (intermediate each); scores in the weights' dtype, their fp32 softmax and
    # its cast back, plus the [prompt, prompt] bias.
    activations = p * b * (3 * shape.hidden + (shape.heads + 2 * shape.kv_heads) * shape.head_dim
                           + 3 * shape.intermediate)
    scores = p * p * (shape.heads * (2 * b + 4) + b)
    logits = samples * shape.vocab * 4 * LOGIT_COPIES
    per_prompt = kv + activations + scores + logits
    return ChunkPlan(kv_bytes_per_token=shape.kv_bytes_per_token, bytes_per_prompt=per_prompt,
                     budget_bytes=budget_bytes, prompts=max(0, budget_bytes // per_prompt))


def device_budget(device: str, utilization: float) -> int:
    """Bytes the engine may still fill: ``utilization`` of the device's memory less what is
    in use now (the weights among it). CUDA: the device's total and torch's allocations; CPU:
    the machine's RAM and this process's resident set."""
    if device.startswith("cuda"):
        import torch

        index = torch.device(device).index or 0
        total = torch.cuda.get_device_properties(index).total_memory
        return max(0, int(utilization * total) - torch.cuda.memory_allocated(index))
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(0, int(utilization * total) - _resident_bytes())


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
