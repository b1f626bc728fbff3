"""The frozen reference under sharded training: the DeepSpeed config derived for it (checked by
hand against TRL's prepare_deepspeed rule) and the plain single-process placement."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import torch

from genius.training.reference import hidden_size, prepare_reference, reference_deepspeed_config


def prepared_config(stage: int) -> dict:
    """A DeepSpeed config as accelerate leaves it after preparing the policy (auto values filled),
    with an optimizer and scheduler section as a JSON DeepSpeed config may carry."""
    return {
        "train_batch_size": 32, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1,
        "gradient_clipping": 1.0, "steps_per_print": float("inf"), "bf16": {"enabled": True},
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-6}},
        "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 10}},
        "zero_optimization": {"stage": stage, "offload_optimizer": {"device": "none"},
                              "offload_param": {"device": "none"}, "reduce_bucket_size": 123,
                              "stage3_gather_16bit_weights_on_model_save": True},
    }


def test_stage3_reference_stays_sharded_with_trl_bucket_sizes():
    train = prepared_config(3)
    before = copy.deepcopy(train)
    out = reference_deepspeed_config(train, 64)
    assert train == before  # the accelerator's own config is left alone
    assert "optimizer" not in out and "scheduler" not in out
    zero = out["zero_optimization"]
    assert zero["stage"] == 3
    # 64 * 64, 10 * 64, int(0.9 * 64 * 64): TRL's (and accelerate's "auto") rule.
    assert (zero["reduce_bucket_size"], zero["stage3_param_persistence_threshold"],
            zero["stage3_prefetch_bucket_size"]) == (4096, 640, 3686)
    assert zero["offload_param"] == {"device": "none"}
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                "gradient_clipping", "bf16"):
        assert out[key] == train[key], key


def test_other_stages_become_stage0_and_keep_the_batch_keys():
    for stage in (0, 1, 2):
        out = reference_deepspeed_config(prepared_config(stage), 64)
        assert out["zero_optimization"]["stage"] == 0, stage
        assert out["zero_optimization"]["reduce_bucket_size"] == 123  # not resized: no ZeRO-3 buckets
        assert "stage3_param_persistence_threshold" not in out["zero_optimization"]
        assert "optimizer" not in out and "scheduler" not in out
        assert (out["train_batch_size"], out["train_micro_batch_size_per_gpu"]) == (32, 4)


def test_stage3_without_a_known_width_keeps_the_configured_buckets():
    zero = reference_deepspeed_config(prepared_config(3), None)["zero_optimization"]
    assert zero["stage"] == 3 and zero["reduce_bucket_size"] == 123
    assert "stage3_prefetch_bucket_size" not in zero


def test_a_config_without_zero_section_gets_stage0():
    out = reference_deepspeed_config({"train_batch_size": 8, "train_micro_batch_size_per_gpu": 8}, 64)
    assert out == {"train_batch_size": 8, "train_micro_batch_size_per_gpu": 8, "zero_optimization": {"stage": 0}}


def test_hidden_size_takes_the_widest_of_hidden_sizes():
    assert hidden_size(SimpleNamespace(hidden_sizes=[32, 96, 64], hidden_size=8)) == 96
    assert hidden_size(SimpleNamespace(hidden_size=64)) == 64
    assert hidden_size(SimpleNamespace()) is None


def test_single_process_reference_is_placed_frozen_and_not_registered(tiny_model_dir):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    from genius.config import from_dict
    from genius.training import TrainConfig
    from genius.training.checkpoint import load_frozen

    AcceleratorState._reset_state()
    GradientState._reset_state()
    accelerator = Accelerator(cpu=True)
    cfg = from_dict(TrainConfig, {"model": str(tiny_model_dir), "data": "unused.jsonl", "cpu": True})
    model = load_frozen(str(tiny_model_dir), cfg, accelerator.device.type)
    model.train()  # prepare_reference must hand it back in eval mode whatever it was given
    net = prepare_reference(accelerator, model)
    assert net is model and not net.training
    assert all(p.device.type == "cpu" and not p.requires_grad for p in net.parameters())
    assert not any(m is net for m in accelerator._models)  # save_state/load_state must not carry it
    with torch.no_grad():
        logits = net(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, net.config.vocab_size)
