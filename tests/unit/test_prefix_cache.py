"""The prefix store (which stored prefix a prompt reuses, the keys/values it gets back, eviction)
and the engine with it: a prompt extending an earlier call's output gives what a fresh prefill
gives, while only its new tokens run."""

from __future__ import annotations

import copy

import pytest
import torch

from genius.engines.base import SamplingParams
from genius.engines.hf import HFEngine
from genius.engines.prefix_cache import BLOCK, PrefixStore

LAYERS, KV_HEADS, DIM = 2, 1, 3


def kv_for(positions: range, tag: float) -> torch.Tensor:
    """[layers, 2, kv_heads, len, dim] whose entries say which position (and segment) they hold."""
    col = torch.tensor([p + tag for p in positions], dtype=torch.float32)
    return col[None, None, None, :, None].expand(LAYERS, 2, KV_HEADS, len(col), DIM).clone()


def gathered(store: PrefixStore, seg, length: int) -> list[float]:
    out = torch.full((LAYERS, 2, KV_HEADS, length, DIM), -1.0)
    store.gather(seg, length, out)
    assert (out == out[:1, :1, :1, :, :1]).all()  # every layer/head/dim holds the same column
    return out[0, 0, 0, :, 0].tolist()


def test_match_prefers_stored_ends_then_block_boundaries() -> None:
    store = PrefixStore(max_bytes=1 << 20)
    seq = list(range(100, 140))  # 40 tokens
    root = store.add(seq, None, 0, kv_for(range(40), 0.0))
    # A prompt extending the stored sequence reuses all of it.
    assert store.match(seq + [7, 8]) == (root, 40)
    # The stored sequence plus one token (a sample's last token never ran): all 40 again.
    assert store.match(seq + [7])[1] == 40
    # The same sequence: all but its last token, which must run to give the next logits.
    assert store.match(seq)[1] == 39
    # Diverging at token 35: the last block boundary before it (32).
    assert store.match(seq[:35] + [1, 2, 3])[1] == 2 * BLOCK
    # Diverging inside the first block: nothing.
    assert store.match(seq[:10] + [1] * 30) == (None, 0)
    assert store.match([1, 2, 3]) == (None, 0)


def test_gather_walks_the_tree_of_segments() -> None:
    store = PrefixStore(max_bytes=1 << 20)
    prompt = list(range(20))
    root = store.add(prompt, None, 0, kv_for(range(20), 0.0))
    sample = prompt + [50 + i for i in range(10)]  # positions 20..29
    child = store.add(sample, root, 20, kv_for(range(20, 30), 0.5))
    # A rollout that extends the first 25 tokens of the sample's sequence: positions 25..31.
    branch = sample[:25] + [90 + i for i in range(7)]
    grand = store.add(branch, child, 25, kv_for(range(25, 32), 0.25))
    assert gathered(store, grand, 32) == [*range(20), *(p + 0.5 for p in range(20, 25)),
                                          *(p + 0.25 for p in range(25, 32))]
    seg, length = store.match(branch + [1])
    assert (seg, length) == (grand, 32)
    seg, length = store.match(sample + [1])
    assert (seg, length) == (child, 30)
    assert gathered(store, seg, 30) == [*range(20), *(p + 0.5 for p in range(20, 30))]
    # Diverging inside the sample (no key there): the longest stored end before it, the prompt.
    assert store.match(sample[:23] + [4, 4]) == (root, 20)
    # A one-token segment (a prompt's last token) asked for again: its last token must run, so
    # the reused prefix ends in its parent.
    last = store.add(prompt + [77], root, 20, kv_for(range(20, 21), 0.5))
    assert last is not None and store.match(prompt + [77]) == (root, 20)


def test_same_sequence_is_stored_once() -> None:
    store = PrefixStore(max_bytes=1 << 20)
    seq = list(range(30))
    first = store.add(seq, None, 0, kv_for(range(30), 0.0))
    used = store.bytes
    assert store.add(seq, None, 0, kv_for(range(30), 0.0)) is first
    assert store.bytes == used


def test_eviction_drops_least_recent_leaves_first() -> None:
    per_token = LAYERS * 2 * KV_HEADS * DIM * 4
    store = PrefixStore(max_bytes=per_token * 40)
    prompt = list(range(20))
    root = store.add(prompt, None, 0, kv_for(range(20), 0.0))
    a = store.add(prompt + [1] * 10, root, 20, kv_for(range(20, 30), 0.0))
    b = store.add(prompt + [2] * 10, root, 20, kv_for(range(20, 30), 0.0))  # 40 tokens: full
    assert store.bytes == per_token * 40
    store.match(prompt + [1] * 10 + [9])  # a is now more recent than b
    store.add(prompt + [3] * 5, root, 20, kv_for(range(20, 25), 0.0))  # over budget by 5 tokens
    assert store.bytes <= store.max_bytes
    assert store.match(prompt + [2] * 10 + [9])[1] < 30  # b (the least recent leaf) went
    assert store.match(prompt + [1] * 10 + [9]) == (a, 30)
    assert store.match(prompt + [3] * 5 + [9])[1] == 25
    # The root outlived b although it was used less recently: it still has children.
    assert store.match(prompt + [8]) == (root, 20)
    # A child of an evicted parent is not stored (its prefix could not be rebuilt).
    store.clear()
    assert store.add(prompt + [4] * 3, b, 20, kv_for(range(20, 23), 0.0)) is None


