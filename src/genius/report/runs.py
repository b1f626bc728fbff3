"""What a report reads from a run directory, through its layout (genius.layout): the evaluated
models, stage timings, the method and model of the run, its training data size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genius.evaluation.compare import load_eval_dir
from genius.io import read_json, read_jsonl
from genius.layout import DONE, RunLayout


@dataclass
class EvalPoint:
    """One evaluated model: which round and training step it is, and its per-task results."""

    label: str
    round: int
    step: int | None
    """Training step of an intermediate checkpoint; None for the round's final model."""
    tasks: dict[str, dict[str, Any]]
    """task -> {"accuracy", "ci", "n", "metric", "scores": {item id: 0..1}, "correct": {item id: bool}}
    (genius.evaluation.compare.load_eval_dir)."""


def eval_points(run_dir: Path) -> list[EvalPoint]:
    """Every evaluation of a run that holds results, in order: base, then per round its
    intermediate steps and final model."""
    points = [EvalPoint(loc.label, loc.round, loc.step, load_eval_dir(loc.path))
              for loc in RunLayout(run_dir).eval_locations()]
    return [p for p in points if p.tasks]


def final_points(points: list[EvalPoint]) -> tuple[EvalPoint | None, EvalPoint | None]:
    """The base evaluation and the last round's final model."""
    base = next((p for p in points if p.label == "base"), None)
    finals = [p for p in points if p.round > 0 and p.step is None]
    return base, (finals[-1] if finals else None)


def pooled(point: EvalPoint) -> dict[str, float]:
    """The score of every item of every task of an evaluation (correct 0/1, a judge's 0..1),
    keyed task/item."""
    return {f"{t}/{i}": s for t, m in point.tasks.items() for i, s in m["scores"].items()}


def stage_times(run_dir: Path) -> list[tuple[str, float, float | None]]:
    """(stage, wall seconds, CPU seconds or None) of every finished stage, in the order they finished."""
    done = [read_json(m) for m in RunLayout(run_dir).done_markers()]
    done.sort(key=lambda d: d.get("finished_at", 0.0))
    return [(d.get("stage", "?"), float(d.get("seconds", 0.0)),
             float(d["cpu_seconds"]) if d.get("cpu_seconds") is not None else None) for d in done]


def model_of(run: Path) -> str:
    return str(RunLayout(run).read_config().get("model", "?"))


def method_of(run: Path) -> str:
    """The run's method and loss, with the sampling score and selection when set."""
    cfg = RunLayout(run).read_config()
    method = str(cfg.get("method", "genius"))
    from genius.baselines import default_loss

    loss = (cfg.get("train") or {}).get("loss", default_loss(method))
    extras = [f"{k}={v}" for k, v in (cfg.get("sample") or {}).items() if k in ("score", "selection")]
    return ", ".join([method, str(loss)] + extras)


def training_examples(run: Path) -> int | None:
    """Examples in the last round's training data (pairs or SFT records), None before it exists."""
    rounds = RunLayout(run).rounds()
    if not rounds:
        return None
    done = rounds[-1].sample / DONE
    data = Path(str(read_json(done).get("result", {}).get("data", ""))) if done.is_file() else None
    return len(read_jsonl(data, repair=False)) if data and data.is_file() else None


def trained_steps(run: Path) -> int | None:
    """The most steps any round of the run trained (its last logged step); None before training."""
    steps = [s for rnd in RunLayout(run).rounds() if (s := rnd.last_train_step()) is not None]
    return max(steps, default=None)


def comparison_members(run_dir: Path) -> list[Path] | None:
    """The run folders of a ``compare`` run that exist so far (from its config.yaml), None for a
    single run."""
    members = RunLayout(run_dir).members()
    return None if members is None else [m.root for m in members]
