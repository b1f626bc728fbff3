"""Loading the policy for training and writing checkpoints atomically (HF format + resume state).

Layout of a run folder::

    out_dir/train_config.yaml   the config, written once data and model have loaded (a resume
                                refuses one that differs in a field not marked may_change)
    out_dir/train_log.jsonl     one line per logged step
    out_dir/checkpoint-<step>/  model/ (plain HF folder, LoRA merged), state/ (accelerate:
                                optimizer, scheduler, RNG; under FSDP with SHARDED_STATE_DICT
                                one torch.distributed.checkpoint shard per process),
                                trainer_state.json (step, data position)
    out_dir/final/              the trained model as a plain HF folder (LoRA merged), with tokenizer

Every folder is written under a temporary name and renamed into place when complete, so a killed
run never leaves a checkpoint that looks finished.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from genius.errors import UserError
from genius.io import read_json, write_json
from genius.models import load_weights, pick_dtype
from genius.training.config import TrainConfig

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def load_policy(cfg: TrainConfig, device_type: str) -> Any:
    """The starting model (weights in cfg.dtype), with LoRA adapters and gradient checkpointing
    when asked. Not moved to a device: accelerate.prepare places (or shards) it."""
    model = load_weights(cfg.model, torch_dtype=pick_dtype(device_type, cfg.dtype),
                         trust_remote_code=cfg.trust_remote_code)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, lora)
        except ValueError as e:
            raise UserError(f"train config: lora.target_modules: {str(e).splitlines()[0]}") from None
    return model


def load_frozen(spec: str, cfg: TrainConfig, device_type: str) -> Any:
    """A second, frozen model (a reference other than the starting model), in eval mode. Not
    moved to a device: under FSDP with cpu_ram_efficient_loading the other processes hold meta
    tensors that only the FSDP wrap fills, so reference.prepare_reference places (or shards) it."""
    model = load_weights(spec, torch_dtype=pick_dtype(device_type, cfg.dtype), trust_remote_code=cfg.trust_remote_code)
    model.requires_grad_(False)
    return model.eval()


def checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first (temporary folders never match the name)."""
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := CHECKPOINT.match(p.name)) and p.is_dir()]
    return sorted(found)


def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    return read_json(ckpt / "trainer_state.json")


def _fresh_tmp(accelerator: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    return tmp


def _commit(accelerator: Any, tmp: Path, path: Path) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    accelerator.wait_for_everyone()


def merged_lora_state_dict(peft_model: Any) -> tuple[Any, dict[str, Any]]:
    """(base model, its state dict with every LoRA delta added), computed out of place: the
    training weights are untouched, unlike peft's merge_adapter/unmerge_adapter round trip."""
    import torch
    from peft.tuners.lora import LoraLayer

    base = peft_model.get_base_model()
    deltas = {}
    with torch.no_grad():
        for name, module in base.named_modules():
            if isinstance(module, LoraLayer) and not module.disable_adapters:
                deltas[f"{name}.weight"] = sum(module.get_delta_weight(a) for a in module.active_adapters)
        state = {}
        for key, value in base.state_dict().items():
            if ".lora_" in key:
                continue
            key = key.replace(".base_layer.", ".")
            state[key] = (value + deltas[key].to(value.dtype)) if key in deltas else value
    return base, state


def save_dtype(cfg: TrainConfig) -> Any:
    """The dtype of saved model folders (``TrainConfig.save_dtype``)."""
    import torch

    if cfg.save_dtype != "auto":
        return pick_dtype("cpu", cfg.save_dtype)
    if cfg.dtype == "bf16" or cfg.mixed_precision == "bf16":
        return torch.bfloat16
    if cfg.dtype == "fp16":
        return torch.float16
    return None  # the weights' own dtype


def save_hf(accelerator: Any, model: Any, tokenizer: Any, folder: Path, dtype: Any = None) -> None:
    """The model as a plain HF folder (LoRA merged in), loadable by every command and by vLLM,
    its floating weights in ``dtype`` (None: as trained). All processes must call it (ZeRO-3/FSDP
    gather the full weights for it: accelerate's get_state_dict asks FSDP for a FULL_STATE_DICT
    on rank 0 whatever fsdp_state_dict_type the resume state uses)."""
    unwrapped = accelerator.unwrap_model(model)
    if hasattr(unwrapped, "get_base_model"):
        # peft: merged on the main process from its own (unsharded) copy.
        if accelerator.is_main_process:
            net, state = merged_lora_state_dict(unwrapped)
    else:
        net, state = unwrapped, accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        net.config.use_cache = True  # generation wants the KV cache; training turned it off
        net.save_pretrained(folder, state_dict=state, safe_serialization=True)
        net.config.use_cache = False
        if dtype is not None:
            # save_pretrained writes the dtype of the model in memory; say what the file holds.
            config = read_json(folder / "config.json")
            config["dtype"] = str(dtype).removeprefix("torch.")
            write_json(folder / "config.json", config)
        tokenizer.save_pretrained(folder)


def save_checkpoint(accelerator: Any, model: Any, tokenizer: Any, out_dir: Path, step: int,
                    trainer_state: dict[str, Any], keep: int, dtype: Any = None) -> Path:
    path = out_dir / f"checkpoint-{step}"
    tmp = _fresh_tmp(accelerator, path)
    accelerator.save_state(str(tmp / "state"))
    save_hf(accelerator, model, tokenizer, tmp / "model", dtype)
    if accelerator.is_main_process:
        write_json(tmp / "trainer_state.json", trainer_state)
    _commit(accelerator, tmp, path)
    if accelerator.is_main_process and keep > 0:
        for _, old in checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return path


def save_final(accelerator: Any, model: Any, tokenizer: Any, out_dir: Path, summary: dict[str, Any],
               dtype: Any = None) -> Path:
    path = out_dir / "final"
    tmp = _fresh_tmp(accelerator, path)
    save_hf(accelerator, model, tokenizer, tmp, dtype)
    if accelerator.is_main_process:
        write_json(tmp / "genius_train_summary.json", summary)
    _commit(accelerator, tmp, path)
    return path
