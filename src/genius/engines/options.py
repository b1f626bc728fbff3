"""Which engine a stage generates with, and the settings of the engines (one definition for the
sample, eval, run and baseline configs, which each carry ``engine`` and ``engine_options``,
both marked ``genius.config.may_change``: they change how fast generation goes, not the method)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from genius.errors import UserError

EngineName = Literal["auto", "hf", "vllm"]
ENGINE_NAMES = ("auto", "hf", "vllm")

CPU_MEMORY_UTILIZATION = 0.3
"""Default share of RAM on a CPU: vLLM's CPU backend reserves that share for its KV cache up
front (0.9, its GPU default, would take the machine), and the hf engine's KV cache stays under it."""
GPU_MEMORY_UTILIZATION = 0.9


@dataclass
class EngineOptions:
    max_model_len: int = 4096
    """vLLM: the longest prompt + completion it serves; its KV cache is planned for it. Set from
    the stage's needs, never vLLM's default of the model's whole window (128K tokens for
    Llama-3.1, whose KV cache alone would not fit). Capped at the model's window."""
    gpu_memory_utilization: float | None = None
    """Share of the device's memory the engine may fill, weights included (vLLM's setting of the
    same name). The hf engine chooses its batch so that its KV cache stays under it. None: 0.9 on
    a GPU, 0.3 on a CPU."""
    tensor_parallel_size: int = 1
    """vLLM: GPUs one model is split across (one process drives them all)."""
    enforce_eager: bool | None = None
    """vLLM: skip torch.compile and CUDA graphs (starts in seconds instead of minutes, decodes
    slower on GPUs). None: eager on a CPU, compiled on a GPU."""

    def validate(self) -> None:
        if self.max_model_len < 2:
            raise UserError(f"engine_options.max_model_len: expected an integer >= 2, got {self.max_model_len}")
        u = self.gpu_memory_utilization
        if u is not None and not 0 < u <= 1:
            raise UserError(f"engine_options.gpu_memory_utilization: expected a share in (0, 1], got {u}")
        if self.tensor_parallel_size < 1:
            raise UserError("engine_options.tensor_parallel_size: expected an integer >= 1, "
                            f"got {self.tensor_parallel_size}")

    def eager(self, device: str) -> bool:
        return self.enforce_eager if self.enforce_eager is not None else not device.startswith("cuda")

    def memory_utilization(self, device: str) -> float:
        if self.gpu_memory_utilization is not None:
            return self.gpu_memory_utilization
        return GPU_MEMORY_UTILIZATION if device.startswith("cuda") else CPU_MEMORY_UTILIZATION


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(name: str, device: str = "auto") -> str:
    """``auto`` -> vllm where it is importable and a CUDA device is there (and asked for), else hf."""
    if name not in ENGINE_NAMES:
        raise UserError(f"unknown engine '{name}': expected {', '.join(ENGINE_NAMES)}")
    if name != "auto":
        return name
    if device != "auto" and not device.startswith("cuda"):
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() and vllm_installed() else "hf"
