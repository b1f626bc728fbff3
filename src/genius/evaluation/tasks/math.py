"""MATH (Hendrycks et al., 2021): the full 5000-problem test set, and MATH-500 (Lightman et al.).

Files: JSONL with ``problem`` and ``answer`` (MATH-500, math-evaluation-harness), or the original
release: a folder ``test/<subject>/<n>.json`` whose gold answer is the last ``\\boxed{}`` of
``solution``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.extract import last_boxed
from genius.evaluation.tasks._common import field, jsonl
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.io import read_json

FORMAT = ("JSONL with 'problem' and 'answer' (or 'solution' with a \\boxed{} answer), "
          "or the original folder test/<subject>/<n>.json")


def _item(record: dict, index: int, prefix: str, path: Path | str = "hub", line: int | None = None) -> Item:
    problem = field(record, "problem", Path(path), line, fmt=FORMAT)
    gold = record.get("answer")
    if not isinstance(gold, str) or not gold.strip():
        solution = record.get("solution")
        gold = last_boxed(solution) if isinstance(solution, str) else None
        if not gold:
            raise UserError(f"{where(path, line, 'answer')} missing, and no \\boxed{{}} answer in 'solution'")
    uid = record.get("unique_id") or record.get("id") or f"{prefix}-{index}"
    meta = {k: record[k] for k in ("subject", "type", "level") if k in record}
    return Item(id=str(uid), question=problem, gold=gold.strip(), meta=meta)


def _reader(prefix: str) -> Callable[[Path], list[Item]]:
    def read(path: Path) -> list[Item]:
        if not path.is_dir():
            return [_item(r, i, prefix, path, line) for i, (line, r) in enumerate(jsonl(path))]
        # The original release: one JSON file per problem, ids as MATH-500 writes them.
        files = sorted(path.glob("*/*.json"))
        if not files:
            raise UserError(f"{path}: no <subject>/<n>.json files: expected {FORMAT}")
        return [replace(_item(read_json(f), i, prefix, f), id=f"test/{f.relative_to(path).as_posix()}")
                for i, f in enumerate(files)]
    return read


MATH = Task(
    name="math", answer_type="math", description="MATH test, all 5000 problems",
    read=_reader("math"), files=("test.jsonl", "*.jsonl", "test"), format=FORMAT,
    hub=HubSource("DigitalLearningGmbH/MATH-lighteval", "default", "test", lambda row, i: _item(row, i, "math")),
    few_shot="math",
)
MATH500 = Task(
    name="math500", answer_type="math", description="MATH-500 (the PRM800K test subset of MATH)",
    read=_reader("math500"), files=("test.jsonl", "*.jsonl"), format=FORMAT,
    hub=HubSource("HuggingFaceH4/MATH-500", None, "test", lambda row, i: _item(row, i, "math500")),
    few_shot="math",
)
