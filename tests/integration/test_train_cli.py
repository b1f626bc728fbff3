"""`genius train` end to end on the tiny random Llama: files, every loss, cache, LoRA, bad
input, 2 processes == 1 process, resume after a kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genius.cli import main
from genius.config import from_dict
from genius.io import read_jsonl
from genius.training import LOSSES, TrainConfig, run_train

REPO = Path(__file__).resolve().parents[2]
LOG_FIELDS = {"step", "loss", "chosen_reward", "rejected_reward", "reward_margin", "accuracy", "aco_w_mean",
              "aco_w_min", "aco_w_max", "lr", "pairs_seen", "seconds"}


def make_pairs(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            a, b = rng.randint(2, 30), rng.randint(2, 30)
            f.write(json.dumps({
                "query_id": f"q{i}", "step": 1, "prompt": f"What is {a} + {b}?",
                "chosen": f"{a} + {b} = {a + b}. The answer is: {a + b}",
                "rejected": f"{a} + {b} = {a * b}. The answer is: {a * b + 1}",
                "A_w": rng.uniform(-0.3, 0.3), "A_l": rng.uniform(-0.6, 0.4)}) + "\n")
    return path


def config(model: Path, data: Path, tmp: Path, **kw) -> TrainConfig:
    base = {"model": str(model), "data": str(data), "lr": 2e-3, "warmup_ratio": 0.0, "max_length": 128,
            "per_device_batch_size": 4, "save_every": 0, "reference_cache_dir": str(tmp / "refcache"), "cpu": True}
    return from_dict(TrainConfig, {**base, **kw})


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", 16)


def test_cli_writes_run_folder_and_a_loadable_model(tiny_model_dir, pairs, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", str(tiny_model_dir), "--data", str(pairs), "--out", str(out), "--cpu",
            "--max-steps", "4", "--lr", "2e-3", "--set", "per_device_batch_size=4", "--set", "save_every=2",
            "--set", f"reference_cache_dir={tmp_path / 'cache'}", "--set", "max_length=128"]
    assert main(args) == 0
    log = read_jsonl(out / "train_log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert LOG_FIELDS <= set(log[0])
    assert log[-1]["pairs_seen"] == 16
    assert log[0]["loss"] == pytest.approx(0.693147, abs=1e-5)  # policy == reference at step 1: -log sigmoid(0)
    assert log[-1]["reward_margin"] > log[0]["reward_margin"]
    assert (out / "checkpoint-2" / "model" / "config.json").is_file()
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert (out / "train_config.yaml").is_file()
    before, after = weights(tiny_model_dir), weights(out / "final")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert "final model:" in capsys.readouterr().out
    assert main(["generate", "--model", str(out / "final"), "--max-new-tokens", "4", "--device", "cpu", "hi"]) == 0
    # A rerun of a finished run does nothing; a changed config or --no-resume is refused.
    capsys.readouterr()
    assert main(args) == 0 and "nothing to do" in capsys.readouterr().out
    assert main(args + ["--lr", "1e-3"]) == 2 and "other settings (lr: 0.002 -> 0.001)" in capsys.readouterr().err
    assert main(args + ["--no-resume"]) == 2 and "earlier run" in capsys.readouterr().err


def test_every_loss_trains(tiny_model_dir, pairs, tmp_path):
    """One batch holding all 16 pairs, three steps on it: the loss must fall for every loss."""
    for name in LOSSES:
        final = run_train(config(tiny_model_dir, pairs, tmp_path, loss=name, max_steps=3, per_device_batch_size=16),
                          tmp_path / name)
        log = read_jsonl(tmp_path / name / "train_log.jsonl")
        assert len(log) == 3, name
        assert log[2]["loss"] < log[0]["loss"], name
        assert (final / "config.json").is_file()


def test_reference_cache_reused_and_keyed_by_data(tiny_model_dir, pairs, tmp_path, capsys):
    run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=1, loss="dpo"), tmp_path / "a")
    assert len(list((tmp_path / "refcache").glob("*.pt"))) == 1
    capsys.readouterr()
    run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=1, loss="dpo"), tmp_path / "b")
    assert "loaded from cache" in capsys.readouterr().out
    other = make_pairs(tmp_path / "other.jsonl", 8, seed=5)
    run_train(config(tiny_model_dir, other, tmp_path, max_steps=1, loss="dpo"), tmp_path / "c")
    assert "loaded from cache" not in capsys.readouterr().out
    assert len(list((tmp_path / "refcache").glob("*.pt"))) == 2
    # precomputed and online reference give the same first-step loss trajectory
    log_a = read_jsonl(tmp_path / "a" / "train_log.jsonl")
    run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=1, loss="dpo", reference_mode="online"), tmp_path / "d")
    assert read_jsonl(tmp_path / "d" / "train_log.jsonl")[0]["loss"] == pytest.approx(log_a[0]["loss"], abs=1e-6)


def test_lora_reference_is_adapter_disabled_and_final_is_merged(tiny_model_dir, pairs, tmp_path):
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    final = run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=3, lora=lora, lr=2e-2), tmp_path / "lora")
    log = read_jsonl(tmp_path / "lora" / "train_log.jsonl")
    assert log[0]["loss"] == pytest.approx(0.693147, abs=1e-5)  # LoRA B starts at 0: policy == reference
    merged = weights(final)
    assert not any("lora" in k or "base_layer" in k for k in merged)
    assert set(merged) == set(weights(tiny_model_dir))
    before = weights(tiny_model_dir)
    changed = {k for k in before if not torch.equal(before[k], merged[k])}
    assert changed and all("q_proj" in k or "v_proj" in k for k in changed)


def test_bad_input_is_one_line_exit_2(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b", "A_w": 0.1, "A_l": 0.0}) + "\n"
                   + json.dumps({"prompt": "q", "rejected": "b"}) + "\n")
    args = ["train", "--model", str(tiny_model_dir), "--data", str(bad), "--out", str(tmp_path / "o"), "--cpu"]
    assert main(args) == 2
    assert "bad.jsonl:2: field 'chosen': missing" in capsys.readouterr().err
    assert main(args + ["--loss", "kto"]) == 2
    assert "unknown loss 'kto': expected one of aco, dpo, ipo, simpo, ropo, sft, dpo_nll" in capsys.readouterr().err


def _cli(*args: str, nproc: int = 1) -> list[str]:
    if nproc == 1:
        return [sys.executable, "-m", "genius.cli", "train", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
            str(29500 + os.getpid() % 1000), "-m", "genius.cli", "train", *args]


def test_two_processes_match_one_process(tiny_model_dir, pairs, tmp_path):
    """Global batch 8 = 1 process x 4 pairs x 2 accumulation steps = 2 processes (gloo) x 4 pairs
    x 1 step: the same pairs per optimizer step, so the same trajectory up to float summation
    order. Tolerance 1e-4 on loss and reward margin (observed differences ~1e-6)."""
    one = run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=4, global_batch_size=8,
                           reference_cache_dir=str(tmp_path / "c1")), tmp_path / "one")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(_cli("--model", str(tiny_model_dir), "--data", str(pairs), "--out", str(tmp_path / "two"),
                               "--cpu", "--max-steps", "4", "--lr", "2e-3", "--set", "warmup_ratio=0",
                               "--set", "max_length=128", "--set", "per_device_batch_size=4",
                               "--set", "global_batch_size=8", "--set", "save_every=0",
                               "--set", f"reference_cache_dir={tmp_path / 'c2'}", nproc=2),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = read_jsonl(one.parent / "train_log.jsonl"), read_jsonl(tmp_path / "two" / "train_log.jsonl")
    assert [r["pairs_seen"] for r in a] == [r["pairs_seen"] for r in b] == [8, 16, 24, 32]
    for ra, rb in zip(a, b, strict=True):
        assert rb["loss"] == pytest.approx(ra["loss"], abs=1e-4)
        assert rb["reward_margin"] == pytest.approx(ra["reward_margin"], abs=1e-4)
    assert a[-1]["loss"] < a[0]["loss"]


def test_resume_after_kill_continues_the_same_run(tiny_model_dir, pairs, tmp_path):
    """Kill -9 right after checkpoint-3 lands, rerun: the log and the final weights equal an
    uninterrupted run's (12 steps of 2 pairs cross an epoch boundary: 8 batches per epoch)."""
    kw = {"max_steps": 12, "per_device_batch_size": 2, "save_every": 3, "keep_checkpoints": 0}
    flags = ["--model", str(tiny_model_dir), "--data", str(pairs), "--out", str(tmp_path / "killed"), "--cpu",
             "--lr", "2e-3"] + [a for k, v in {**kw, "warmup_ratio": 0, "max_length": 128,
                                               "reference_cache_dir": tmp_path / "rc"}.items()
                                for a in ("--set", f"{k}={v}")]
    proc = subprocess.Popen(_cli(*flags), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 240
    while not (tmp_path / "killed" / "checkpoint-3").is_dir():
        assert proc.poll() is None and time.time() < deadline, "training ended before checkpoint-3 appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "final").exists()
    resumed = run_train(config(tiny_model_dir, pairs, tmp_path, **kw, reference_cache_dir=str(tmp_path / "rc")),
                        tmp_path / "killed")
    straight = run_train(config(tiny_model_dir, pairs, tmp_path, **kw, reference_cache_dir=str(tmp_path / "rc")),
                         tmp_path / "straight")
    a, b = read_jsonl(tmp_path / "killed" / "train_log.jsonl"), read_jsonl(tmp_path / "straight" / "train_log.jsonl")
    assert [r["step"] for r in a] == list(range(1, 13))
    for ra, rb in zip(a, b, strict=True):
        assert ra["loss"] == pytest.approx(rb["loss"], abs=1e-5)
        assert ra["pairs_seen"] == rb["pairs_seen"]
    wa, wb = weights(resumed), weights(straight)
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wb)


