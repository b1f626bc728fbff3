"""Sharded training on GPUs with the repo's accelerate configs: ZeRO-3 and FSDP with a separately
loaded reference model, and FSDP's sharded resume state. Skipped without CUDA (the ZeRO-3 test
also without deepspeed). Each run is `accelerate launch` on min(2, GPUs) processes of the tiny
random Llama, bf16 mixed precision as the configs say."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from genius.io import read_jsonl
from genius.tiny import save_tiny_model, write_tiny_pairs

REPO = Path(__file__).resolve().parents[2]
NPROC = min(2, torch.cuda.device_count()) if torch.cuda.is_available() else 0
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="needs deepspeed")


@pytest.fixture()
def run_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (save_tiny_model(tmp_path / "policy"), save_tiny_model(tmp_path / "ref", seed=1),
            write_tiny_pairs(tmp_path / "pairs.jsonl", 16))


def launch(config_name: str, tmp: Path, model: Path, ref: Path, pairs: Path, out: Path, **settings) -> None:
    """`accelerate launch` the train command with configs/accelerate/<config_name> on NPROC GPUs."""
    config = yaml.safe_load((REPO / "configs/accelerate" / config_name).read_text())
    config["num_processes"] = NPROC
    path = tmp / f"{NPROC}proc_{config_name}"
    path.write_text(yaml.safe_dump(config))
    base = {"reference_model": ref, "reference_cache_dir": tmp / "refcache" / out.name, "per_device_batch_size": 4,
            "max_length": 128, "warmup_ratio": 0, "save_every": 1, "keep_checkpoints": 0, "mixed_precision": "bf16",
            **settings}
    flags = ["--model", str(model), "--data", str(pairs), "--out", str(out), "--max-steps", "2", "--lr", "2e-3"]
    flags += [a for k, v in base.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path),
           "--num_processes", str(NPROC), "--main_process_port", str(29800 + os.getpid() % 100),
           "-m", "genius.cli", "train", *flags]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def check_finished(out: Path, start: Path) -> None:
    """Two finite logged steps; a final folder transformers loads, bf16 on disk, trained weights."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    log = read_jsonl(out / "train_log.jsonl")
    assert [r["step"] for r in log] == [1, 2]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["reward_margin"]) for r in log)
    assert abs(log[0]["chosen_reward"]) > 1e-3  # 0 had the policy been its own reference
    AutoModelForCausalLM.from_pretrained(out / "final")
    before, after = load_file(start / "model.safetensors"), load_file(out / "final" / "model.safetensors")
    assert set(after) == set(before)
    assert all(after[k].shape == before[k].shape and after[k].dtype == torch.bfloat16 for k in before)
    assert any(not torch.equal(after[k].float(), before[k].float().to(torch.bfloat16).float()) for k in before)


@needs_deepspeed
@pytest.mark.parametrize("mode", ["precompute", "online"])
def test_zero3_separate_reference_trains(run_inputs, tmp_path, mode):
    model, ref, pairs = run_inputs
    launch("deepspeed_zero3.yaml", tmp_path, model, ref, pairs, tmp_path / mode, reference_mode=mode)
    check_finished(tmp_path / mode, model)


def test_fsdp_separate_reference_sharded_state_and_resume(run_inputs, tmp_path):
    model, ref, pairs = run_inputs
    out = tmp_path / "fsdp"
    launch("fsdp.yaml", tmp_path, model, ref, pairs, out, reference_mode="online")
    check_finished(out, model)
    state = out / "checkpoint-1" / "state"
    # SHARDED_STATE_DICT: torch.distributed.checkpoint folders, no gathered full-weight files.
    assert (state / "pytorch_model_fsdp_0" / ".metadata").is_file()
    assert (state / "optimizer_0" / ".metadata").is_file()
    assert not list(state.glob("pytorch_model_fsdp*.bin")) and not (state / "optimizer.bin").exists()
    # The HF folder of the same checkpoint is complete (full shapes) even so.
    from safetensors.torch import load_file

    start = load_file(model / "model.safetensors")
    saved = load_file(out / "checkpoint-1" / "model" / "model.safetensors")
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in start.items()}

    first = read_jsonl(out / "train_log.jsonl")
    shutil.rmtree(out / "final")
    shutil.rmtree(out / "checkpoint-1" / "model")  # the resume must come from state/
    launch("fsdp.yaml", tmp_path, model, ref, pairs, out, reference_mode="online")
    again = read_jsonl(out / "train_log.jsonl")
    assert [r["step"] for r in again] == [1, 2]
    assert again[1]["loss"] == pytest.approx(first[1]["loss"], abs=1e-4)
