"""The HF generation engine on the tiny random Llama: stops, finish reasons, log-probs, padding,
shared prefill, seeds, top-p, bad prompts. Both decode paths (lean and model.forward) run the
behavioural tests and must agree with each other."""

from __future__ import annotations

import math

import pytest
import torch

from genius.engines.base import SamplingParams
from genius.engines.hf import HFEngine, _sample
from genius.errors import UserError

PROMPTS = [[72, 101, 108, 108, 111], [87, 104, 97, 116, 32, 105, 115, 32, 50, 43, 50, 63], [65, 66]]


@pytest.fixture(scope="module", params=["lean", "forward"])
def engine(request: pytest.FixtureRequest, tiny_engine: HFEngine) -> HFEngine:
    """A fresh engine per decode path over the shared tiny model (tests may set eos_ids)."""
    assert tiny_engine.use_lean  # the tiny model is a Llama: the lean path is the default
    return HFEngine(tiny_engine.model, tiny_engine.tokenizer, use_lean=request.param == "lean")


def greedy(engine: HFEngine, prompts: list[list[int]], max_new: int = 24, **kw) -> list:
    return [r[0] for r in engine.generate(prompts, SamplingParams(temperature=0, max_new_tokens=max_new, **kw))]


@pytest.mark.parametrize("n", [3, 8])  # 8: 24 rows, where lean.linear returns transposed logits
def test_paths_agree(tiny_engine: HFEngine, n: int) -> None:
    lean_eng = HFEngine(tiny_engine.model, tiny_engine.tokenizer, use_lean=True)
    hf_eng = HFEngine(tiny_engine.model, tiny_engine.tokenizer, use_lean=False)
    params = SamplingParams(n=n, temperature=1.0, max_new_tokens=20, seed=5)
    a, b = lean_eng.generate(PROMPTS, params), hf_eng.generate(PROMPTS, params)
    for ra, rb in zip(a, b):
        for ca, cb in zip(ra, rb):
            assert ca.token_ids == cb.token_ids
            assert ca.logprobs == pytest.approx(cb.logprobs, abs=1e-4)


def test_greedy_logprobs_equal_teacher_forced(engine: HFEngine) -> None:
    outs = greedy(engine, PROMPTS, max_new=30)
    assert all(len(c.token_ids) == len(c.logprobs) > 0 for c in outs)
    forced = engine.logprobs(PROMPTS, [c.token_ids for c in outs])
    for c, lp in zip(outs, forced):
        assert c.logprobs == pytest.approx(lp, abs=1e-4)
    # Greedy picks the most likely token, so every log-prob is that of the mode: at least log(1/V).
    assert min(min(c.logprobs) for c in outs) > -torch.log(torch.tensor(320.0)).item()


def test_sampled_logprobs_are_before_temperature(engine: HFEngine) -> None:
    """At T = 2 the sampling distribution is flatter; the reported log-probs must still be the
    model's own log softmax(logits), i.e. what teacher forcing returns."""
    [outs] = engine.generate([PROMPTS[0]], SamplingParams(n=4, temperature=2.0, max_new_tokens=16, seed=3))
    forced = engine.logprobs([PROMPTS[0]] * 4, [c.token_ids for c in outs])
    for c, lp in zip(outs, forced):
        assert c.logprobs == pytest.approx(lp, abs=1e-4)


def test_padding_and_batch_composition_do_not_change_greedy(engine: HFEngine) -> None:
    together = greedy(engine, PROMPTS)
    for p, c in zip(PROMPTS, together):
        [alone] = greedy(engine, [p])
        assert alone.token_ids == c.token_ids
        assert alone.logprobs == pytest.approx(c.logprobs, abs=1e-4)


