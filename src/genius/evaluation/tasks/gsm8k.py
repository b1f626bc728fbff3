"""GSM8K (Cobbe et al., 2021): 1319 grade-school word problems; the gold number follows ``#### ``."""

from __future__ import annotations

from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.extract import gsm8k_gold
from genius.evaluation.tasks._common import field, jsonl
from genius.evaluation.tasks.base import HubSource, Item, Task

FORMAT = "JSONL with 'question' and 'answer' (the gold number after '#### ')"


def _item(record: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    question = field(record, "question", Path(path), line, fmt=FORMAT)
    answer = field(record, "answer", Path(path), line, fmt=FORMAT)
    if "####" not in answer:
        raise UserError(f"{where(path, line, 'answer')} has no '#### <number>' gold answer")
    return Item(id=f"gsm8k-{index}", question=question, gold=gsm8k_gold(answer))


def read(path: Path) -> list[Item]:
    return [_item(r, i, path, line) for i, (line, r) in enumerate(jsonl(path))]


TASK = Task(
    name="gsm8k", answer_type="number", description="GSM8K test (1319 grade-school math word problems)",
    read=read, files=("test.jsonl", "*.jsonl"), format=FORMAT,
    hub=HubSource("openai/gsm8k", "main", "test", lambda row, i: _item(row, i)),
    few_shot="gsm8k",
)
