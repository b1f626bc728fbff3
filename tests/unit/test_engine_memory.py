"""The hf engine's memory plan (worked out by hand on Llama-3.1-8B and SmolLM2-135M shapes), its
chunking of a call within a budget on the tiny model, and the engine choice."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from genius.engines import EngineOptions, SamplingParams
from genius.engines.hf import HFEngine
from genius.engines.memory import ModelShape, plan_chunk
from genius.engines.options import choose_engine
from genius.errors import UserError

LLAMA_8B = SimpleNamespace(num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8,
                           head_dim=128, intermediate_size=14336, vocab_size=128256)
SMOLLM2_135M = SimpleNamespace(num_hidden_layers=30, hidden_size=576, num_attention_heads=9, num_key_value_heads=3,
                               intermediate_size=1536, vocab_size=49152)  # head_dim from hidden / heads = 64
GIB = 2**30


def test_llama_8b_bf16_paper_sampling_chunk_fits_an_80gb_gpu():
    """KV per token: 2 (k, v) * 32 layers * 8 heads * 128 * 2 bytes = 131072 (128 KiB).
    A 1000-token prompt + one 1024-token rollout: KV 131072 * 2024 = 265289728; one layer's
    activations 1000 * 2 * (3*4096 + 48*128 + 3*14336) = 122880000; scores 1000^2 * (32*8 + 2)
    = 258000000; logits 128256 * 4 * 3 = 1539072; in all 647708800 bytes. Budget on 80 GiB at
    0.9 less 16.06e9 bytes of weights: 61249411328 -> 94 prompts per chunk (the sampler's 512
    become 6 chunks, where all 512 at once would need 309 GiB)."""
    shape = ModelShape.from_config(LLAMA_8B, 2)
    assert shape.kv_bytes_per_token == 131072
    budget = int(0.9 * 80 * GIB) - 16_060_000_000
    plan = plan_chunk(shape, prompt_tokens=1000, new_tokens=1024, samples=1, budget_bytes=budget)
    assert plan.bytes_per_prompt == 647708800
    assert plan.prompts == 94
    assert 512 * plan.bytes_per_prompt / GIB == pytest.approx(308.85, abs=0.01)


def test_smollm2_fp32_demo_chunk():
    """KV per token: 2 * 30 * 3 * 64 * 4 = 46080. A 200-token prompt with 8 samples of 48 tokens:
    KV 46080 * (200 + 384) = 26910720; activations 200 * 4 * (1728 + 15*64 + 4608) = 5836800;
    scores 200^2 * (9*12 + 4) = 4480000; logits 8 * 49152 * 12 = 4718592; in all 41946112 ->
    25 prompts in 1 GiB."""
    shape = ModelShape.from_config(SMOLLM2_135M, 4)
    assert (shape.head_dim, shape.kv_bytes_per_token) == (64, 46080)
    plan = plan_chunk(shape, prompt_tokens=200, new_tokens=48, samples=8, budget_bytes=GIB)
    assert (plan.bytes_per_prompt, plan.prompts) == (41946112, 25)
    assert plan_chunk(shape, prompt_tokens=200, new_tokens=48, samples=8, budget_bytes=41946111).prompts == 0


def test_hf_engine_cuts_a_call_into_chunks_that_fit_and_keeps_its_samples(tiny_engine, monkeypatch):
    """With room for 2.5 prompts a call of 5 runs as 3 chunks; seeded samples stay what they are
    in one chunk (each (prompt, sample) has its own stream)."""
    prompts = [[72, 101, 108, 108, 111, 33], [87, 104, 97, 116, 63, 32], [65, 66, 67, 68, 69, 70],
               [50, 43, 50, 61, 63, 32], [49, 50, 51, 52, 53, 54]]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=3)
    engine = HFEngine(tiny_engine.model, tiny_engine.tokenizer, max_batch_size=64)
    whole = engine.generate(prompts, params)
    shape = ModelShape.from_config(engine.model.config, 4)
    per = plan_chunk(shape, prompt_tokens=6, new_tokens=8, samples=2, budget_bytes=1 << 40).bytes_per_prompt
    monkeypatch.setattr("genius.engines.hf.device_budget", lambda device, utilization: 2 * per + per // 2)
    assert [len(c) for c in engine._chunks(prompts, params)] == [2, 2, 1]
    cut = engine.generate(prompts, params)
    assert [[c.token_ids for c in r] for r in cut] == [[c.token_ids for c in r] for r in whole]


def test_hf_engine_says_which_setting_to_change_when_one_prompt_does_not_fit(tiny_engine, monkeypatch):
    engine = HFEngine(tiny_engine.model, tiny_engine.tokenizer, memory_utilization=0.5)
    monkeypatch.setattr("genius.engines.hf.device_budget", lambda device, utilization: 1000)
    with pytest.raises(UserError, match="engine_options.gpu_memory_utilization 0.5"):
        engine.generate([[65, 66]], SamplingParams(max_new_tokens=8))


def test_choose_engine(monkeypatch):
    import torch

    assert choose_engine("hf", "cuda") == "hf" and choose_engine("vllm", "cpu") == "vllm"
    assert choose_engine("auto", "cpu") == "hf"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("genius.engines.options.vllm_installed", lambda: True)
    assert choose_engine("auto", "auto") == "vllm" and choose_engine("auto", "cuda:1") == "vllm"
    assert choose_engine("auto", "cpu") == "hf"
    monkeypatch.setattr("genius.engines.options.vllm_installed", lambda: False)
    assert choose_engine("auto", "cuda") == "hf"
    with pytest.raises(UserError, match="unknown engine 'tgi'"):
        choose_engine("tgi")


def test_engine_options_defaults_follow_the_device():
    o = EngineOptions()
    assert (o.memory_utilization("cuda:0"), o.memory_utilization("cpu")) == (0.9, 0.3)
    assert (o.eager("cuda"), o.eager("cpu")) == (False, True)
    assert EngineOptions(gpu_memory_utilization=0.5, enforce_eager=False).eager("cpu") is False
    with pytest.raises(UserError, match="gpu_memory_utilization"):
        EngineOptions(gpu_memory_utilization=1.5).validate()


def test_vllm_missing_is_one_line_naming_the_extra(monkeypatch, capsys):
    import builtins

    from genius.cli import main

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    assert main(["generate", "hi", "--engine", "vllm", "--model", "smollm2-135m"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'pip install "genius[vllm]"' in err[0]
