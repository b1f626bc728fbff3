"""Loading the policy for training and writing checkpoints atomically (HF format + resume state).

Layout of a run folder::

    out_dir/train_config.yaml   the config (a resume refuses a changed one)
    out_dir/train_log.jsonl     one line per logged step
    out_dir/checkpoint-<step>/  model/ (HF folder; with LoRA the peft adapter), state/ (accelerate:
                                optimizer, scheduler, RNG), trainer_state.json (step, data position)
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
from genius.models import pick_dtype, resolve
from genius.training.config import TrainConfig

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def load_policy(cfg: TrainConfig, device_type: str) -> Any:
    """The starting model (weights in cfg.dtype), with LoRA adapters and gradient checkpointing
    when asked. Not moved to a device: accelerate.prepare places (or shards) it."""
    from transformers import AutoModelForCausalLM

    source = resolve(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=pick_dtype(device_type, cfg.dtype),
                                                 use_safetensors=True, trust_remote_code=cfg.trust_remote_code)
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


def load_frozen(spec: str, cfg: TrainConfig, device: Any) -> Any:
    """A second, frozen model (a reference other than the starting model), in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(resolve(spec), dtype=pick_dtype(str(device), cfg.dtype),
                                                 use_safetensors=True, trust_remote_code=cfg.trust_remote_code)
    model.requires_grad_(False)
    return model.to(device).eval()


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


def save_hf(accelerator: Any, model: Any, tokenizer: Any, folder: Path, *, merge_lora: bool) -> None:
    """The model as an HF folder. All processes must call it (ZeRO-3/FSDP gather the weights)."""
    unwrapped = accelerator.unwrap_model(model)
    is_peft = hasattr(unwrapped, "merge_and_unload")
    if is_peft and merge_lora:
        if accelerator.is_main_process:
            merged = unwrapped.merge_and_unload()
            merged.config.use_cache = True
            merged.save_pretrained(folder, safe_serialization=True)
    else:
        state = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            if not is_peft:
                unwrapped.config.use_cache = True
            unwrapped.save_pretrained(folder, state_dict=state, safe_serialization=True)
            if not is_peft:
                unwrapped.config.use_cache = False
    if accelerator.is_main_process:
        tokenizer.save_pretrained(folder)


def save_checkpoint(accelerator: Any, model: Any, tokenizer: Any, out_dir: Path, step: int,
                    trainer_state: dict[str, Any], keep: int) -> Path:
    path = out_dir / f"checkpoint-{step}"
    tmp = _fresh_tmp(accelerator, path)
    accelerator.save_state(str(tmp / "state"))
    save_hf(accelerator, model, tokenizer, tmp / "model", merge_lora=False)
    if accelerator.is_main_process:
        write_json(tmp / "trainer_state.json", trainer_state)
    _commit(accelerator, tmp, path)
    if accelerator.is_main_process and keep > 0:
        for _, old in checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return path


def save_final(accelerator: Any, model: Any, tokenizer: Any, out_dir: Path, summary: dict[str, Any]) -> Path:
    path = out_dir / "final"
    tmp = _fresh_tmp(accelerator, path)
    save_hf(accelerator, model, tokenizer, tmp, merge_lora=True)
    if accelerator.is_main_process:
        write_json(tmp / "genius_train_summary.json", summary)
    _commit(accelerator, tmp, path)
    return path
