"""``genius run --plan``: parameter and training-memory arithmetic on Llama-3.1-8B by hand, the
paper presets planned on 8 x 80 GB with both engines, a stage that does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from genius import pipeline
from genius.cli import main
from genius.plan import KNOWN_CONFIGS, parameter_count, plan_run, training_memory

REPO = Path(__file__).resolve().parents[2]
LLAMA = KNOWN_CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
PRESETS = sorted((REPO / "configs").glob("paper_*.yaml"))


def test_llama_8b_parameter_count():
    """embeddings and untied head 128256 * 4096 = 525336576 each; per layer q,o 4096*4096 and
    k,v 4096*1024 (41943040), MLP 3*4096*14336 (176160768), norms 8192: 218112000, x32 =
    6979584000; final norm 4096: 8030261248, the published count of Llama-3.1-8B."""
    assert parameter_count(LLAMA) == 8_030_261_248


def test_llama_8b_zero3_training_memory_by_hand():
    """8 GPUs, fp32 weights with bf16 autocast, 2 pairs of 1300 tokens per GPU, checkpointing:
    weights and gradients P*4/8 = 4015130624 each, Adam moments P*8/8 = 8030261248; 5200 tokens:
    activations 5200*4096*2*32 + 5200*2*(16*4096 + 2*14336 + 32*1300) = 2775552000; fp32 logits
    5200*128256*4 = 2667724800. ddp holds all of it on every GPU."""
    cfg = pipeline.load_config(str(REPO / "configs" / "paper_llama8b_magpie.yaml"))
    train = pipeline.train_config(cfg, policy=cfg.model, reference=None, data=Path("x"))
    zero3 = training_memory(LLAMA, train, 8, "zero3")
    assert zero3 == {"weights": 4015130624, "gradients": 4015130624, "optimizer": 8030261248,
                     "activations": 2775552000, "logits (fp32)": 2667724800}
    ddp = training_memory(LLAMA, train, 8, "ddp")
    assert ddp["weights"] == ddp["gradients"] == 8 * 4015130624 and ddp["optimizer"] == 8 * 8030261248


@pytest.mark.parametrize("engine", ["hf", "vllm"])
@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_paper_presets_plan_to_fit_8_gpus_of_80gb(preset, engine):
    cfg = pipeline.load_config(str(preset), {"engine": engine})
    plans = plan_run(cfg, gpus=8, gpu_gib=79.0, mode="zero3")
    assert [p.name for p in plans] == ["eval-base", "round1-sample", "round1-train", "round1-eval"]
    assert all(p.fits for p in plans), [(p.name, p.total / 2**30) for p in plans]
    assert all(p.total <= 79 * 2**30 for p in plans)
    sample = plans[1]
    assert sample.tokens == 25000 * 4 * 2 * 4 * (256 + 1024)
    assert sample.engine == engine


def test_plan_cli_prints_the_stages_and_refuses_what_does_not_fit(capsys):
    preset = str(REPO / "configs" / "paper_llama8b_magpie.yaml")
    assert main(["run", preset, "--plan", "--tokens-per-s", "20000"]) == 0
    out = capsys.readouterr().out
    # 1,024,000,000 tokens at 20,000 tok/s: 51,200 s on one engine, split over the 8 processes' engines
    assert "| round1-sample | meta-llama/Llama-3.1-8B-Instruct |" in out and "| 8 (1 GPU each) |" in out
    assert "1h46m" in out and "14h13m" not in out
    node = ["--set", "parallel=node", "--set", "engine_options.tensor_parallel_size=8", "--engine", "vllm"]
    assert main(["run", preset, "--plan", "--tokens-per-s", "20000", "--gpus", "16", *node]) == 0
    out = capsys.readouterr().out  # 2 nodes: one engine over 8 GPUs on each
    assert "| 2 (8 GPUs each) |" in out and "7h06m" in out
    assert main(["run", preset, "--plan", "--set", "engine_options.tensor_parallel_size=8"]) == 2
    assert "needs parallel: node" in capsys.readouterr().err
    assert main(["run", preset, "--plan", "--gpu-gib", "16", "--distributed", "ddp"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eval-base" in err[0] and "round1-train" in err[0]