# ---------------------------------------------------------------- the engine with the store

def engines(tiny_engine: HFEngine, **kwargs) -> tuple[HFEngine, HFEngine]:
    """(with the prefix cache, without it) over the same model."""
    model, tok = tiny_engine.model, tiny_engine.tokenizer
    cached = HFEngine(model, tok, **kwargs)
    plain = HFEngine(model, tok, prefix_cache_bytes=0)
    cached.eos_ids = plain.eos_ids = set()  # every sequence runs to its length: all are stored
    return cached, plain


PROMPTS = [[72, 101, 108, 108, 111, 44, 32, 119], [87, 104, 97, 116, 32, 105, 115, 32, 50, 43, 50, 63, 32, 73],
           [65, 66, 67]]


def assert_same(a: list, b: list) -> None:
    for ra, rb in zip(a, b, strict=True):
        for ca, cb in zip(ra, rb, strict=True):
            assert ca.token_ids == cb.token_ids
            assert ca.logprobs == pytest.approx(cb.logprobs, abs=1e-4)


def test_continuing_an_output_equals_a_fresh_prefill(tiny_engine: HFEngine) -> None:
    cached, plain = engines(tiny_engine)
    step = SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=1)
    first = cached.generate(PROMPTS, step)
    assert_same(first, plain.generate(PROMPTS, step))
    # The search's next call: every sample continued (a rollout), at another temperature.
    follow = [p + c.token_ids for p, group in zip(PROMPTS, first) for c in group]
    roll = SamplingParams(n=1, temperature=0.7, max_new_tokens=10, seed=2)
    before = cached.stats.reused_prompt_tokens
    assert_same(cached.generate(follow, roll), plain.generate(follow, roll))
    # Only each prompt's last token ran: the one its sample drew last.
    assert cached.stats.reused_prompt_tokens - before == sum(len(f) - 1 for f in follow)
    assert plain.stats.reused_prompt_tokens == 0


def test_reuse_at_a_block_boundary_and_mixed_batches(tiny_engine: HFEngine) -> None:
    cached, plain = engines(tiny_engine)
    shared = [(7 * i) % 250 + 3 for i in range(2 * BLOCK + 5)]
    greedy = SamplingParams(temperature=0, max_new_tokens=8)
    cached.generate([shared + [11, 12]], greedy)
    # One prompt shares 2 blocks and 5 tokens with the stored one (it reuses the 2 blocks), one
    # shares nothing: padded side by side.
    prompts = [shared + [40, 41, 42], [5, 6, 7, 8]]
    before = cached.stats.reused_prompt_tokens
    assert_same(cached.generate(prompts, greedy), plain.generate(prompts, greedy))
    assert cached.stats.reused_prompt_tokens - before == 2 * BLOCK


def test_changed_weights_empty_the_store(tiny_engine: HFEngine) -> None:
    model = copy.deepcopy(tiny_engine.model)
    cached = HFEngine(model, tiny_engine.tokenizer)
    greedy = SamplingParams(temperature=0, max_new_tokens=8)
    [[out]] = cached.generate(PROMPTS[:1], greedy)
    with torch.no_grad():
        model.model.layers[0].self_attn.k_proj.weight.mul_(1.5)  # in place: same storage
    again = [PROMPTS[0] + out.token_ids]
    before = cached.stats.reused_prompt_tokens
    fresh = HFEngine(model, tiny_engine.tokenizer, prefix_cache_bytes=0)
    assert_same(cached.generate(again, greedy), fresh.generate(again, greedy))
    assert cached.stats.reused_prompt_tokens == before


def test_tiny_budget_still_correct(tiny_engine: HFEngine) -> None:
    cached, plain = engines(tiny_engine, prefix_cache_bytes=20_000)
    step = SamplingParams(n=2, temperature=1.0, max_new_tokens=12, seed=4)
    first = cached.generate(PROMPTS, step)
    follow = [p + c.token_ids for p, group in zip(PROMPTS, first) for c in group]
    assert_same(cached.generate(follow, step), plain.generate(follow, step))
    assert 0 < cached.prefix_store.bytes <= 20_000
