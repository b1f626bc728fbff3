"""Generation engines. The sampler and evaluator use only the ``Engine`` protocol."""

from __future__ import annotations

import sys
from typing import Any

from genius.engines.base import Completion, Engine, SamplingParams
from genius.engines.options import EngineOptions, choose_engine

__all__ = ["Completion", "Engine", "EngineOptions", "SamplingParams", "close_engine", "engine_name", "make_engine"]


def make_engine(model_spec: str, *, engine: str = "auto", options: EngineOptions | None = None,
                dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False,
                max_batch_size: int | None = None, progress: bool = False) -> Any:
    """Build an engine for a model spec. ``engine``: ``hf`` (transformers, CPU/CUDA), ``vllm``
    (genius.engines.vllm) or ``auto`` (vllm where it is installed and a CUDA device is there, else
    hf). The choice is printed on stderr; ``engine_name`` tells it to the run's records. A device
    this machine lacks is refused first, in one line (genius.models.pick_device)."""
    from genius.models import pick_device

    options = options or EngineOptions()
    options.validate()
    pick_device(device)
    name = choose_engine(engine, device)
    if name == "vllm":
        from genius.engines.vllm import VLLMEngine

        loaded: Any = VLLMEngine.from_spec(model_spec, options=options, dtype=dtype, device=device,
                                           trust_remote_code=trust_remote_code, progress=progress)
    else:
        from genius.engines.hf import HFEngine

        kwargs: dict[str, Any] = {"memory_utilization": options.gpu_memory_utilization, "progress": progress}
        if max_batch_size is not None:
            kwargs["max_batch_size"] = max_batch_size
        loaded = HFEngine.from_spec(model_spec, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                                    **kwargs)
    print(f"engine: {name}" + (f" (chosen by engine: {engine})" if engine != name else "") + f", model {model_spec}",
          file=sys.stderr)
    return loaded


def engine_name(engine: Any) -> str:
    """What a run records as its engine: ``hf``, ``vllm``, or the class name of another one."""
    return getattr(engine, "name", type(engine).__name__)


def close_engine(engine: Any) -> None:
    """Free what an engine holds (vLLM's engine process and its GPU memory) before it is dropped."""
    close = getattr(engine, "close", None)
    if callable(close):
        close()
