"""LogiQA (Liu et al., 2020), the original text release: 651 test items of 8 lines each.

Lines of an item: blank, the answer letter a-d, the context, the question, options A-D. Some
option lines carry noisy prefixes, so options are taken by position and only a leading
"A." / "B." label is stripped.
"""

from __future__ import annotations

import re
from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import choice_text
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.io import read_text

FORMAT = "text, 8 lines per item: blank, answer a-d, context, question, options A-D"
LABELS = ("A", "B", "C", "D")


def _option(line: str) -> str:
    return re.sub(r"^\s*[A-Da-d]\s*[.．、:)]\s*", "", line).strip()


def read(path: Path) -> list[Item]:
    lines = read_text(path, FORMAT).split("\n")
    if lines and not lines[0].strip() == "":
        raise UserError(f"{where(path, 1)} expected a blank line: {FORMAT}")
    items = []
    # Trailing blank lines are not items.
    while lines and not lines[-1].strip():
        lines.pop()
    for start in range(0, len(lines), 8):
        block = lines[start:start + 8]
        line = start + 1
        if len(block) < 8:
            raise UserError(f"{where(path, line)} item {len(items)} has {len(block)} of 8 lines: expected {FORMAT}")
        answer = block[1].strip().lower()
        if answer not in ("a", "b", "c", "d"):
            raise UserError(f"{where(path, line + 1)} expected the answer letter a-d, got {block[1]!r}")
        options = [_option(x) for x in block[4:8]]
        items.append(Item(id=f"logiqa-{len(items)}", question=choice_text(block[3], options, LABELS, block[2]),
                          gold=answer.upper(), labels=LABELS))
    return items


def _hub_item(row: dict, index: int) -> Item:
    # lucasmccabe/logiqa rows: 'context', 'query', 'options' [4], 'correct_option' 0-3.
    return Item(id=f"logiqa-{index}", question=choice_text(row["query"], row["options"], LABELS, row["context"]),
                gold=LABELS[int(row["correct_option"])], labels=LABELS)


TASK = Task(
    name="logiqa", answer_type="choice", description="LogiQA test (651 logical reasoning questions)",
    read=read, files=("Test.txt", "*.txt"), format=FORMAT,
    hub=HubSource("lucasmccabe/logiqa", None, "test", _hub_item),
)
