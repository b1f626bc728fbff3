"""Generation engines. The sampler and evaluator use only the ``Engine`` protocol."""

from genius.engines.base import Completion, Engine, SamplingParams

__all__ = ["Completion", "Engine", "SamplingParams", "make_engine"]


def make_engine(model_spec: str, *, backend: str = "hf", **kwargs):
    """Build an engine for a model spec. ``backend``: ``hf`` (transformers, CPU/CUDA)."""
    if backend == "hf":
        from genius.engines.hf import HFEngine

        return HFEngine.from_spec(model_spec, **kwargs)
    from genius.errors import UserError

    raise UserError(f"unknown engine backend '{backend}': expected hf")
