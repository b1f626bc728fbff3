"""The hand-written CPU kernels (genius.engines.cpu_kernels): decode attention against the same
math written out in torch, the lean decoder with and without the kernel, and the build: cached
once, and a missing compiler falls back to torch with one line on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from genius.engines import cpu_kernels

pytestmark = pytest.mark.skipif(not cpu_kernels.available(), reason="no C compiler with OpenMP on this machine")


def reference_attention(q, prefix_k, prefix_v, prefix_bias, cache_k, cache_v, length, row_prompt, scale):
    """Row r, KV head h, query head g: softmax over [its prompt's keys (+ bias), its own first
    ``length`` keys] of scale * q.k, times the values."""
    rows, kv, group, dim = q.shape
    out = torch.empty(rows, kv, group, dim, dtype=torch.float64)
    for r in range(rows):
        p = int(row_prompt[r])
        for h in range(kv):
            keys = torch.cat((prefix_k[p, h], cache_k[r, h, :length])).double()
            values = torch.cat((prefix_v[p, h], cache_v[r, h, :length])).double()
            bias = torch.cat((prefix_bias[p].double(), torch.zeros(length, dtype=torch.float64)))
            scores = q[r, h].double() @ keys.T * scale + bias
            out[r, h] = torch.softmax(scores, -1) @ values
    return out.reshape(rows, -1).float()


@pytest.mark.parametrize("dim", [16, 64, 128, 40])
def test_decode_attention_equals_the_written_out_softmax(dim: int) -> None:
    """3 prompts (one with 3 padded keys), rows mapped to prompts unevenly (as after rows were
    dropped), GQA groups of 3; head sizes on both specialised paths (64, 128) and the generic one."""
    gen = torch.Generator().manual_seed(dim)
    prompts, kv, group, width, cap, length = 3, 2, 3, 7, 12, 5
    row_prompt = torch.tensor([0, 0, 1, 2, 2, 2], dtype=torch.int64)
    rows = len(row_prompt)
    prefix_k, prefix_v = (torch.randn(prompts, kv, width, dim, generator=gen) for _ in range(2))
    cache_k, cache_v = (torch.randn(rows, kv, cap, dim, generator=gen) for _ in range(2))
    bias = torch.zeros(prompts, width)
    bias[1, :3] = float("-inf")
    # Heads of a row contiguous, rows at a larger stride (the decoder passes a slice of q/k).
    q = torch.randn(rows, kv * group + 2, dim, generator=gen)[:, : kv * group].view(rows, kv, group, dim)
    scale = dim ** -0.5
    got = cpu_kernels.decode_attention(q, prefix_k, prefix_v, bias, cache_k, cache_v, length, row_prompt, scale)
    want = reference_attention(q, prefix_k, prefix_v, bias, cache_k, cache_v, length, row_prompt, scale)
    torch.testing.assert_close(got, want, atol=2e-6, rtol=1e-5)
    # A padded key is invisible: changing it changes nothing.
    prefix_k[1, :, :3] = 100.0
    again = cpu_kernels.decode_attention(q, prefix_k, prefix_v, bias, cache_k, cache_v, length, row_prompt, scale)
    torch.testing.assert_close(again, got, atol=0, rtol=0)


def test_decode_attention_rejects_what_it_cannot_read() -> None:
    q = torch.zeros(2, 1, 1, 12)
    k = torch.zeros(1, 1, 3, 12)
    with pytest.raises(ValueError, match="head_dim"):
        cpu_kernels.decode_attention(q, k, k, torch.zeros(1, 3), torch.zeros(2, 1, 4, 12), torch.zeros(2, 1, 4, 12),
                                     1, torch.zeros(2, dtype=torch.int64), 1.0)
    k16 = torch.zeros(1, 1, 3, 16)
    cache = torch.zeros(2, 1, 4, 16)
    rows = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ValueError, match="contiguous"):
        cpu_kernels.decode_attention(torch.zeros(2, 1, 1, 16), k16, k16, torch.zeros(1, 3),
                                     cache.transpose(2, 3).contiguous().transpose(2, 3), cache, 1, rows, 1.0)
    for length in (0, 5):  # no own key yet; more keys than the cache holds
        with pytest.raises(ValueError, match="do not fit"):
            cpu_kernels.decode_attention(torch.zeros(2, 1, 1, 16), k16, k16, torch.zeros(1, 3), cache, cache, length,
                                         rows, 1.0)
    with pytest.raises(ValueError, match="fp32 CPU"):
        cpu_kernels.decode_attention(torch.zeros(2, 1, 1, 16), k16.double(), k16, torch.zeros(1, 3), cache, cache, 1,
                                     rows, 1.0)


@pytest.mark.parametrize("rows", [5, 16, 21])  # 16 and 21: transposed input read 8 rows at a time, 21 with a rest
@pytest.mark.parametrize("transposed", [False, True])
def test_glue_kernels_equal_their_torch_formulas(rows: int, transposed: bool) -> None:
    """rope_qk, add_rms_norm and silu_mul on row-major and transposed inputs (what lean.linear
    returns at >= 16 rows) against the formulas of the Llama forward."""
    from genius.engines.lean import _rope

    gen = torch.Generator().manual_seed(rows)
    heads, kv, dim, cap, pos, hidden_size, inter = 4, 2, 16, 6, 3, 40, 24

    def matrix(r: int, c: int) -> torch.Tensor:
        return torch.randn(c, r, generator=gen).t() if transposed else torch.randn(r, c, generator=gen)

    qkv = matrix(rows, (heads + 2 * kv) * dim)
    cos, sin = torch.randn(rows, dim, generator=gen), torch.randn(rows, dim, generator=gen)
    signed_sin = torch.cat((-sin[:, : dim // 2], sin[:, dim // 2:]), -1)
    ck, cv = torch.zeros(rows, kv, cap, dim), torch.zeros(rows, kv, cap, dim)
    q = cpu_kernels.rope_qk(qkv, cos, signed_sin, heads, kv, ck, cv, pos)
    x = qkv.reshape(rows, heads + 2 * kv, dim)
    rotated = _rope(x[:, : heads + kv], cos[:, None], signed_sin[:, None])
    torch.testing.assert_close(q, rotated[:, :heads])
    torch.testing.assert_close(ck[:, :, pos], rotated[:, heads:])
    torch.testing.assert_close(cv[:, :, pos], x[:, heads + kv:])
    assert ck[:, :, :pos].abs().sum() == 0 and cv[:, :, pos + 1:].abs().sum() == 0  # only position pos written

    hidden, delta, weight = torch.randn(rows, hidden_size, generator=gen), matrix(rows, hidden_size), torch.randn(hidden_size, generator=gen)
    want_hidden = hidden + delta
    want = torch.nn.functional.rms_norm(want_hidden, (hidden_size,), weight, 1e-5)
    got = cpu_kernels.add_rms_norm(hidden, delta, weight, 1e-5)
    torch.testing.assert_close(hidden, want_hidden)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(cpu_kernels.add_rms_norm(hidden, None, weight, 1e-5), want)

    gate_up = matrix(rows, 2 * inter) * 4
    act = cpu_kernels.silu_mul(gate_up)
    torch.testing.assert_close(act, torch.nn.functional.silu(gate_up[:, :inter]) * gate_up[:, inter:])
    assert (act.stride(0) == 1) == (transposed and rows > 1)


@pytest.mark.parametrize("hidden,heads,kv_heads", [(64, 4, 2), (192, 3, 1)])  # head_dim 16; 64 with group 3
def test_lean_decoder_with_and_without_kernel(hidden: int, heads: int, kv_heads: int) -> None:
    """24 rows (3 prompts x n = 8: enough rows for the transposed matmul layout), then rows
    dropped: logits with the kernel equal those of the torch attention."""
    from genius.engines.lean import LeanDecoder
    from genius.tiny import tiny_llama

    model = tiny_llama(hidden=hidden, heads=heads, kv_heads=kv_heads, seed=1)
    ids = torch.tensor([[0, 0, 72, 101, 108], [87, 104, 97, 116, 32], [0, 0, 0, 65, 66]])
    attn = (torch.arange(5) >= torch.tensor([[2], [0], [3]])).long()
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    n = 8
    with torch.inference_mode():
        fast, slow = LeanDecoder(model, kernel=True), LeanDecoder(model, kernel=False)
        torch.testing.assert_close(fast.prefill(ids, attn, pos, repeat=n, total_length=12),
                                   slow.prefill(ids, attn, pos, repeat=n, total_length=12))
        nxt = pos[:, -1].repeat_interleave(n) + 1
        tokens = torch.arange(3 * n) + 40
        for keep in (None, torch.tensor([0, 3, 5, 8, 9, 17, 20, 23]), torch.tensor([0, 1, 2, 6, 7])):
            if keep is not None:
                fast.select(keep)
                slow.select(keep)
                tokens, nxt = tokens[keep], nxt[keep]
            for _ in range(2):
                torch.testing.assert_close(fast.step(tokens, nxt), slow.step(tokens, nxt), atol=1e-5, rtol=1e-5)
                nxt = nxt + 1
        assert not fast.dense and fast.prefix is not None and fast.prefix.shape[2] == 2


def test_build_is_cached_and_a_missing_compiler_falls_back(tmp_path) -> None:
    first = cpu_kernels._build()
    stamp = first.stat().st_mtime_ns
    assert cpu_kernels._build() == first and first.stat().st_mtime_ns == stamp
    code = ("from genius.engines import cpu_kernels, hf; import torch; "
            "print(cpu_kernels.available()); "
            "print(hf._sample(torch.tensor([[0.0, 5.0]]), 1.0, 1.0, torch.tensor([0.5], dtype=torch.float64))[0].item())")
    env = {**os.environ, "CC": str(tmp_path / "no-such-cc"), "GENIUS_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "1"]
    assert "CPU kernels unavailable" in done.stderr and "no C compiler" in done.stderr
    assert not (tmp_path / "cache" / "kernels").exists() or not any((tmp_path / "cache" / "kernels").iterdir())
    off = subprocess.run([sys.executable, "-c", code], env={**os.environ, "GENIUS_CPU_KERNEL": "0"},
                         capture_output=True, text=True, timeout=300)
    assert off.stdout.split() == ["False", "1"] and off.stderr == ""
