"""Who turns a round's queries into training data: Genius (stepwise foresight re-sampling) and
the paper's baselines (genius.baselines), by the name a run config gives as ``method``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genius.run_config import PipelineConfig, sample_config


@dataclass
class MethodContext:
    """What a method gets to build one round's training data."""

    cfg: PipelineConfig
    round: int
    out_dir: Path
    """The round's data folder (roundR/sample); resumable: a rerun continues what is there."""
    queries: Path
    """The unlabeled queries (JSONL with ``id`` and ``instruction``)."""
    engine: Any
    """The round's policy as an Engine."""
    shard: tuple[int, int] | None = None
    """This process's share of the queries under a launcher (genius.ranks); None: all of them.
    The shards are the processes of one launch: shard 0 merges them."""
    force: bool = False
    """Go on in a data folder started with other settings (``genius run --force``)."""


def _genius(ctx: MethodContext) -> Path:
    from genius.queries import load_queries
    from genius.sampling import run_sample

    run_sample(sample_config(ctx.cfg, ctx.round), load_queries(ctx.queries), ctx.out_dir, ctx.engine,
               shard=ctx.shard, together=True, force=ctx.force)
    return ctx.out_dir / "pairs.jsonl"


METHODS: dict[str, Callable[[MethodContext], Path]] = {"genius": _genius}
"""method name -> builder of one round's training data (pairs.jsonl or sft.jsonl), returning the
file. The paper's baselines (genius.baselines) join in ``methods()``; others can be added here."""


def methods() -> dict[str, Callable[[MethodContext], Path]]:
    from genius.baselines import BUILDERS, pipeline_method

    return {**METHODS, **{name: pipeline_method(name) for name in BUILDERS if name not in METHODS}}


def _baseline(cfg: PipelineConfig) -> Any:
    """The baseline builder of ``cfg.method``, or None for Genius and other non-baseline methods."""
    from genius.baselines import BUILDERS

    return None if cfg.method in METHODS else BUILDERS.get(cfg.method)
