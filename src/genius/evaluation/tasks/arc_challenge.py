"""ARC-Challenge (Clark et al., 2018), AI2 format: most items have options A-D, a few use labels
"1"-"4" and a few have 3 or 5 options. Labels are shown exactly as the file gives them."""

from __future__ import annotations

from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import choice_text, field, jsonl
from genius.evaluation.tasks.base import HubSource, Item, Task

FORMAT = "AI2 ARC JSONL with 'id', 'question': {'stem', 'choices': [{'text', 'label'}]} and 'answerKey'"


def _make(uid: str, stem: str, texts: list[str], labels: list[str], key: str,
          path: Path | str, line: int | None) -> Item:
    if len(labels) < 2 or len(texts) != len(labels):
        raise UserError(f"{where(path, line, 'choices')} expected at least 2 options, each with text and label")
    if key not in labels:
        raise UserError(f"{where(path, line, 'answerKey')} {key!r} is not one of the labels {labels}")
    return Item(id=uid, question=choice_text(stem, texts, labels), gold=key, labels=tuple(labels))


def _item(record: dict, index: int, path: Path, line: int | None) -> Item:
    question = field(record, "question", path, line, dict, FORMAT)
    stem = field(question, "stem", path, line, fmt=FORMAT)
    choices = field(question, "choices", path, line, list, FORMAT)
    try:
        texts = [str(c["text"]) for c in choices]
        labels = [str(c["label"]).strip() for c in choices]
    except (KeyError, TypeError):
        raise UserError(f"{where(path, line, 'question.choices')} expected a list of {{text, label}}") from None
    key = str(field(record, "answerKey", path, line, fmt=FORMAT)).strip()
    return _make(str(record.get("id", f"arc-{index}")), stem, texts, labels, key, path, line)


def _hub_item(row: dict, index: int) -> Item:
    # allenai/ai2_arc flattens the choices into {'text': [...], 'label': [...]}.
    choices = row["choices"]
    return _make(row["id"], row["question"], list(choices["text"]), [str(x) for x in choices["label"]],
                 str(row["answerKey"]), "hub", index)


def read(path: Path) -> list[Item]:
    return [_item(r, i, path, line) for i, (line, r) in enumerate(jsonl(path))]


TASK = Task(
    name="arc_challenge", answer_type="choice", description="ARC-Challenge test (1172 science questions)",
    read=read, files=("ARC-Challenge-Test.jsonl", "*.jsonl"), format=FORMAT,
    hub=HubSource("allenai/ai2_arc", "ARC-Challenge", "test", _hub_item),
)
