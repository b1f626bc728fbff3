"""AIME 2024: 30 problems whose answers are integers 0-999 (written "025": compared as integers)."""

from __future__ import annotations

from pathlib import Path

from genius.evaluation.tasks._common import field, jsonl
from genius.evaluation.tasks.base import HubSource, Item, Task

FORMAT = "JSONL with 'id', 'problem' and 'answer'"


def _item(record: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    problem = field(record, "problem", Path(path), line, fmt=FORMAT)
    answer = field(record, "answer", Path(path), line, (str, int), fmt=FORMAT)
    uid = record.get("id", index)
    return Item(id=f"aime24-{uid}", question=problem, gold=str(answer).strip())


def read(path: Path) -> list[Item]:
    return [_item(r, i, path, line) for i, (line, r) in enumerate(jsonl(path))]


TASK = Task(
    name="aime24", answer_type="math", description="AIME 2024 (30 problems, integer answers)",
    read=read, files=("test.jsonl", "*.jsonl"), format=FORMAT,
    hub=HubSource("HuggingFaceH4/aime_2024", None, "train", lambda row, i: _item(row, i)),
)