def test_batch_composition_does_not_change_samples(engine: HFEngine) -> None:
    """A prompt keeps its random streams (keyed by its index in the call) whatever follows it:
    alone it is unpadded, with the longer prompt behind it it is left-padded."""
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=16, seed=7)
    [alone] = engine.generate(PROMPTS[:1], params)
    [first, _, _] = engine.generate(PROMPTS, params)
    assert [c.token_ids for c in alone] == [c.token_ids for c in first]
    assert alone[0].token_ids != alone[1].token_ids


def test_n_samples_share_the_prompt(engine: HFEngine) -> None:
    before = engine.stats.prompt_tokens
    [outs] = engine.generate([PROMPTS[1]], SamplingParams(n=5, temperature=1.0, max_new_tokens=12, seed=0))
    assert len(outs) == 5
    assert engine.stats.prompt_tokens - before == len(PROMPTS[1])  # one prefill for the 5 samples
    assert all(c.prompt_tokens == len(PROMPTS[1]) for c in outs)
    assert len({tuple(c.token_ids) for c in outs}) > 1


def test_seed_reproducible_and_seed_matters(engine: HFEngine) -> None:
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=16, seed=11)
    first = engine.generate(PROMPTS, params)
    again = engine.generate(PROMPTS, params)
    other = engine.generate(PROMPTS, SamplingParams(n=3, temperature=1.0, max_new_tokens=16, seed=12))
    ids = lambda res: [[c.token_ids for c in r] for r in res]  # noqa: E731
    assert ids(first) == ids(again)
    assert ids(first) != ids(other)


def _ascii_pair(tokenizer, tokens: list[int]) -> int | None:
    """Index i >= 1 where tokens i, i+1 are two printable ASCII characters whose pair first
    occurs there in the decoded text; None if there is no such place."""
    for i in range(1, len(tokens) - 1):
        pair = tokenizer.decode(tokens[i:i + 2])
        if len(pair) == 2 and pair.isascii() and pair.isprintable() and not pair.isspace():
            head = tokenizer.decode(tokens[:i + 2])
            if head.endswith(pair) and head.find(pair) == len(head) - 2:
                return i
    return None


def test_stop_string_spanning_two_tokens_is_per_sequence(engine: HFEngine) -> None:
    """The byte tokenizer makes every character one token, so a 2-character stop string spans
    two tokens. The row that produces it stops right after it; the other row runs on unchanged
    (each row has its own random stream, so its samples do not depend on the other row)."""
    params = dict(n=1, temperature=1.0, max_new_tokens=40, seed=2)
    base = [r[0] for r in engine.generate(PROMPTS[:2], SamplingParams(**params))]
    found = [(row, _ascii_pair(engine.tokenizer, base[row].token_ids)) for row in (0, 1)]
    row, i = next((r, i) for r, i in found if i is not None)  # StopIteration: change the prompts
    stop = engine.tokenizer.decode(base[row].token_ids[i:i + 2])
    other = 1 - row
    assert stop not in engine.tokenizer.decode(base[other].token_ids)
    stopped = [r[0] for r in engine.generate(PROMPTS[:2], SamplingParams(**params, stop=(stop, "never-seen")))]
    assert stopped[row].finish_reason == "stop" and stopped[row].stop_string == stop
    assert stopped[row].token_ids == base[row].token_ids[: i + 2]
    assert stopped[row].text.endswith(stop)  # one character per token: the text ends with the stop string
    assert stopped[other].finish_reason == base[other].finish_reason != "stop"
    assert stopped[other].token_ids == base[other].token_ids


def test_finish_reasons_eos_and_length(engine: HFEngine) -> None:
    [base] = greedy(engine, [PROMPTS[0]], max_new=20)
    assert base.finish_reason == "length" and len(base.token_ids) == 20
    # Declare the 4th generated token an end-of-sequence token: greedy must end on its first use.
    eos = base.token_ids[3]
    first = base.token_ids.index(eos)
    saved = engine.eos_ids
    engine.eos_ids = {eos}
    try:
        [ended] = greedy(engine, [PROMPTS[0]], max_new=20)
    finally:
        engine.eos_ids = saved
    assert ended.finish_reason == "eos"
    assert ended.token_ids == base.token_ids[: first + 1]  # the EOS token is included


