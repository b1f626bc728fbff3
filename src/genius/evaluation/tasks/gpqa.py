"""GPQA (Rein et al., 2023), diamond (198) and main (448), from the official CSV files.

The CSV holds the correct answer and three incorrect ones; the four are shuffled per item with
a generator seeded by the item's Record ID, so every run and every machine shows the same order.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import choice_text
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.io import read_text

FORMAT = "GPQA CSV with columns 'Question', 'Correct Answer', 'Incorrect Answer 1..3' (and 'Record ID')"
LABELS = ("A", "B", "C", "D")
COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
SHUFFLE_SEED = "genius-gpqa"


def shuffled_item(row: dict, index: int, prefix: str, path: Path | str = "hub", line: int | None = None) -> Item:
    """One GPQA row -> an item with its options shuffled by a fixed seed per item."""
    for col in COLUMNS:
        if not str(row.get(col) or "").strip():
            raise UserError(f"{where(path, line, col)} empty or missing: expected {FORMAT}")
    uid = str(row.get("Record ID") or f"{prefix}-{index}")
    options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    order = list(range(4))
    random.Random(f"{SHUFFLE_SEED}/{uid}").shuffle(order)
    shown = [options[k] for k in order]
    gold = LABELS[order.index(0)]
    meta = {"domain": row.get("High-level domain", "")}
    return Item(id=uid, question=choice_text(row["Question"], shown, LABELS), gold=gold, labels=LABELS, meta=meta)


def _reader(prefix: str):
    def read(path: Path) -> list[Item]:
        # Decoded whole first: bytes that are not UTF-8 are one line with the byte offset.
        reader = csv.DictReader(io.StringIO(read_text(path, FORMAT), newline=""))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}: expected {FORMAT}")
        # Line numbers count the header as line 1.
        return [shuffled_item(row, i, prefix, path, reader.line_num) for i, row in enumerate(reader)]
    return read


GPQA_DIAMOND = Task(
    name="gpqa_diamond", answer_type="choice", description="GPQA diamond (198 graduate-level questions)",
    read=_reader("gpqa_diamond"), files=("gpqa_diamond.csv", "*.csv"), format=FORMAT, folder="gpqa",
    hub=HubSource("Idavidrein/gpqa", "gpqa_diamond", "train", lambda row, i: shuffled_item(row, i, "gpqa_diamond")),
)
GPQA_MAIN = Task(
    name="gpqa_main", answer_type="choice", description="GPQA main (448 graduate-level questions)",
    read=_reader("gpqa_main"), files=("gpqa_main.csv", "*.csv"), format=FORMAT, folder="gpqa",
    hub=HubSource("Idavidrein/gpqa", "gpqa_main", "train", lambda row, i: shuffled_item(row, i, "gpqa_main")),
)
