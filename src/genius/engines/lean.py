"""A lean decode path for Llama-family models over the HF model's own weights.

Why: per generated token, ``model.forward`` of transformers rebuilds a 4-D attention mask,
grows every layer's KV cache with ``torch.cat`` (a copy of the whole cache per step) and, with
grouped-query attention, copies keys and values once more to repeat them per query head. At
sampling batch sizes those copies cost more than the matmuls (see benchmarks/bench_engine.py).
Here the KV caches are allocated once at their final length and written in place; queries are
grouped per KV head so keys and values are read where they lie; the n samples of a prompt
read its keys once per step instead of n times (``LeanDecoder``). What is left is matmuls, so
q/k/v and gate/up are each fused into one matmul when the copy is small (``FUSE_MAX_BYTES``)
and every projection goes through ``linear``, which picks the faster CPU GEMM form. On CPU with
fp32 weights a decode step runs everything between its matmuls (rotary embedding, attention,
residual adds, RMSNorms, SiLU gate) in ``cpu_kernels`` (C, built on first use; the torch code
here is the fallback and the reference the tests compare it with).

Only the architectures whose forward is exactly this one are accepted (``supports``); the
engine falls back to ``model.forward`` with a ``DynamicCache`` for everything else.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

from genius.engines import cpu_kernels

_SUPPORTED_TYPES = ("llama", "mistral", "qwen2")
HEAD_BLOCK, HEAD_BLOCK_MIN = 1024, 16384
"""``linear`` multiplies weights of at least HEAD_BLOCK_MIN rows (a vocabulary head) in blocks
of HEAD_BLOCK rows on CPU."""
FUSE_MAX_BYTES = 2 << 30
"""Fuse q/k/v and gate/up weights when the fused copies take at most this much memory. The
copies are made once per model and kept beside it (``_fused``), remade when a weight changes."""
_FUSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""model -> (weight signature, fused q/k/v, fused gate/up): every ``generate`` call makes a
decoder, and re-concatenating the weights each time would copy ~280 MB per call on SmolLM2-135M."""


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
    """Prefill + one-token decode steps over two preallocated KV caches.

    The prompts' keys/values (``prefix``) are kept once per prompt, however many samples share
    it; the generated tokens' keys/values (``cache``) once per sample. A decode step reads each
    prompt's keys once for all its samples: on a CPU the KV reads are memory traffic on the
    order of the weights' (at 64 rows and ~180 cached tokens both are ~0.5 GB per step on
    SmolLM2-135M), so n samples of one prompt read its prefix 1/n as often.

    Rows are addressed by slot (prompt * n + sample); finished rows are dropped from the batch
    (``select``), and a prompt whose samples all finished is dropped from ``prefix``. Prompts are
    left-padded: ``prefix_bias`` masks each prompt's padding; the rotary position of each row is
    its own count of real tokens so far.
    """

    def __init__(self, model: Any, fuse: bool | None = None, kernel: bool | None = None):
        """``fuse``: fused q/k/v and gate/up weights (default: when the copies are small enough);
        ``kernel``: a decode step's attention and glue through ``cpu_kernels`` (default: where they
        run: fp32 on CPU, head_dim a multiple of 8 up to 256, the kernels built)."""
        config = model.config
        self.model = model
        self.layers = list(model.model.layers[: config.num_hidden_layers])
        self.eps = config.rms_norm_eps
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.group = self.heads // self.kv_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.scale = self.head_dim ** -0.5
        self.prefix: torch.Tensor | None = None  # [layers, 2, prompts, kv_heads, width, head_dim]
        self.prefix_bias: torch.Tensor | None = None  # [prompts, width]: 0 or -inf (padding)
        self.row_bias: torch.Tensor | None = None  # [rows, width]: prefix_bias of each row's prompt
        self.cache: torch.Tensor | None = None  # [layers, 2, rows, kv_heads, new tokens, head_dim]
        self.length = 0  # filled columns of ``cache``
        self.n = 1  # samples per prompt
        self.slots: torch.Tensor | None = None  # [rows]: prompt * n + sample of every batch row
        self.row_prompt: torch.Tensor | None = None  # [rows]: each row's prompt in ``prefix``
        self.dense = True  # slots == arange(prompts * n): no gather/scatter needed
        weights = [(layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                    layer.mlp.gate_proj, layer.mlp.up_proj) for layer in self.layers]
        if fuse is None:
            fuse = sum(m.weight.numel() * m.weight.element_size() for w in weights for m in w) <= FUSE_MAX_BYTES
        # (weight, bias) of the fused projections per layer; None: use the model's own modules.
        self.qkv: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None
        self.gate_up: list[tuple[torch.Tensor, torch.Tensor | None]] | None = None
        if fuse:
            self.qkv, self.gate_up = _fused(model, weights)
        weight = model.lm_head.weight
        self.kernel = cpu_kernels.supports(self.head_dim, weight.dtype, weight.device) if kernel is None else kernel

    # --------------------------------------------------------------- public steps
    def prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor,
                repeat: int, total_length: int,
                past: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Run the left-padded prompts and keep their keys/values once each; make room for
        ``total_length`` minus the prompt width generated tokens of ``repeat`` samples per prompt;
        return the last position's logits, one row per prompt (not repeated).

        ``past``: keys/values the prompts continue from, [layers, 2, prompts, kv_heads, past width,
        head_dim], left-padded, and their mask [prompts, past width] (``positions`` then count on
        from each prompt's past length). The prompt width is the past width plus the new one."""
        prompts, width = input_ids.shape
        dtype, device = self.model.lm_head.weight.dtype, input_ids.device
        past_width = 0 if past is None else past[0].shape[4]
        full = past_width + width
        self.prefix = torch.empty((len(self.layers), 2, prompts, self.kv_heads, full, self.head_dim),
                                  dtype=dtype, device=device)
        valid = attention_mask.bool()
        if past is not None:
            self.prefix[:, :, :, :, :past_width] = past[0]
            valid = torch.cat((past[1].bool(), valid), dim=1)
        self.cache = torch.empty((len(self.layers), 2, prompts * repeat, self.kv_heads, max(total_length - full, 1),
                                  self.head_dim), dtype=dtype, device=device)
        self.n, self.length, self.dense = repeat, 0, True
        self.slots = torch.arange(prompts * repeat, device=device)
        self.row_prompt = self.slots // repeat
        # New token q sees the past and the new tokens up to itself: columns <= past_width + q.
        causal = torch.ones(width, full, dtype=torch.bool, device=device).tril(past_width)
        allowed = causal[None] & valid[:, None, :]
        # Padding queries would see no key at all (NaN softmax); let them see themselves.
        allowed[:, :, past_width:] |= torch.eye(width, dtype=torch.bool, device=device)[None]
        bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
        self.prefix_bias = torch.zeros((prompts, full), dtype=dtype, device=device).masked_fill_(~valid, float("-inf"))
        self.row_bias = self.prefix_bias.repeat_interleave(repeat, 0)
        hidden = self._forward(self.model.model.embed_tokens(input_ids), positions, bias)
        return self._logits(hidden[:, -1])

    def step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (``positions``: each row's rotary position); return logits."""
        assert self.cache is not None
        if self.length >= self.cache.shape[4]:
            raise RuntimeError("KV cache full: total_length was too small")
        if self.kernel and self.qkv is not None and self.gate_up is not None:
            logits = self._kernel_step(tokens, positions)
        else:
            logits = self._logits(self._forward(self.model.model.embed_tokens(tokens[:, None]), positions[:, None],
                                                None)[:, -1])
        self.length += 1
        return logits

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (finished sequences stop costing decode work), and only the
        prompts that still have a row."""
        assert self.cache is not None and self.prefix is not None and self.slots is not None
        assert self.prefix_bias is not None
        self.cache = self.cache.index_select(2, rows)
        slots = self.slots.index_select(0, rows)
        prompts = torch.unique(slots // self.n)  # sorted
        if len(prompts) < self.prefix.shape[2]:
            self.prefix = self.prefix.index_select(2, prompts)
            self.prefix_bias = self.prefix_bias.index_select(0, prompts)
            slots = torch.searchsorted(prompts, slots // self.n) * self.n + slots % self.n
        self.slots = slots
        self.dense = len(slots) == self.prefix.shape[2] * self.n
        self.row_prompt = slots // self.n
        self.row_bias = self.prefix_bias.index_select(0, self.row_prompt)

    def prompt_kv(self, prompt: int, count: int) -> torch.Tensor:
        """A copy of the keys/values of prompt ``prompt``'s last ``count`` tokens, [layers, 2,
        kv_heads, count, head_dim] (before any ``select``)."""
        assert self.prefix is not None
        return self.prefix[:, :, prompt, :, self.prefix.shape[4] - count:].clone()

    def row_kv(self, row: int, count: int) -> torch.Tensor:
        """A copy of the keys/values of batch row ``row``'s first ``count`` generated tokens."""
        assert self.cache is not None
        return self.cache[:, :, row, :, :count].clone()

    def release(self) -> None:
        self.cache = self.prefix = self.prefix_bias = self.row_bias = self.slots = self.row_prompt = None
        self.length = 0

    # --------------------------------------------------------------- the forward
    def _kernel_step(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``step``'s forward with everything between the matmuls in ``cpu_kernels``: the same
        math as ``_forward`` (rotary, attention, residual adds, RMSNorms, SiLU gate) in 5 calls
        per layer instead of ~25 torch ops."""
        assert self.cache is not None and self.qkv is not None and self.gate_up is not None
        hidden = self.model.model.embed_tokens(tokens)  # [rows, hidden], the residual stream
        cos, sin = self.model.model.rotary_emb(hidden, positions[:, None])
        cos, signed_sin = cos[:, 0].contiguous(), _signed(sin[:, 0])
        h = cpu_kernels.add_rms_norm(hidden, None, self.layers[0].input_layernorm.weight, self.eps)
        for i, layer in enumerate(self.layers):
            qkv = linear(h, *self.qkv[i])
            q = cpu_kernels.rope_qk(qkv, cos, signed_sin, self.heads, self.kv_heads, self.cache[i, 0],
                                    self.cache[i, 1], self.length)
            h = cpu_kernels.add_rms_norm(hidden, _apply(layer.self_attn.o_proj, self._kernel_attention(i, q)),
                                         layer.post_attention_layernorm.weight, self.eps)
            act = cpu_kernels.silu_mul(linear(h, *self.gate_up[i]))
            after = self.layers[i + 1].input_layernorm if i + 1 < len(self.layers) else self.model.model.norm
            h = cpu_kernels.add_rms_norm(hidden, _apply(layer.mlp.down_proj, act), after.weight, self.eps)
        head = self.model.lm_head
        return linear(h, head.weight, head.bias).float()

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        head = self.model.lm_head
        return linear(self.model.model.norm(hidden), head.weight, head.bias).float()

    def _forward(self, hidden: torch.Tensor, positions: torch.Tensor, prefill_bias: torch.Tensor | None) -> torch.Tensor:
        """``hidden`` [batch, seq, dim]: the prompts (``prefill_bias`` [prompts, seq, seq]) or one
        new token per row (``prefill_bias`` None)."""
        cos, sin = self.model.model.rotary_emb(hidden, positions)  # [batch, seq, head_dim]
        cos, sin = cos[:, :, None], _signed(sin)[:, :, None]
        size = (hidden.shape[-1],)
        for i, layer in enumerate(self.layers):
            h = F.rms_norm(hidden, size, layer.input_layernorm.weight, self.eps)
            q, k, v = self._qkv(i, layer.self_attn, h, cos, sin)
            if prefill_bias is None:
                out = self._decode_attention(i, q, k, v)
            else:
                out = self._prefill_attention(i, q, k, v, prefill_bias)
            hidden = hidden + _apply(layer.self_attn.o_proj, out)
            h = F.rms_norm(hidden, size, layer.post_attention_layernorm.weight, self.eps)
            mlp = layer.mlp
            if self.gate_up is None:
                gate, up = _apply(mlp.gate_proj, h), _apply(mlp.up_proj, h)
            else:
                gate, up = linear(h, *self.gate_up[i]).chunk(2, dim=-1)
            hidden = hidden + _apply(mlp.down_proj, F.silu(gate) * up)
        return hidden

    def _qkv(self, i: int, attn: Any, h: torch.Tensor, cos: torch.Tensor,
             sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q [batch, seq, heads, head_dim], k and v [batch, seq, kv_heads, head_dim], rotated
        (``sin`` signed as ``_rope`` takes it)."""
        batch, seq, _ = h.shape
        if self.qkv is None:
            q = _rope(_apply(attn.q_proj, h).view(batch, seq, self.heads, self.head_dim), cos, sin)
            k = _rope(_apply(attn.k_proj, h).view(batch, seq, self.kv_heads, self.head_dim), cos, sin)
            return q, k, _apply(attn.v_proj, h).view(batch, seq, self.kv_heads, self.head_dim)
        qkv = linear(h, *self.qkv[i]).view(batch, seq, self.heads + 2 * self.kv_heads, self.head_dim)
        qk = _rope(qkv[:, :, : self.heads + self.kv_heads], cos, sin)  # one rotation for both
        return qk[:, :, : self.heads], qk[:, :, self.heads:], qkv[:, :, self.heads + self.kv_heads:]

    def _prefill_attention(self, i: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           bias: torch.Tensor) -> torch.Tensor:
        assert self.prefix is not None
        batch, seq = q.shape[:2]
        full = self.prefix.shape[4]
        self.prefix[i, 0, :, :, full - seq:] = k.transpose(1, 2)  # [prompts, kv_heads, seq, head_dim]
        self.prefix[i, 1, :, :, full - seq:] = v.transpose(1, 2)
        keys, values = self.prefix[i, 0], self.prefix[i, 1]  # the past (if any) and the new tokens
        # Queries grouped per KV head: [batch, kv_heads, group * seq, head_dim] meets the keys
        # as they are, with no per-head copy of them.
        q = q.view(batch, seq, self.kv_heads, self.group, self.head_dim).permute(0, 2, 3, 1, 4)
        q = q.reshape(batch, self.kv_heads, self.group * seq, self.head_dim)
        scores = torch.matmul(q, keys.transpose(-1, -2)).mul_(self.scale)
        scores = scores.view(batch, self.kv_heads, self.group, seq, full).add_(bias[:, None, None])
        probs = torch.softmax(scores.float(), dim=-1).to(values.dtype)
        out = torch.matmul(probs.view(batch, self.kv_heads, self.group * seq, full), values)
        out = out.view(batch, self.kv_heads, self.group, seq, self.head_dim).permute(0, 3, 1, 2, 4)
        return out.reshape(batch, seq, self.heads * self.head_dim)

    def _decode_attention(self, i: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One new token per row: softmax over [its prompt's keys, its own generated keys]."""
        assert self.cache is not None and self.prefix is not None and self.row_bias is not None
        rows, n, kv, group, dim = q.shape[0], self.n, self.kv_heads, self.group, self.head_dim
        prompts, width = self.prefix.shape[2], self.prefix.shape[4]
        self.cache[i, 0, :, :, self.length] = k[:, 0]
        self.cache[i, 1, :, :, self.length] = v[:, 0]
        if self.kernel:
            return self._kernel_attention(i, q).view(rows, 1, self.heads * dim)
        q = q.reshape(rows, kv, group, dim) * self.scale  # query heads of KV head j: j * group ...
        own = torch.matmul(q, self.cache[i, 0, :, :, : self.length + 1].transpose(-1, -2))  # [rows, kv, group, new]
        # Prompt keys: each prompt's rows meet its keys in one batched product.
        shared = self._per_prompt(q).reshape(prompts, n, kv, group, dim).transpose(1, 2)
        shared = torch.matmul(shared.reshape(prompts, kv, n * group, dim), self.prefix[i, 0].transpose(-1, -2))
        shared = self._per_row(shared.view(prompts, kv, n, group, width).transpose(1, 2))  # [rows, kv, group, width]
        scores = torch.cat((shared + self.row_bias[:, None, None], own), dim=-1)
        probs = torch.softmax(scores.float(), dim=-1).to(q.dtype)
        out = torch.matmul(probs[..., width:], self.cache[i, 1, :, :, : self.length + 1])  # [rows, kv, group, dim]
        p_shared = self._per_prompt(probs[..., :width]).reshape(prompts, n, kv, group, width).transpose(1, 2)
        p_shared = torch.matmul(p_shared.reshape(prompts, kv, n * group, width), self.prefix[i, 1])
        out += self._per_row(p_shared.view(prompts, kv, n, group, dim).transpose(1, 2))
        return out.reshape(rows, 1, self.heads * dim)

    def _kernel_attention(self, i: int, q: torch.Tensor) -> torch.Tensor:
        """``_decode_attention`` in ``cpu_kernels`` (the new keys/values already in the cache):
        q [rows, ..., heads, head_dim] -> [rows, heads * head_dim]."""
        assert self.cache is not None and self.prefix is not None and self.row_prompt is not None
        return cpu_kernels.decode_attention(q.view(len(q), self.kv_heads, self.group, self.head_dim),
                                            self.prefix[i, 0], self.prefix[i, 1], self.prefix_bias, self.cache[i, 0],
                                            self.cache[i, 1], self.length + 1, self.row_prompt, self.scale)

    def _per_prompt(self, x: torch.Tensor) -> torch.Tensor:
        """Rows -> all prompts * n slots (finished slots zero): [prompts * n, ...]."""
        assert self.slots is not None and self.prefix is not None
        if self.dense:
            return x
        full = x.new_zeros((self.prefix.shape[2] * self.n, *x.shape[1:]))
        return full.index_copy_(0, self.slots, x)

    def _per_row(self, x: torch.Tensor) -> torch.Tensor:
        """[prompts, n, ...] slots -> the batch rows: [rows, ...]."""
        assert self.slots is not None
        flat = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
        return flat if self.dense else flat.index_select(0, self.slots)


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


def _fused(model: Any, weights: list[tuple[Any, ...]]) -> tuple[list, list]:
    """Fused (q, k, v) and (gate, up) per layer of ``model``, made once and reused while no
    weight changed (new storage or an in-place update changes the signature)."""
    signature = weights_signature(p for layer in weights for m in layer for p in (m.weight, m.bias)
                                  if p is not None)
    cached = _FUSED.get(model)
    if cached is None or cached[0] != signature:
        cached = (signature, [_fuse(q, k, v) for q, k, v, _, _ in weights],
                  [_fuse(g, u) for _, _, _, g, u in weights])
        _FUSED[model] = cached
    return cached[1], cached[2]


def weights_signature(params: Iterable[torch.Tensor]) -> tuple:
    """Changes whenever a weight gets new storage or is updated in place: what was computed
    from the weights (fused copies, stored keys/values) is stale when it changes."""
    return tuple((p.data_ptr(), p._version) for p in params)


def _fuse(*linears: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight = torch.cat([m.weight for m in linears])
    if all(m.bias is None for m in linears):
        return weight, None
    return weight, torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.weight.shape[0])
                              for m in linears])


def _signed(sin: torch.Tensor) -> torch.Tensor:
    """(-sin1, sin2) over the two halves of the last dimension: what ``_rope`` and
    ``cpu_kernels.rope_qk`` take."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, ``x * cos + rotate_half(x) * sin`` with ``rotate_half(x) = (-x2, x1)``;
    ``signed_sin`` is (-sin1, sin2), so each half is one fused multiply-add. The result is
    row-major whatever the layout of ``x`` (a transposed view out of ``linear``): the attention
    that follows reads each row's heads in one piece."""
    half = x.shape[-1] // 2
    out = torch.mul(x, cos, out=torch.empty(x.shape, dtype=x.dtype, device=x.device))
    out[..., :half].addcmul_(x[..., half:], signed_sin[..., :half])
    out[..., half:].addcmul_(x[..., :half], signed_sin[..., half:])
    return out