def test_context_limits_generation_and_rejects_long_prompts(engine: HFEngine) -> None:
    ctx = engine.max_context
    [near] = greedy(engine, [[65] * (ctx - 3)], max_new=50)
    assert near.finish_reason == "length" and len(near.token_ids) == 3
    with pytest.raises(UserError, match="context"):
        engine.generate([[65] * ctx], SamplingParams(max_new_tokens=4))


def test_empty_prompt_and_bad_params_are_user_errors(engine: HFEngine) -> None:
    with pytest.raises(UserError, match="prompt 1 is empty"):
        engine.generate([[65], []], SamplingParams())
    with pytest.raises(UserError, match="top_p"):
        engine.generate([[65]], SamplingParams(top_p=0))


@pytest.mark.parametrize("kernel", [False, True], ids=["torch", "kernel"])
def test_sample_inverse_cdf_by_hand(kernel: bool) -> None:
    """probs = [0.15, 0.5, 0.05, 0.3] -> cdf [0.15, 0.65, 0.70, 1.0]; a row takes the first token
    whose cdf exceeds u: u 0.1 -> 0, 0.16 -> 1, 0.66 -> 2, 0.71 -> 3, 0.99 -> 3. The log-prob is
    that of the token: log 0.15, log 0.5, ..."""
    logits = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]])).repeat(5, 1)
    u = torch.tensor([0.1, 0.16, 0.66, 0.71, 0.99], dtype=torch.float64)
    tok, lp = _sample(logits, 1.0, 1.0, u, kernel=kernel)
    assert tok.tolist() == [0, 1, 2, 3, 3]
    assert lp.tolist() == pytest.approx([math.log(p) for p in (0.15, 0.5, 0.05, 0.3, 0.3)], abs=1e-6)
    tok, lp = _sample(logits, 0.0, 1.0, None, kernel=kernel)
    assert tok.tolist() == [1] * 5 and lp.tolist() == pytest.approx([math.log(0.5)] * 5, abs=1e-6)


def test_sample_exact_boundary_goes_to_the_next_token() -> None:
    """u = 0.15 is exactly cdf[0]: it does not exceed it, so token 1 (torch path: float32 cdf)."""
    logits = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]]))
    assert _sample(logits, 1.0, 1.0, torch.tensor([0.15], dtype=torch.float64), kernel=False)[0].tolist() == [1]


def test_sample_top_p_by_hand() -> None:
    """Sorted: t1 0.5, t3 0.3, t0 0.15, t2 0.05; mass before each: 0, 0.5, 0.8, 0.95.
    top_p 0.7 drops those whose mass before is >= 0.7: keeps t1, t3 (sorted cdf 0.5, 0.8, total
    0.8). u 0.6 -> 0.48 -> t1; u 0.7 -> 0.56 -> t3; u 1.0 (target = total, the rounding edge)
    -> t3, never the dropped t0/t2. top_p 0.5 keeps t1 alone (0.5 already reaches 0.5)."""
    logits = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]])).repeat(3, 1)
    u = torch.tensor([0.6, 0.7, 1.0], dtype=torch.float64)
    assert _sample(logits, 1.0, 0.7, u)[0].tolist() == [1, 3, 3]
    assert _sample(logits, 1.0, 0.5, u)[0].tolist() == [1, 1, 1]


