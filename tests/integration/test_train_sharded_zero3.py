"""DeepSpeed ZeRO-3 on CPU with a separately loaded reference model (skipped without deepspeed).

accelerate 1.15 runs DeepSpeed on CPU in one process only (its process-group set-up for DeepSpeed
needs a GPU-type backend; two CPU processes each believe they are rank 0 of 1), so this runs
configs/accelerate/deepspeed_zero3.yaml with one process. ZeRO-3 still creates both models inside
zero.Init with their parameters partitioned away (empty placeholders), so a reference used without
a DeepSpeed engine fails here exactly as on GPUs ("'weight' must be 2-D"). Multi-process sharding
is covered by tests/gpu/test_train_sharded_gpu.py.
"""

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
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="needs deepspeed")]


def zero3_cpu_config(tmp: Path) -> Path:
    """The repo's ZeRO-3 file, for one CPU process in fp32."""
    config = yaml.safe_load((REPO / "configs/accelerate/deepspeed_zero3.yaml").read_text())
    config.update(num_processes=1, mixed_precision="no")
    path = tmp / "zero3_cpu.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def train_flags(model: Path, ref: Path, pairs: Path, out: Path, cache: Path, **settings) -> list[str]:
    base = {"reference_model": ref, "reference_cache_dir": cache, "per_device_batch_size": 4, "max_length": 128,
            "warmup_ratio": 0, "save_every": 1, "keep_checkpoints": 0, **settings}
    flags = ["--model", str(model), "--data", str(pairs), "--out", str(out), "--max-steps", "2", "--lr", "2e-3"]
    return flags + [a for k, v in base.items() for a in ("--set", f"{k}={v}")]


def launch_zero3(config: Path, flags: list[str], expect_failure: bool = False) -> str:
    """Run the train command under ZeRO-3; return its stderr. (The launcher reports a failed
    child as exit 1, so a UserError's exit 2 is not visible here.)"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes", "1",
           "--main_process_port", str(29700 + os.getpid() % 200), "-m", "genius.cli", "train", *flags]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert (proc.returncode != 0) == expect_failure, (proc.stdout + proc.stderr)[-3000:]
    return proc.stderr


def only_cache_file(folder: Path) -> dict:
    [path] = folder.glob("*.pt")
    return torch.load(path, weights_only=True)


def test_zero3_separate_reference_matches_unsharded_run_and_resumes(tmp_path):
    from genius.cli import main

    model, ref = save_tiny_model(tmp_path / "policy"), save_tiny_model(tmp_path / "ref", seed=1)
    pairs = write_tiny_pairs(tmp_path / "pairs.jsonl", 16)
    config = zero3_cpu_config(tmp_path)

    # Unsharded baseline: the same run on one CPU process without DeepSpeed.
    assert main(["train", "--cpu", *train_flags(model, ref, pairs, tmp_path / "plain", tmp_path / "c_plain")]) == 0
    plain = read_jsonl(tmp_path / "plain" / "train_log.jsonl")

    # Precomputed reference log-probs through the reference's DeepSpeed engine.
    launch_zero3(config, train_flags(model, ref, pairs, tmp_path / "z3", tmp_path / "c_z3"))
    a, b = only_cache_file(tmp_path / "c_plain"), only_cache_file(tmp_path / "c_z3")
    assert torch.allclose(a["chosen"], b["chosen"], atol=1e-4)
    assert torch.allclose(a["rejected"], b["rejected"], atol=1e-4)
    z3 = read_jsonl(tmp_path / "z3" / "train_log.jsonl")
    assert [r["step"] for r in z3] == [1, 2] and all(math.isfinite(r["loss"]) for r in z3)
    assert z3[0]["loss"] == pytest.approx(plain[0]["loss"], abs=1e-4)
    assert abs(z3[0]["chosen_reward"]) > 1e-3  # 0 had the policy been its own reference

    from transformers import AutoModelForCausalLM

    final = AutoModelForCausalLM.from_pretrained(tmp_path / "z3" / "final")
    assert final.config.vocab_size == 320

    # Resume under ZeRO-3: drop the final folder, rerun; step 2 is redone from checkpoint-1's state.
    shutil.rmtree(tmp_path / "z3" / "final")
    shutil.rmtree(tmp_path / "z3" / "checkpoint-1" / "model")  # the resume must come from state/
    launch_zero3(config, train_flags(model, ref, pairs, tmp_path / "z3", tmp_path / "c_z3"))
    again = read_jsonl(tmp_path / "z3" / "train_log.jsonl")
    assert [r["step"] for r in again] == [1, 2]
    assert again[1]["loss"] == pytest.approx(z3[1]["loss"], abs=1e-5)

    # Online mode: the reference forward runs every step through the engine.
    launch_zero3(config, train_flags(model, ref, pairs, tmp_path / "online", tmp_path / "c_on",
                                     reference_mode="online"))
    online = read_jsonl(tmp_path / "online" / "train_log.jsonl")
    assert online[0]["loss"] == pytest.approx(plain[0]["loss"], abs=1e-4)
    assert online[0]["reward_margin"] == pytest.approx(plain[0]["reward_margin"], abs=1e-4)



def test_lora_under_zero3_is_refused_with_the_reason(tmp_path):
    model = save_tiny_model(tmp_path / "policy")
    flags = train_flags(model, model, write_tiny_pairs(tmp_path / "pairs.jsonl", 4), tmp_path / "lora", tmp_path / "c",
                        **{"lora.r": 4, "lora.target_modules": "[q_proj]"})
    err = launch_zero3(zero3_cpu_config(tmp_path), flags, expect_failure=True)
    assert "LoRA with ZeRO-3/FSDP sharding is not supported" in err
    assert "holds only a shard of them" in err
    assert not (tmp_path / "lora" / "final").exists()
