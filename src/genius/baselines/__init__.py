"""The paper's baselines (Table 1) as data builders over the same engine and trainer.

Each builder writes the training data Genius writes, in the schema of ``genius.schema``
(``pairs.jsonl`` or ``sft.jsonl``), so ``genius train`` / ``genius report`` work unchanged:

============== ========== ========= ====================================================
method         output     loss      data
============== ========== ========= ====================================================
sft            sft.jsonl  sft       the corpus' own responses (supervised)
spin           pairs      dpo       corpus response vs the model's own (supervised)
star           sft.jsonl  sft       rationales agreeing with the majority (from base)
coh            pairs      dpo       self-prompted good vs bad response
self_rewarding pairs      dpo       best vs worst candidate by its own 5-point judging
scpo           pairs      dpo_nll   most- vs least-voted answer, weight = margin / k
============== ========== ========= ====================================================

``build(method, cfg, queries, engine, out_dir)`` writes one round of data; ``pipeline_method``
plugs a builder into the round driver of ``genius run`` (genius.pipeline), which is also what
``genius baseline --train`` runs: one seed rule (round r samples with seed + r), one done marker
per stage (DONE.json), one rule for the model a round trains from and its reference
(genius.run_config.round_models, with ``default_reference`` below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genius.baselines import coh, scpo, self_rewarding, sft, spin, star
from genius.baselines.common import (Process, as_queries, corpus_responses, load_baseline_queries,
                                     run_builder)
from genius.baselines.config import BaselineConfig
from genius.engines.base import Engine
from genius.errors import UserError
from genius.queries import Query
from genius.ranks import Shard
from genius.training.losses import DEFAULT_LOSS

__all__ = ["BUILDERS", "BaselineConfig", "Builder", "Query", "as_queries", "build", "default_loss",
           "get_builder", "pipeline_method"]


@dataclass(frozen=True)
class Builder:
    name: str
    summary: str
    output: Literal["pairs", "sft"]
    """Which file it writes: pairs.jsonl or sft.jsonl."""
    loss: str
    """The genius.training loss its data is meant for: sft, dpo or dpo_nll."""
    supervised: bool
    """Needs the corpus' responses (a ``response``/``output`` field on every query)."""
    uses_engine: bool
    restart_from_base: bool
    """Iterations fine-tune the base model afresh (STaR) instead of the latest one."""
    process: Process


BUILDERS: dict[str, Builder] = {b.name: b for b in [
    Builder("sft", "SFT on the corpus' own responses", "sft", "sft", True, False, False, sft.process),
    Builder("spin", "SPIN: corpus response vs the model's own, DPO", "pairs", "dpo", True, True, False, spin.process),
    Builder("star", "STaR: majority-agreeing rationales, SFT from the base model", "sft", "sft", False, True, True,
            star.process),
    Builder("coh", "CoH: self-prompted good vs bad response, DPO", "pairs", "dpo", False, True, False, coh.process),
    Builder("self_rewarding", "Self-Rewarding: self-judged best vs worst, DPO", "pairs", "dpo", False, True, False,
            self_rewarding.process),
    Builder("scpo", "ScPO: most- vs least-voted answer, weighted DPO + NLL", "pairs", "dpo_nll", False, True, False,
            scpo.process),
]}


def get_builder(method: str) -> Builder:
    """The builder of a method name (``-`` and ``_`` are the same: self-rewarding)."""
    key = method.strip().lower().replace("-", "_")
    if key not in BUILDERS:
        raise UserError(f"unknown baseline '{method}': expected one of {', '.join(BUILDERS)}")
    return BUILDERS[key]


def default_loss(method: str) -> str:
    """The loss a run of ``method`` trains with unless its train config names one: a baseline's
    builder's (its data is made for it), else genius.training's default (Genius: aco)."""
    builder = BUILDERS.get(method)
    return builder.loss if builder is not None else DEFAULT_LOSS


def default_reference(method: str) -> Literal["initial", "previous"] | None:
    """The frozen reference a round of ``method`` trains against unless the run config names one
    (genius.run_config.round_models applies it): none for the SFT-loss methods (SFT, STaR); the
    previous round's model for the iterative DPO baselines, as their papers iterate (SPIN: the
    model of iteration t is both the opponent and the reference of iteration t + 1; Self-Rewarding,
    ScPO and CoH alike); the starting model for Genius (the paper trains one round from it)."""
    builder = BUILDERS.get(method)
    if builder is None:
        return "initial"
    return None if builder.loss == "sft" else "previous"


def build(method: str, cfg: BaselineConfig, queries: Iterable[Any], engine: Engine | None, out_dir: Path, *,
          shard: Shard | None = None, together: bool = False, force: bool = False, inputs: Any = None) -> Path:
    """Write one round of ``method``'s training data into ``out_dir``; return the data file.

    ``queries``: genius.queries.Query objects, or records that ``as_queries`` accepts (the
    config's system prompt is added to those). ``engine``: the current model (None only for
    sft). A rerun into the same folder with the same settings resumes. ``shard``/``together``:
    this process's share when several build it (genius.ranks). ``inputs``
    (genius.sampling.runner.sample_inputs): the model and query file, recorded in the folder; a
    resume with others is refused unless ``force``.
    """
    builder = get_builder(method)
    items = list(queries)
    qs = items if all(isinstance(q, Query) for q in items) else as_queries(items, cfg.system_prompt)
    if not qs:
        raise UserError(f"{builder.name}: no queries given")
    if builder.supervised:
        missing = next((q.id for q in qs if not (q.response or "").strip()), None)
        if missing is not None:
            raise UserError(f"{builder.name} is supervised: query '{missing}' has no corpus response "
                            "(expected a field 'output' or 'response', e.g. alpaca_cleaned.sft.jsonl)")
    if builder.uses_engine and engine is None:
        raise UserError(f"{builder.name} generates with the model: an engine is required")
    return run_builder(builder.name, builder.output, builder.process, cfg, qs, engine, Path(out_dir),
                       shard=shard, together=together, force=force, inputs=inputs)


def pipeline_method(method: str) -> Callable[[Any], Path]:
    """A ``genius.pipeline.METHODS`` entry: ``ctx -> data file`` for one round.

    ``ctx`` carries ``cfg`` (the run config: ``seed``, ``baseline``, a dict of BaselineConfig
    keys, and ``queries.source``), ``round``, ``out_dir``, ``queries`` (the run's JSONL of ids
    and instructions), ``engine`` (the round's policy) and ``shard`` (this process's share). Round r samples with seed + r, as
    Genius. SFT/SPIN take the corpus responses from the run's query file when it has them, else
    from the file it was drawn from (``cfg.queries.source``; ids match, both come from
    genius.queries).
    """
    from genius.config import from_dict

    builder = get_builder(method)

    def run(ctx: Any) -> Path:
        cfg = from_dict(BaselineConfig, {**ctx.cfg.baseline, "seed": ctx.cfg.seed + ctx.round}, source="config: baseline")
        corpus = None
        if builder.supervised and not corpus_responses(Path(ctx.queries)):
            corpus = ctx.cfg.queries.source
        queries = load_baseline_queries(ctx.queries, supervised=builder.supervised, system=cfg.system_prompt,
                                        corpus=corpus)
        return build(builder.name, cfg, queries, ctx.engine, Path(ctx.out_dir), shard=ctx.shard, together=True,
                     force=ctx.force)

    return run
