"""Iterative baselines: build data with the current model -> train -> next iteration.

Iteration t (1-based) writes ``<out>/iter<t>/`` (the method's data, built with the model of
iteration t-1 and seed + t - 1) and ``<out>/iter<t>/train/`` (the trainer's run). Which model
training starts from and which one is the DPO reference:

- SPIN, CoH, Self-Rewarding, ScPO: start from the current model, reference = the current
  model (the previous iteration, as in SPIN / Self-Rewarding / ScPO);
- STaR: fine-tune the *base* model afresh on the rationales the current model wrote;
- SFT: one iteration only (its data does not depend on the model).

Training is whatever ``train`` does (the CLI passes genius.training.run_train): there is no
second training loop here. A finished iteration leaves ``iter<t>/iteration.json`` and is
skipped by a rerun.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genius.baselines import BaselineConfig, Builder, build, get_builder
from genius.engines import close_engine
from genius.engines.base import Engine
from genius.errors import UserError
from genius.io import read_json, read_jsonl, write_json
from genius.queries import Query

DONE = "iteration.json"


@dataclass(frozen=True)
class TrainRequest:
    data: Path
    """The iteration's pairs.jsonl / sft.jsonl."""
    loss: str
    """sft, dpo or dpo_nll (the method's)."""
    model: str
    """Model to start training from."""
    reference: str | None
    """Frozen DPO reference (None for SFT losses)."""
    out_dir: Path


def iteration_models(builder: Builder, base: str, current: str) -> tuple[str, str | None]:
    """(model training starts from, reference model) for one iteration of ``builder``."""
    start = base if builder.restart_from_base else current
    reference = None if builder.loss == "sft" else current
    return start, reference


def run_iterations(method: str, cfg: BaselineConfig, queries: Sequence[Query], *, base_model: str,
                   iterations: int, out_dir: Path, make_engine: Callable[[str], Engine],
                   train: Callable[[TrainRequest], str]) -> str:
    """Alternate build -> train ``iterations`` times; return the last trained model."""
    builder = get_builder(method)
    if iterations < 1:
        raise UserError(f"--iterations must be >= 1, got {iterations}")
    if not builder.uses_engine and iterations > 1:
        raise UserError(f"{builder.name} trains on fixed corpus data: iterations must be 1, got {iterations}")
    current = base_model
    for t in range(1, iterations + 1):
        it_dir = Path(out_dir) / f"iter{t}"
        if (it_dir / DONE).is_file():
            current = read_json(it_dir / DONE)["model"]
            print(f"{builder.name} iteration {t}: done before -> {current}")
            continue
        engine = make_engine(current) if builder.uses_engine else None
        data = build(builder.name, dataclasses.replace(cfg, seed=cfg.seed + t - 1), queries, engine, it_dir)
        close_engine(engine)
        del engine
        gc.collect()  # free the sampling model before the trainer loads its own copies
        if not read_jsonl(data):
            raise UserError(f"{data}: {builder.name} kept no training record in iteration {t} "
                            "(more queries, a larger k or a lower vote threshold may help)")
        start, reference = iteration_models(builder, base_model, current)
        current = str(train(TrainRequest(data, builder.loss, start, reference, it_dir / "train")))
        write_json(it_dir / DONE, {"iteration": t, "method": builder.name, "data": str(data), "loss": builder.loss,
                                   "started_from": start, "reference": reference, "model": current})
        print(f"{builder.name} iteration {t}/{iterations}: trained {builder.loss} on {data} -> {current}")
    return current