def test_set_flags_parse_nested_yaml_values():
    from genius.config import parse_sets

    assert parse_sets(["beta=0.2", "lora.r=8", "lora.target_modules=[q_proj]", "trackers=[]"]) == {
        "beta": 0.2, "lora": {"r": 8, "target_modules": ["q_proj"]}, "trackers": []}


@pytest.mark.slow
def test_embedded_model_reward_margin_rises(embedded_model_dir, tmp_path):
    """SmolLM2-135M, ACO, three steps on one batch of 4 arithmetic pairs: the implicit reward
    margin rises and the final folder loads as a normal model."""
    from genius.models import load_model

    data = make_pairs(tmp_path / "pairs.jsonl", 4)
    final = run_train(config(embedded_model_dir, data, tmp_path, max_steps=3, lr=1e-5, max_length=256), tmp_path / "r")
    log = read_jsonl(tmp_path / "r" / "train_log.jsonl")
    assert log[0]["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    assert log[2]["reward_margin"] > 0.01 and log[2]["loss"] < log[0]["loss"]
    model, _ = load_model(str(final), dtype="fp32", device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"


def test_saved_models_are_bf16_under_bf16_autocast_and_as_trained_otherwise(tiny_model_dir, pairs, tmp_path):
    """fp32 weights with bf16 mixed precision (the paper presets) save bf16 folders that
    transformers loads as bf16; the resume state keeps fp32; fp32 without autocast stays fp32."""
    import json

    from genius.models import load_model

    out = tmp_path / "bf16"
    final = run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=2, save_every=1, keep_checkpoints=0,
                             mixed_precision="bf16"), out)
    for folder in (Path(final), out / "checkpoint-1" / "model"):
        assert {t.dtype for t in weights(folder).values()} == {torch.bfloat16}
        assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    model, _ = load_model(str(final), dtype="bf16", device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    from safetensors.torch import load_file

    resume = load_file(out / "checkpoint-1" / "state" / "model.safetensors")
    assert {t.dtype for t in resume.values()} == {torch.float32}
    plain = run_train(config(tiny_model_dir, pairs, tmp_path, max_steps=1), tmp_path / "fp32")
    assert {t.dtype for t in weights(Path(plain)).values()} == {torch.float32}


def test_a_run_failed_on_its_inputs_records_no_config_and_the_corrected_rerun_is_accepted(tiny_model_dir, pairs,
                                                                                         tmp_path, capsys):
    """The config copy is written once data and model have loaded: a failed first try leaves
    none behind, so the corrected rerun into the same --out is not refused as a changed run."""
    out = tmp_path / "o"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "A_w": 0.1, "A_l": 0.0}) + "\n")
    flags = ["--out", str(out), "--cpu", "--max-steps", "1", "--set", "per_device_batch_size=4",
             "--set", "save_every=0", "--set", "max_length=128", "--set", f"reference_cache_dir={tmp_path / 'rc'}"]
    assert main(["train", "--model", str(tiny_model_dir), "--data", str(bad), *flags]) == 2
    assert "bad.jsonl:1: field 'rejected': missing" in capsys.readouterr().err
    assert not (out / "train_config.yaml").exists()
    assert main(["train", "--model", str(tmp_path / "no-such-model"), "--data", str(pairs), *flags]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (out / "train_config.yaml").exists()
    assert main(["train", "--model", str(tiny_model_dir), "--data", str(pairs), *flags]) == 0
    assert (out / "final" / "config.json").is_file()
    assert read_jsonl(out / "train_log.jsonl")[0]["step"] == 1
    saved = (out / "train_config.yaml").read_text()
    assert str(pairs) in saved and str(bad) not in saved
