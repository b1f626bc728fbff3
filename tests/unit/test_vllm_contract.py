"""The vLLM engine's pure parts, without vLLM: finish reasons, request seeds, the architecture
check and the start-up error lines. The engine itself is tested on vLLM in tests/vllm_engine
(not tests/vllm: that folder would be importable as a package named vllm)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from genius.engines.vllm import _check_architecture, _finish_reason, _startup_error, request_seed
from genius.errors import UserError


def test_finish_reasons():
    eos = {2, 7}
    assert _finish_reason("length", None, [5, 6], eos) == "length"
    assert _finish_reason("stop", "\n", [5, 6], eos) == "stop"
    assert _finish_reason("stop", None, [5, 7], eos) == "eos"
    with pytest.raises(RuntimeError, match="abort"):
        _finish_reason("abort", None, [5], eos)
    with pytest.raises(RuntimeError):  # "stop" without a stop string nor an EOS at the end
        _finish_reason("stop", None, [5, 6], eos)


def test_request_seeds_are_the_hf_streams_keys():
    import random

    from genius.engines.base import SamplingParams

    plain = SamplingParams()
    assert request_seed(plain, 3, 1, 2) == random.Random("3:1:2").getrandbits(63)
    seeds = {request_seed(plain, 0, i, j) for i in range(50) for j in range(8)}
    assert len(seeds) == 400 and all(0 <= s < 2**63 for s in seeds)
    assert request_seed(plain, 1, 0, 0) != request_seed(plain, 0, 0, 0)
    # Per-prompt seeds: the stream follows the prompt's own seed, not its place in the call.
    keyed = SamplingParams(seeds=(11, 22))
    assert request_seed(keyed, 0, 1, 2) == random.Random("22:2").getrandbits(63)
    assert request_seed(keyed, 5, 1, 2) == request_seed(SamplingParams(seeds=(22,)), 9, 0, 2)


def test_an_architecture_vllm_does_not_serve_is_refused():
    vllm = SimpleNamespace(ModelRegistry=SimpleNamespace(get_supported_archs=lambda: {"LlamaForCausalLM"}))
    _check_architecture(vllm, SimpleNamespace(architectures=["LlamaForCausalLM"]), "m")
    with pytest.raises(UserError, match="does not serve the architecture FancyLM; use --engine hf"):
        _check_architecture(vllm, SimpleNamespace(architectures=["FancyLM"]), "m")


def test_startup_errors_name_the_settings_to_change():
    oom = RuntimeError("Worker failed with error 'Available memory on node 0 (7.77/9.96 GiB) on kv cache allocation "
                       "is less than requested memory'\nmore lines")
    line = _startup_error("m", oom, 4096, 0.3)
    assert "\n" not in line and "ran out of memory" in line
    assert "engine_options.max_model_len (now 4096)" in line and "gpu_memory_utilization (now 0.3)" in line
    other = _startup_error("m", RuntimeError("Engine core initialization failed."), 4096, 0.9)
    assert "could not start m" in other and "--engine hf" in other


def test_the_gpu_chosen_for_vllm_is_visible_only_while_it_starts(monkeypatch):
    """cuda:K shows vLLM's engine processes GPU K alone, then the variable is as before: a rank
    that trains next on its own GPU, or starts a second engine, must not find it narrowed."""
    from genius.engines.vllm import _visible_gpu

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with _visible_gpu("cuda:3"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    for _ in range(2):  # a second engine on the same rank finds the same GPUs
        with _visible_gpu("cuda:1"):
            assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6"
    with pytest.raises(UserError, match="has no GPU 3"), _visible_gpu("cuda:3"):
        pass
    with _visible_gpu("cuda"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6"