@pytest.mark.parametrize("kernel", [False, True], ids=["torch", "kernel"])
def test_sample_temperature_by_hand(kernel: bool) -> None:
    """At T = 0.5, p ∝ p^2 = [0.0225, 0.25, 0.0025, 0.09] / 0.365
    = [0.0616, 0.6849, 0.0068, 0.2466]; cdf [0.0616, 0.7466, 0.7534, 1]: u 0.68 -> 1, 0.75 -> 2
    (at T = 1, cdf [0.15, 0.65, 0.70, 1]: 0.68 -> 2, 0.75 -> 3). The log-probs stay those of
    T = 1: log 0.5 and log 0.05 for tokens 1 and 2."""
    logits = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]])).repeat(2, 1)
    u = torch.tensor([0.68, 0.75], dtype=torch.float64)
    tok, lp = _sample(logits, 0.5, 1.0, u, kernel=kernel)
    assert tok.tolist() == [1, 2]
    assert lp.tolist() == pytest.approx([math.log(0.5), math.log(0.05)], abs=1e-6)
    assert _sample(logits, 1.0, 1.0, u, kernel=kernel)[0].tolist() == [2, 3]


def test_sample_kernel_matches_torch_on_a_real_sized_vocabulary() -> None:
    """64 rows x 50,000 logits (blocks of 512, the last one partial), with -inf entries: the
    kernel picks the token where u falls in the exact (double) cdf, the torch path's token and
    its log-prob; masked (-inf) tokens are never drawn; a NaN row is an error, not a token."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50_000, generator=gen) * 4
    logits[:, ::7] = float("-inf")
    u = torch.rand(64, generator=gen, dtype=torch.float64)
    for temperature in (0.7, 1.0, 1.3):
        a_tok, a_lp = _sample(logits, temperature, 1.0, u, kernel=False)
        b_tok, b_lp = _sample(logits, temperature, 1.0, u, kernel=True)
        assert (b_tok % 7 != 0).all()
        probs = torch.softmax(logits.double() / temperature, -1)
        cdf = probs.cumsum(-1)
        before = cdf.gather(-1, b_tok[:, None])[:, 0] - probs.gather(-1, b_tok[:, None])[:, 0]
        # The kernel's token is where u falls in the exact (double) cdf.
        assert ((before <= u + 1e-6) & (u < cdf.gather(-1, b_tok[:, None])[:, 0] + 1e-6)).all()
        assert (a_tok == b_tok).all()
        torch.testing.assert_close(b_lp.float(), a_lp, atol=1e-4, rtol=1e-5)
    # Transposed logits (what lean.linear returns for a small vocabulary) sample the same.
    transposed = logits.t().contiguous().t()
    assert (_sample(transposed, 0.7, 1.0, u, kernel=True)[0] == _sample(logits, 0.7, 1.0, u, kernel=True)[0]).all()
    bad = logits[:3].clone()
    bad[1] = float("nan")
    with pytest.raises(ValueError, match="no finite value"):
        _sample(bad, 1.0, 1.0, u[:3], kernel=True)


def test_lean_fused_and_unfused_weights_agree(tiny_engine: HFEngine) -> None:
    """Fusing q/k/v and gate/up into single matmuls is a speed choice only: same logits."""
    from genius.engines.lean import LeanDecoder

    ids = torch.tensor([[0, 0, 72, 101, 108], [87, 104, 97, 116, 32]])
    attn = (torch.arange(5) >= torch.tensor([[2], [0]])).long()
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        fused, plain = LeanDecoder(tiny_engine.model, fuse=True), LeanDecoder(tiny_engine.model, fuse=False)
        assert fused.qkv is not None and plain.qkv is None
        a = fused.prefill(ids, attn, pos, repeat=2, total_length=8)
        b = plain.prefill(ids, attn, pos, repeat=2, total_length=8)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        step = torch.tensor([5, 5, 9, 9])
        torch.testing.assert_close(fused.step(step, pos[:, -1].repeat_interleave(2) + 1),
                                   plain.step(step, pos[:, -1].repeat_interleave(2) + 1), atol=1e-5, rtol=1e-5)


def test_lean_shared_prompt_cache_matches_forward_path_through_row_drops(tiny_engine: HFEngine) -> None:
    """The prompt's keys are kept once for its n samples; dropping single rows (sparse slots)
    and then every row of one prompt (its keys go) must give the logits of model.forward."""
    from genius.engines.hf import _CacheDecoder
    from genius.engines.lean import LeanDecoder

    ids = torch.tensor([[0, 0, 72, 101, 108], [87, 104, 97, 116, 32], [0, 0, 0, 65, 66]])
    attn = (torch.arange(5) >= torch.tensor([[2], [0], [3]])).long()
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    n = 3
    with torch.inference_mode():
        lean, ref = LeanDecoder(tiny_engine.model), _CacheDecoder(tiny_engine.model)
        torch.testing.assert_close(lean.prefill(ids, attn, pos, repeat=n, total_length=9),
                                   ref.prefill(ids, attn, pos, repeat=n, total_length=9), atol=1e-5, rtol=1e-5)
        nxt = pos[:, -1].repeat_interleave(n) + 1
        tokens = torch.arange(9) + 40
        drops = [None, torch.tensor([0, 2, 3, 4, 5, 6, 8]), torch.tensor([0, 1, 5, 6])]  # last: prompt 1 is gone
        for keep in drops:
            if keep is not None:
                lean.select(keep)
                ref.select(keep)
                tokens, nxt = tokens[keep], nxt[keep]
            torch.testing.assert_close(lean.step(tokens, nxt), ref.step(tokens, nxt), atol=1e-5, rtol=1e-5)
            nxt = nxt + 1
        assert lean.prefix is not None and lean.prefix.shape[2] == 2 and not lean.dense


@pytest.mark.parametrize("rows", [4, 32, 2000])
@pytest.mark.parametrize("features", [96, 20000])  # 20000: the blocked vocabulary-head path, last block partial
@pytest.mark.parametrize("with_bias", [False, True])
def test_lean_linear_equals_f_linear(rows: int, features: int, with_bias: bool) -> None:
    """Every branch of lean.linear (F.linear, weight @ x.T, blocked head) is the same product."""
    from genius.engines.lean import linear

    gen = torch.Generator().manual_seed(rows + features)
    x = torch.randn(2, rows // 2, 48, generator=gen)
    weight = torch.randn(features, 48, generator=gen)
    bias = torch.randn(features, generator=gen) if with_bias else None
    out = linear(x, weight, bias)
    assert out.shape == (2, rows // 2, features)
    torch.testing.assert_close(out, torch.nn.functional.linear(x, weight, bias), atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_engine_on_cuda_lean_and_forward_paths_agree(tiny_engine: HFEngine, dtype: torch.dtype) -> None:
    """On CUDA (no C kernels there): in fp32 both decode paths give the same greedy tokens; greedy
    log-probs equal teacher-forced ones (bf16: within its rounding); sampled runs are reproducible."""
    import copy

    model = copy.deepcopy(tiny_engine.model).to("cuda", dtype)
    lean_eng = HFEngine(model, tiny_engine.tokenizer, use_lean=True)
    fwd_eng = HFEngine(model, tiny_engine.tokenizer, use_lean=False)
    a, b = greedy(lean_eng, PROMPTS), greedy(fwd_eng, PROMPTS)
    if dtype == torch.float32:
        assert [c.token_ids for c in a] == [c.token_ids for c in b]
    tol = 1e-4 if dtype == torch.float32 else 0.2
    forced = lean_eng.logprobs(PROMPTS, [c.token_ids for c in a])
    for c, lp in zip(a, forced):
        assert c.logprobs == pytest.approx(lp, abs=tol)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=7)
    first, again = lean_eng.generate(PROMPTS, params), lean_eng.generate(PROMPTS, params)
    assert [[c.token_ids for c in r] for r in first] == [[c.token_ids for c in r] for r in again]


def test_mean_logprob_is_the_token_mean_and_nan_without_tokens_like_scoring_mean() -> None:
    from genius.engines.base import Completion
    from genius.sampling.scoring import mean

    assert Completion("ab", [1, 2], [-1.0, -2.0], "eos").mean_logprob == -1.5
    empty = Completion("", [], [], "length").mean_logprob
    assert math.isnan(empty) and math.isnan(mean([]))
