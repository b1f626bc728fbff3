"""The vLLM engine on the real embedded model, against the hf engine and teacher forcing.

Run with ``make test-vllm`` (a virtualenv with vLLM's CPU build); skipped where vLLM is not
installed. One vLLM engine serves the module (it takes ~40 s to start on the 2-core CPU); the
CLI tests start their own in subprocesses, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (make test-vllm makes a virtualenv with it)")
pytestmark = pytest.mark.vllm

from genius.engines import EngineOptions, SamplingParams  # noqa: E402
from genius.models import chat_prompt_ids  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = ["What is 12 + 7?", "Name a prime number larger than 10.", "Is 15 divisible by 4? Explain.",
             "Sort 3, 1, 2 from smallest to largest.", "What is the capital of France?",
             "Write one sentence about the sea.", "How many legs does a spider have?", "What is 6 times 8?"]
# vLLM on CPU counts this share of the NUMA node's RAM (~10 GiB here) for weights and KV cache; 0.3
# leaves room for the module's engine and a CLI run's at once.
OPTIONS = {"max_model_len": 1024, "gpu_memory_utilization": 0.3}
LOGPROB_ATOL = 5e-4
"""fp32 on CPU: vLLM's kernels and transformers' add in other orders. Measured on 337 sampled
tokens (8 prompts x 2 samples): max |sampled - hf teacher-forced| 4.6e-5, mean 1.3e-5."""


@pytest.fixture(scope="module")
def vllm_engine(embedded_model_dir):
    from genius.engines import close_engine, make_engine

    engine = make_engine(str(embedded_model_dir), engine="vllm", options=EngineOptions(**OPTIONS), dtype="fp32",
                         device="cpu")
    yield engine
    close_engine(engine)


@pytest.fixture(scope="module")
def hf_engine(embedded_model_dir):
    from genius.engines.hf import HFEngine

    return HFEngine.from_spec(str(embedded_model_dir), dtype="fp32", device="cpu")


@pytest.fixture(scope="module")
def prompts(hf_engine):
    return [chat_prompt_ids(hf_engine.tokenizer, [{"role": "user", "content": q}]) for q in QUESTIONS]


def test_greedy_tokens_equal_the_hf_engine(vllm_engine, hf_engine, prompts):
    params = SamplingParams(temperature=0, max_new_tokens=32)
    ours = vllm_engine.generate(prompts, params)
    theirs = hf_engine.generate(prompts, params)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a[0].token_ids == b[0].token_ids, f"prompt {i}: {a[0].text!r} vs {b[0].text!r}"
        assert a[0].text == b[0].text and a[0].finish_reason == b[0].finish_reason
        assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=LOGPROB_ATOL)


def test_sampled_logprobs_are_the_untempered_teacher_forced_ones(vllm_engine, hf_engine, prompts):
    """At temperature 0.7 the reported log-probs are log softmax(logits), not of logits / 0.7:
    teacher forcing the same tokens (both engines) gives the same numbers."""
    out = vllm_engine.generate(prompts[:4], SamplingParams(n=2, temperature=0.7, max_new_tokens=24, seed=1))
    flat = [(prompts[i], c) for i, comps in enumerate(out) for c in comps]
    forced_hf = hf_engine.logprobs([p for p, _ in flat], [c.token_ids for _, c in flat])
    forced_vllm = vllm_engine.logprobs([p for p, _ in flat], [c.token_ids for _, c in flat])
    worst = 0.0
    for (_, c), a, b in zip(flat, forced_hf, forced_vllm):
        assert len(c.logprobs) == len(c.token_ids) == len(a) == len(b)
        worst = max([worst, *(abs(x - y) for x, y in zip(c.logprobs, a)), *(abs(x - y) for x, y in zip(b, a))])
    assert worst < LOGPROB_ATOL, f"max |sampled or vLLM-forced - hf-forced| = {worst:.2e}"
    # Tempered log-probs would differ from these by far more than the tolerance.
    tempered_gap = max(abs(x / 0.7 - x) for _, c in flat for x in c.logprobs)
    assert tempered_gap > 10 * LOGPROB_ATOL


def test_stop_strings_are_kept_and_end_the_text_as_the_hf_engine_does(vllm_engine, hf_engine, prompts):
    params = SamplingParams(temperature=0, max_new_tokens=64, stop=("\n", "."))
    ours = vllm_engine.generate(prompts, params)
    theirs = hf_engine.generate(prompts, params)
    stopped = 0
    for a, b in zip(ours, theirs):
        a, b = a[0], b[0]
        assert (a.token_ids, a.text, a.finish_reason, a.stop_string) == (b.token_ids, b.text, b.finish_reason,
                                                                         b.stop_string)
        assert a.text == vllm_engine.tokenizer.decode(a.token_ids, skip_special_tokens=True)
        if a.finish_reason == "stop":
            stopped += 1
            assert a.stop_string in a.text and a.stop_string in vllm_engine.tokenizer.decode(a.token_ids[-1:])
    assert stopped >= 4


def test_finish_reasons_eos_and_length(vllm_engine, prompts):
    [[short]] = vllm_engine.generate(prompts[:1], SamplingParams(temperature=0, max_new_tokens=3))
    assert short.finish_reason == "length" and len(short.token_ids) == 3
    [[full]] = vllm_engine.generate([prompts[4]], SamplingParams(temperature=0, max_new_tokens=200))
    assert full.finish_reason == "eos", full.text
    assert full.token_ids[-1] in vllm_engine.eos_ids and len(full.logprobs) == len(full.token_ids)
    assert "<|im_end|>" not in full.text


def test_n_samples_and_seeds(vllm_engine, prompts):
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=16, seed=7)
    first = vllm_engine.generate(prompts[:3], params)
    again = vllm_engine.generate(prompts[:3], params)
    other = vllm_engine.generate(prompts[:3], SamplingParams(n=4, temperature=1.0, max_new_tokens=16, seed=8))
    alone = vllm_engine.generate(prompts[:1], params)
    ids = [[c.token_ids for c in comps] for comps in first]
    assert all(len(comps) == 4 for comps in first)
    assert ids == [[c.token_ids for c in comps] for comps in again], "same seed, other samples"
    assert ids != [[c.token_ids for c in comps] for comps in other], "another seed, same samples"
    assert ids[0] == [c.token_ids for c in alone[0]], "a prompt's samples depend on the other prompts of the call"
    assert len({tuple(t) for t in ids[0]}) > 1, "the n samples of a prompt are all the same"


def test_a_seeded_call_larger_than_one_scheduler_step(vllm_engine, prompts):
    """128 requests of ~40 prompt tokens pass vLLM's 4096-token step budget, so some prompts wait
    for later steps (chunked prefill made vLLM 0.32's CPU worker die rewinding their seeded
    generators); the call is still complete and reproducible."""
    many = [prompts[i % len(prompts)] for i in range(16)]
    params = SamplingParams(n=8, temperature=1.0, max_new_tokens=4, seed=5)
    assert sum(len(p) for p in many) * params.n > 4096
    out = vllm_engine.generate(many, params)
    assert [len(r) for r in out] == [8] * 16 and all(len(c.token_ids) == 4 for r in out for c in r)
    again = vllm_engine.generate(many, params)
    assert [[c.token_ids for c in r] for r in again] == [[c.token_ids for c in r] for r in out]
    # The same prompt at another index of the call has streams of its own.
    assert [c.token_ids for c in out[8]] != [c.token_ids for c in out[0]]


def test_prompt_longer_than_max_model_len_is_one_clear_error(vllm_engine, prompts):
    from genius.errors import UserError

    with pytest.raises(UserError, match="engine_options.max_model_len"):
        vllm_engine.generate([prompts[0] * 200], SamplingParams(max_new_tokens=4))


# ---------------------------------------------------------------- the commands, as a user runs them

def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "genius.cli", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "GENIUS_NO_PROGRESS": "1"}


def _kill_when(cmd: list[str], ready, timeout: float = 600) -> None:
    """Start ``cmd`` in its own process group and SIGKILL the whole group (vLLM's engine process
    too) once ``ready()`` is true."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(),
                            start_new_session=True)
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it was killed: {proc.stderr.read().decode()[-2000:]}")
        assert time.time() < deadline, "timed out waiting for the run to write its first records"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip() and line.endswith("}")]


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_genius_sample_with_vllm_writes_valid_files_and_resumes_after_kill(embedded_model_dir, tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"id": f"q{i}", "instruction": q}) + "\n"
                               for i, q in enumerate(["What is 3 + 4?", "What is 5 + 9?"])))
    # One query per engine call (batch_sequences = beams * candidates): the first tree lands
    # before the second query starts, so the kill falls between them.
    cfg = _yaml(tmp_path / "sample.yaml", "beams: 2\ncandidates: 2\nsteps: 2\nmax_step_tokens: 24\n"
                "max_rollout_tokens: 32\nunfinished: keep\nbatch_sequences: 4\nengine_options:\n  max_model_len: 1024\n"
                "  gpu_memory_utilization: 0.3\n")
    out = tmp_path / "run"
    cmd = _cli("sample", str(queries), "--out", str(out), "--config", str(cfg), "--model", str(embedded_model_dir),
               "--engine", "vllm", "--dtype", "fp32", "--device", "cpu", "--no-progress")
    _kill_when(cmd, lambda: len(_lines(out / "trees.jsonl")) >= 1)
    assert len(_lines(out / "trees.jsonl")) == 1, "both queries were done before the kill"
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "engine: vllm" in done.stderr
    trees = _lines(out / "trees.jsonl")
    assert sorted(t["query_id"] for t in trees) == ["q0", "q1"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["engine"] == "vllm" and stats["queries_resumed"] == 1 and stats["queries"] == 2
    pairs = _lines(out / "pairs.jsonl")
    assert pairs and all({"prompt", "chosen", "rejected", "A_w", "A_l"} <= set(p) for p in pairs)
    for tree in trees:
        for step in tree["steps"]:
            assert all(c["f"] is None or c["f"] <= 0 for c in step["candidates"])


def test_genius_eval_with_vllm_writes_valid_files_and_resumes_after_kill(embedded_model_dir, tmp_path):
    cfg = _yaml(tmp_path / "eval.yaml", "engine_options:\n  max_model_len: 1024\n  gpu_memory_utilization: 0.3\n")
    out = tmp_path / "eval"
    cmd = _cli("eval", "--model", str(embedded_model_dir), "--tasks", "synthetic", "--limit", "4", "--batch-size",
               "2", "--max-new-tokens", "48", "--engine", "vllm", "--dtype", "fp32", "--device", "cpu",
               "--config", str(cfg), "--out", str(out))
    _kill_when(cmd, lambda: len(_lines(out / "synthetic" / "samples.jsonl")) >= 2)
    assert len(_lines(out / "synthetic" / "samples.jsonl")) == 2
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = _lines(out / "synthetic" / "samples.jsonl")
    assert len(records) == 4 and len({r["id"] for r in records}) == 4
    metrics = json.loads((out / "synthetic" / "metrics.json").read_text())
    assert metrics["engine"] == "vllm" and metrics["n"] == 4 and 0 <= metrics["accuracy"] <= 1


def test_out_of_memory_at_start_up_is_one_line_with_the_setting(embedded_model_dir):
    """0.05 of the RAM does not hold the weights and a KV cache: vLLM's worker fails, and the
    user gets one line naming the two settings."""
    from genius.engines import make_engine
    from genius.errors import UserError

    with pytest.raises(UserError) as info:
        make_engine(str(embedded_model_dir), engine="vllm", dtype="fp32", device="cpu",
                    options=EngineOptions(max_model_len=1024, gpu_memory_utilization=0.05))
    line = str(info.value)
    assert "\n" not in line and "engine_options.gpu_memory_utilization (now 0.05)" in line
    assert "engine_options.max_model_len (now 1024)" in line


def test_genius_run_with_vllm_frees_it_for_training_and_starts_it_again(embedded_model_dir, tmp_path, capsys):
    """Base evaluation and sampling on one vLLM engine, closed before training (the trainer
    loads its own copy), a new one on the trained checkpoint for the last evaluation."""
    import yaml

    from genius.cli import main
    from genius.io import read_json, read_jsonl

    cfg = {"model": str(embedded_model_dir), "run_dir": str(tmp_path / "run"), "dtype": "fp32", "device": "cpu",
           "engine": "vllm", "engine_options": OPTIONS,
           "queries": {"source": "synthetic", "count": 2, "kinds": ["arith1"]},
           # Budgets this short cut most responses: their pairs are kept (trained without EOS).
           "sample": {"beams": 2, "candidates": 2, "steps": 2, "max_step_tokens": 24, "max_rollout_tokens": 32,
                      "unfinished": "keep", "batch_sequences": 16},
           "train": {"loss": "aco", "lr": 1e-5, "max_steps": 1, "per_device_batch_size": 2, "max_length": 256,
                     "save_every": 0, "cpu": True},
           "eval": {"tasks": ["synthetic"], "limit": 4, "max_new_tokens": 48, "batch_size": 4}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    assert capsys.readouterr().err.count("engine: vllm") == 2  # one start for the base model, one for the trained
    assert read_json(run / "round1" / "sample" / "stats.json")["engine"] == "vllm"
    for folder in (run / "eval" / "base", run / "round1" / "eval"):
        assert read_json(folder / "synthetic" / "metrics.json")["engine"] == "vllm"
        assert len(read_jsonl(folder / "synthetic" / "samples.jsonl")) == 4
    assert read_jsonl(run / "round1" / "train" / "train_log.jsonl")
