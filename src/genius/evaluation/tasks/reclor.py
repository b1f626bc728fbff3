"""ReClor (Yu et al., 2020): the 500 validation items (the test labels are hidden)."""

from __future__ import annotations

from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import choice_text, field, json_document
from genius.evaluation.tasks.base import HubSource, Item, Task

FORMAT = "json list of {'context', 'question', 'answers' [4], 'label' 0-3, 'id_string'}"
LABELS = ("A", "B", "C", "D")


def _item(record: dict, index: int, path: Path | str) -> Item:
    where_ = f"item {index} ({FORMAT})"
    context = field(record, "context", Path(path), None, fmt=where_)
    question = field(record, "question", Path(path), None, fmt=where_)
    answers = field(record, "answers", Path(path), None, list, where_)
    label = field(record, "label", Path(path), None, int, where_)
    if len(answers) != 4 or not 0 <= label < 4:
        raise UserError(f"{where(path, None, 'answers')} item {index}: expected 4 answers and a label 0-3")
    return Item(id=str(record.get("id_string", f"reclor-{index}")),
                question=choice_text(question, answers, LABELS, context), gold=LABELS[label], labels=LABELS)


def read(path: Path) -> list[Item]:
    doc = json_document(path, FORMAT)
    if not isinstance(doc, list):
        raise UserError(f"{path}: expected {FORMAT}, got a JSON {type(doc).__name__}")
    return [_item(r, i, path) for i, r in enumerate(doc)]


TASK = Task(
    name="reclor", answer_type="choice", description="ReClor validation (500 logical reasoning questions)",
    read=read, files=("val.json", "*.json"), format=FORMAT,
    hub=HubSource("metaeval/reclor", None, "validation", lambda row, i: _item(row, i, "hub")),
)
