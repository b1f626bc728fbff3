"""A lean decode path for Llama-family models over the HF model's own weights.

Why: per generated token, ``model.forward`` of transformers rebuilds a 4-D attention mask,
grows every layer's KV cache with ``torch.cat`` (a copy of the whole cache per step) and, with
grouped-query attention, copies keys and values once more to repeat them per query head. At
sampling batch sizes those copies cost more than the matmuls (see benchmarks/bench_engine.py).
Here the KV cache is allocated once at its final length, written in place, and queries are
grouped per KV head so keys and values are read where they lie. Decode is then matmul-bound
(profiled: ~80% of a step in ``mm``), so q/k/v and gate/up are each fused into one matmul
(measured ~14% faster per step at batch 64 on CPU) when the copy is small (``FUSE_MAX_BYTES``).

Only the architectures whose forward is exactly this one are accepted (``supports``); the
engine falls back to ``model.forward`` with a ``DynamicCache`` for everything else.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

_SUPPORTED_TYPES = ("llama", "mistral", "qwen2")
HEAD_BLOCK, HEAD_BLOCK_MIN = 1024, 16384
"""``linear`` multiplies weights of at least HEAD_BLOCK_MIN rows (a vocabulary head) in blocks
of HEAD_BLOCK rows on CPU."""
FUSE_MAX_BYTES = 2 << 30
"""Fuse q/k/v and gate/up weights when the fused copies take at most this much memory. The
copies are made per decoder (one ``generate`` chunk), so they follow weights that change."""


def supports(model: Any) -> bool:
    """True when ``model`` is a Llama-shaped decoder whose forward this module reproduces."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in _SUPPORTED_TYPES:
        return False
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "pretraining_tp", 1) != 1:
        return False
    # Sliding-window attention changes which keys a query sees; not reproduced here.
    if getattr(config, "model_type", None) == "qwen2":
        if getattr(config, "use_sliding_window", False):
            return False
    elif getattr(config, "sliding_window", None) is not None:
        return False
    inner = getattr(model, "model", None)
    return all(hasattr(inner, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")) and hasattr(
        model, "lm_head")


class LeanDecoder:
    """Prefill + one-token decode steps with a preallocated KV cache, batch rows left-padded.

    Every batch row shares the cache column of a step (left padding right-aligns the prompts);
    the rotary position of each row is its own count of real tokens so far. ``pad_bias`` masks
    the padding columns of each row.
    """

    def __init__(self, model: Any, fuse: bool | None = None):
        config = model.config
        self.model = model
        self.layers = list(model.model.layers[: config.num_hidden_layers])
        self.eps = config.rms_norm_eps
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.scale = self.head_dim ** -0.5
        self.cache: torch.Tensor | None = None  # [layers, 2, batch, kv_heads, length, head_dim]
        self.pad_bias: torch.Tensor | None = None  # [batch, length]: 0 or -inf
        self.length = 0  # filled cache columns
        weights = [(layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                    layer.mlp.gate_proj, layer.mlp.up_proj) for layer in self.layers]
        if fuse is None:
            fuse = sum(m.weight.numel() * m.weight.element_size() for w in weights for m in w) <= FUSE_MAX_BYTES
        # (weight, bias) of the fused projections per layer; None: use the model's own modules.
        self.qkv: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None
        self.gate_up: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None
        if fuse:
            self.qkv = [_fuse(q, k, v) for q, k, v, _, _ in weights]
            self.gate_up = [_fuse(g, u) for _, _, _, g, u in weights]

    # --------------------------------------------------------------- public steps
    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor,
                repeat: int, total_length: int) -> torch.Tensor:
        """Run the left-padded prompts, keep their keys/values ``repeat`` times each (the n samples
        of a prompt share its prefill) in a cache of ``total_length`` columns; return the last
        position's logits, one row per prompt (not repeated)."""
        batch, width = input_ids.shape
        dtype, device = self.model.lm_head.weight.dtype, input_ids.device
        self.cache = torch.zeros((len(self.layers), 2, batch * repeat, self.kv_heads, total_length, self.head_dim),
                                 dtype=dtype, device=device)
        valid = attention_mask.bool()
        causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
        allowed = causal[None] & valid[:, None, :]
        # Padding queries would see no key at all (NaN softmax); let them see themselves.
        allowed |= torch.eye(width, dtype=torch.bool, device=device)[None]
        bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
        pad = torch.zeros((batch, total_length), dtype=dtype, device=device)
        pad[:, :width].masked_fill_(~valid, float("-inf"))
        self.pad_bias = pad.repeat_interleave(repeat, 0) if repeat > 1 else pad
        hidden = self._forward(self.model.model.embed_tokens(input_ids), positions, bias, 0, repeat)
        self.length = width
        return self._logits(hidden[:, -1])

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (``positions``: each row's rotary position); return logits."""
        assert self.cache is not None and self.pad_bias is not None
        if self.length >= self.cache.shape[4]:
            raise RuntimeError("KV cache full: total_length was too small")
        bias = self.pad_bias[:, None, : self.length + 1]
        hidden = self._forward(self.model.model.embed_tokens(tokens[:, None]), positions[:, None], bias,
                               self.length, 1)
        self.length += 1
        return self._logits(hidden[:, -1])

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (finished sequences stop costing decode work)."""
        assert self.cache is not None and self.pad_bias is not None
        self.cache = self.cache.index_select(2, rows)
        self.pad_bias = self.pad_bias.index_select(0, rows)

    def release(self) -> None:
        self.cache = self.pad_bias = None
        self.length = 0

    # --------------------------------------------------------------- the forward
    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.model.lm_head
        return linear(self.model.model.norm(hidden), head.weight, head.bias).float()

    def _forward(self, hidden: torch.Tensor, positions: torch.Tensor, bias: torch.Tensor, start: int,
                 repeat: int) -> torch.Tensor:
        """``hidden`` [batch, seq, dim] for cache columns start..start+seq; ``bias`` [batch, seq, keys]."""
        cos, sin = self.model.model.rotary_emb(hidden, positions)  # [batch, seq, head_dim]
        cos, sin = cos[:, :, None], sin[:, :, None]
        size = (hidden.shape[-1],)
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(hidden, size, layer.input_layernorm.weight, self.eps)
            hidden = hidden + self._attention(i, layer.self_attn, h, cos, sin, bias, start, repeat)
            h = F.rms_norm(hidden, size, layer.post_attention_layernorm.weight, self.eps)
            mlp = layer.mlp
            if self.gate_up is None:
                gate, up = _apply(mlp.gate_proj, h), _apply(mlp.up_proj, h)
            else:
                gate, up = linear(h, *self.gate_up[i]).chunk(2, dim=-1)
            hidden = hidden + _apply(mlp.down_proj, F.silu(gate) * up)
        return hidden

    def _attention(self, i: int, attn: Any, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   bias: torch.Tensor, start: int, repeat: int) -> torch.Tensor:
        batch, seq, _ = h.shape
        if self.qkv is None:
            q = _rope(_apply(attn.q_proj, h).view(batch, seq, self.heads, self.head_dim), cos, sin)
            k = _rope(_apply(attn.k_proj, h).view(batch, seq, self.kv_heads, self.head_dim), cos, sin)
            v = _apply(attn.v_proj, h).view(batch, seq, self.kv_heads, self.head_dim)
        else:
            qkv = linear(h, *self.qkv[i]).view(batch, seq, self.heads + 2 * self.kv_heads, self.head_dim)
            qk = _rope(qkv[:, :, : self.heads + self.kv_heads], cos, sin)  # one rotation for both
            q, k, v = qk[:, :, : self.heads], qk[:, :, self.heads:], qkv[:, :, self.heads + self.kv_heads:]
        assert self.cache is not None
        end = start + seq
        if repeat == 1:
            self.cache[i, 0, :, :, start:end] = k.transpose(1, 2)
            self.cache[i, 1, :, :, start:end] = v.transpose(1, 2)
            keys, values = self.cache[i, 0, :, :, :end], self.cache[i, 1, :, :, :end]
        else:  # prefill shared by the n samples: attend on the unrepeated keys, store repeated
            keys, values = k.transpose(1, 2), v.transpose(1, 2)
            self.cache[i, 0, :, :, start:end] = keys.repeat_interleave(repeat, 0)
            self.cache[i, 1, :, :, start:end] = values.repeat_interleave(repeat, 0)
        group = self.heads // self.kv_heads
        # Queries grouped per KV head: [batch, kv_heads, group * seq, head_dim] meets the keys
        # [batch, kv_heads, keys, head_dim] as they are, with no per-head copy of the cache.
        q = q.view(batch, seq, self.kv_heads, group, self.head_dim).permute(0, 2, 3, 1, 4)
        q = q.reshape(batch, self.kv_heads, group * seq, self.head_dim)
        scores = torch.matmul(q, keys.transpose(-1, -2)).mul_(self.scale)
        scores = scores.view(batch, self.kv_heads, group, seq, -1).add_(bias[:, None, None])
        probs = torch.softmax(scores.float(), dim=-1).to(values.dtype)
        out = torch.matmul(probs.view(batch, self.kv_heads, group * seq, -1), values)
        out = out.view(batch, self.kv_heads, group, seq, self.head_dim).permute(0, 3, 1, 2, 4)
        return _apply(attn.o_proj, out.reshape(batch, seq, self.heads * self.head_dim))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, computed as ``weight @ x.T`` (then viewed transposed) where
    CPU GEMM kernels run that product faster, and in row blocks for a large vocabulary head.

    Measured on a 2-core AVX2 CPU, fp32, SmolLM2-135M shapes: at 16-480 rows ``weight @ x.T``
    ran 1.1-2.4x faster than ``F.linear`` (gate/up at 32 rows: 99 vs 38 GFLOP/s), at 8 rows
    slower except for the lm_head; the 49k-row lm_head at 64 rows ran at 48 GFLOP/s as one
    ``F.linear``, 55 as one ``weight @ x.T`` and 91 in blocks of 1024 weight rows (the block's
    weights stay in cache while all rows use them). Below the head size the result is a
    transposed view: the ops that follow accept any strides.
    """
    rows, features = x.numel() // x.shape[-1], weight.shape[0]
    if x.device.type != "cpu" or rows > 1024 or (rows < 16 and features < HEAD_BLOCK_MIN):
        return F.linear(x, weight, bias)
    flat_t = x.reshape(rows, x.shape[-1]).t()
    if features < HEAD_BLOCK_MIN:
        out = torch.mm(weight, flat_t).t()
    else:  # row-major output: the sampler's per-row passes over the vocabulary read it in order
        out = x.new_empty((rows, features))
        block = x.new_empty((HEAD_BLOCK, rows))
        for start in range(0, features, HEAD_BLOCK):
            size = min(HEAD_BLOCK, features - start)
            torch.mm(weight[start:start + size], flat_t, out=block[:size])
            out[:, start:start + size].copy_(block[:size].t())
    if bias is not None:
        out = out + bias
    return out.view(*x.shape[:-1], features)


def _apply(module: Any, x: torch.Tensor) -> torch.Tensor:
    """A model's ``nn.Linear`` through ``linear`` (any other module as it is)."""
    if isinstance(module, torch.nn.Linear):
        return linear(x, module.weight, module.bias)
    return module(x)


def _fuse(*linears: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight = torch.cat([m.weight for m in linears])
    if all(m.bias is None for m in linears):
        return weight, None
    return weight, torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.weight.shape[0])
                              for m in linears])


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
