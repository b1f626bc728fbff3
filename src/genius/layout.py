"""The layout of a run directory: the one place that names its folders and files, for the
pipeline that writes them and the report that reads them.

Layout of a run directory (every arrow of the design is a file here)::

    config.yaml                 the pipeline config as run (a changed config is refused on rerun)
    queries/queries.jsonl       the unlabeled queries of every round
    queries/answers.jsonl       their gold answers when known (synthetic, queries.task): read only
                                by the signal diagnostics, never by sampling or training
    eval/base/                  evaluation of the starting model
    round1/sample/              trees.jsonl, pairs.jsonl, stats.json (the method's training data;
                                with answers: stats.json "signal" and signal_f.png)
    round1/train/               checkpoints, train_log.jsonl
    round1/eval/                evaluation of the round's trained model
    round1/eval-steps/          the stage that evaluates intermediate checkpoints (its DONE.json)
    round1/eval-step20/ ...     with eval_every: evaluations of intermediate checkpoints
    report.md, plots/           written at the end (genius.report)

Every stage writes ``DONE.json`` into its folder when it has finished. An evaluation folder
(genius.evaluation) holds ``<task>/metrics.json`` and ``<task>/samples.jsonl``.

A config with ``compare:`` (run name -> overrides) is a comparison: each entry is a run of its
own in run_dir/NAME (layout above); run_dir/config.yaml and run_dir/report.md (one table of
all runs) and run_dir/plots/ sit above them.

Numbered folders (``round3``, ``eval-step20``) are named by ``round_name`` / ``eval_step_name``
and read back by ``round_number`` / ``eval_step_number`` beside them; other names are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genius.io import read_jsonl, read_yaml

DONE = "DONE.json"
"""The marker a stage writes into its folder when it has finished."""

_ROUND = "round"
_EVAL_STEP = "eval-step"


def _number_after(prefix: str, name: str) -> int | None:
    """N of a folder named prefix + N (decimal digits only), else None."""
    rest = name[len(prefix):] if name.startswith(prefix) else ""
    return int(rest) if rest.isascii() and rest.isdigit() else None


def round_name(r: int) -> str:
    return f"{_ROUND}{r}"


def round_number(name: str) -> int | None:
    """r of a folder named by ``round_name(r)``; None for any other name."""
    return _number_after(_ROUND, name)


def eval_step_name(step: int) -> str:
    return f"{_EVAL_STEP}{step}"


def eval_step_number(name: str) -> int | None:
    """The step of a folder named by ``eval_step_name(step)``; None for any other name
    (``eval-steps``, the stage folder, included)."""
    return _number_after(_EVAL_STEP, name)


def _numbered(folder: Path, number: Callable[[str], int | None]) -> list[tuple[int, Path]]:
    """(N, path) of the sub-folders whose names ``number`` reads, sorted by N."""
    if not folder.is_dir():
        return []
    found = [(n, p) for p in folder.iterdir() if p.is_dir() and (n := number(p.name)) is not None]
    return sorted(found)


def last_train_step(log: Path) -> int | None:
    """The highest ``step`` logged in a train_log.jsonl; None when the file or any step is missing."""
    if not log.is_file():
        return None
    return max((int(r["step"]) for r in read_jsonl(log) if "step" in r), default=None)


@dataclass(frozen=True)
class EvalLocation:
    """Where one evaluated model of a run is: which round and training step it is."""

    label: str
    round: int
    """0 for the base model."""
    step: int | None
    """Training step of an intermediate checkpoint; None for a round's final model (0 for the base)."""
    path: Path


@dataclass(frozen=True)
class RoundLayout:
    """The folders and files of one round (``roundR/``)."""

    dir: Path
    number: int

    @property
    def sample(self) -> Path:
        """The round's training data folder (the sample stage)."""
        return self.dir / "sample"

    @property
    def stats(self) -> Path:
        return self.sample / "stats.json"

    @property
    def trees(self) -> Path:
        return self.sample / "trees.jsonl"

    @property
    def pairs(self) -> Path:
        return self.sample / "pairs.jsonl"

    @property
    def signal_figure(self) -> Path:
        """f of correct vs wrong responses (genius.sampling.signal), when the queries have answers."""
        return self.sample / "signal_f.png"

    @property
    def train(self) -> Path:
        return self.dir / "train"

    @property
    def train_log(self) -> Path:
        return self.train / "train_log.jsonl"

    @property
    def eval(self) -> Path:
        """Evaluation of the round's final model."""
        return self.dir / "eval"

    @property
    def eval_steps(self) -> Path:
        """The stage folder of the intermediate evaluations (holds only its DONE.json)."""
        return self.dir / "eval-steps"

    def eval_step(self, step: int) -> Path:
        """Evaluation of the checkpoint saved at ``step``."""
        return self.dir / eval_step_name(step)

    def eval_step_dirs(self) -> list[tuple[int, Path]]:
        """(step, folder) of the intermediate evaluations present, by step."""
        return _numbered(self.dir, eval_step_number)

    def last_train_step(self) -> int | None:
        return last_train_step(self.train_log)


@dataclass(frozen=True)
class RunLayout:
    """The folders and files of one run directory (see the module docstring)."""

    root: Path
    """The run directory (a str is taken too)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def queries(self) -> Path:
        return self.root / "queries" / "queries.jsonl"

    @property
    def answers(self) -> Path:
        """Gold answers of the queries, for the signal diagnostics only."""
        return self.queries.parent / "answers.jsonl"

    @property
    def base_eval(self) -> Path:
        return self.root / "eval" / "base"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def round(self, r: int) -> RoundLayout:
        return RoundLayout(self.root / round_name(r), r)

    def member(self, name: str) -> RunLayout:
        """One run of a comparison run."""
        return RunLayout(self.root / name)

    # --- readers ---

    def rounds(self) -> list[RoundLayout]:
        """The rounds present, in order."""
        return [RoundLayout(p, r) for r, p in _numbered(self.root, round_number)]

    def read_config(self) -> dict[str, Any]:
        """config.yaml as a dict; {} when it is missing or not a mapping."""
        data = read_yaml(self.config) if self.config.is_file() else None
        return data if isinstance(data, dict) else {}

    def members(self) -> list[RunLayout] | None:
        """The runs of a comparison run that exist so far (from its config.yaml, in its order);
        None for a single run."""
        names = self.read_config().get("compare") or {}
        if not isinstance(names, dict) or not names:
            return None
        return [m for m in (self.member(str(name)) for name in names) if m.root.is_dir()]

    def eval_locations(self) -> list[EvalLocation]:
        """Every evaluation folder present, in order: base, then per round its intermediate steps
        and its final model."""
        found = [EvalLocation("base", 0, 0, self.base_eval)] if self.base_eval.is_dir() else []
        for rnd in self.rounds():
            found += [EvalLocation(f"{round_name(rnd.number)}-step{s}", rnd.number, s, p)
                      for s, p in rnd.eval_step_dirs()]
            if rnd.eval.is_dir():
                found.append(EvalLocation(round_name(rnd.number), rnd.number, None, rnd.eval))
        return found

    def done_markers(self) -> list[Path]:
        """The DONE.json of every finished stage of the run (member runs of a comparison included)."""
        return list(self.root.glob(f"**/{DONE}"))
