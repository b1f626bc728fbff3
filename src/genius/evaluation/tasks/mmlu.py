"""MMLU (Hendrycks et al., 2021; 57 subjects, 4 options) and MMLU-Pro (Wang et al., 2024; 14
categories, up to 10 options), answered with a chain of thought and an option letter (paper
Table 2, general domain). Accuracy is reported overall and per subject (``meta.subject``).

MMLU is read in three forms: the official release (``data/test/<subject>_test.csv``: no header
row, question, four options, answer letter A-D; a folder of them or one file), the hub's layout
(``cais/mmlu``: ``question``, ``subject``, ``choices`` [4], ``answer`` 0-3; as parquet, JSON or
JSONL), and a re-serialized CSV with a header ``question, choice0..choice3, answer`` (index 0-3)
and ``subject``. MMLU-Pro: the hub's layout (``TIGER-Lab/MMLU-Pro``: ``question_id``,
``question``, ``options``, ``answer`` letter, ``category``) as parquet, JSON or JSONL.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from genius.errors import UserError, where
from genius.evaluation.tasks._common import LETTERS, choice_text, field, records
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.io import read_text

MMLU_FORMAT = ("MMLU CSV (official: no header, question, 4 options, answer letter; one <subject>_test.csv per "
               "subject), or the hub layout (question, subject, choices, answer 0-3) as parquet/JSON/JSONL")
PRO_FORMAT = "MMLU-Pro rows (question_id, question, options, answer letter, category) as parquet/JSON/JSONL"
_HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]


def _item(uid: str, question: str, options: list[Any], gold: str, subject: str, where_: str) -> Item:
    texts = [str(o) for o in options]
    if not 2 <= len(texts) <= len(LETTERS):
        raise UserError(f"{where_}: expected 2 to {len(LETTERS)} options, got {len(texts)}")
    labels = tuple(LETTERS[: len(texts)])
    if gold not in labels:
        raise UserError(f"{where_}: answer {gold!r} is not one of the option letters {''.join(labels)}")
    return Item(id=uid, question=choice_text(question, texts, labels), gold=gold, labels=labels,
                meta={"subject": subject})


def _letter(answer: Any, where_: str) -> str:
    """An answer given as a letter ("C") or as an option index (2 or "2")."""
    if answer is None or isinstance(answer, bool):
        raise UserError(f"{where_} missing: expected the answer as a letter or an option index")
    text = str(answer).strip()
    if text.isdigit():
        index = int(text)
        if index >= len(LETTERS):
            raise UserError(f"{where_}: answer index {index} is past the last option letter")
        return LETTERS[index]
    return text.upper()


def _csv_rows(path: Path) -> list[list[str]]:
    # Decoded whole first: bytes that are not UTF-8 are one line with the byte offset.
    return list(csv.reader(io.StringIO(read_text(path, MMLU_FORMAT), newline="")))


def _read_csv(path: Path) -> list[Item]:
    rows = _csv_rows(path)
    header = [c.strip().lower() for c in rows[0]] if rows else []
    if header[:6] == _HEADER:  # the re-serialized copy, subject in a column
        if "subject" not in header:
            raise UserError(f"{where(path, 1, 'subject')} missing: expected a 'subject' column after 'answer'")
        sub, body, first = header.index("subject"), rows[1:], 2
    else:  # official: <subject>_test.csv without a header
        sub, body, first = None, rows, 1
    counts: dict[str, int] = {}
    items = []
    for line, row in enumerate(body, start=first):
        if len(row) < 6 or (sub is not None and len(row) <= sub):
            raise UserError(f"{where(path, line)} expected question, 4 options and the answer, got {len(row)} columns")
        subject = row[sub] if sub is not None else path.stem.removesuffix("_test")
        # ids: <subject>-<index within the subject>, as the official files number their rows
        uid = f"{subject}-{counts.get(subject, 0)}"
        counts[subject] = counts.get(subject, 0) + 1
        items.append(_item(uid, row[0], row[1:5], _letter(row[5], where(path, line, "answer")), subject,
                           where(path, line)))
    return items


def _mmlu_row(row: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    question = field(row, "question", Path(str(path)), line, fmt=MMLU_FORMAT)
    choices = field(row, "choices", Path(str(path)), line, list, MMLU_FORMAT)
    subject = str(row.get("subject") or "all")
    return _item(f"{subject}-{index}", question, list(choices), _letter(row.get("answer"), where(path, line, "answer")),
                 subject, where(path, line))


def read_mmlu(path: Path) -> list[Item]:
    """One MMLU file, or every ``*_test.csv`` beside an official one (or inside a folder)."""
    if path.is_dir():
        files = sorted(path.glob("*_test.csv"))
        if not files:
            raise UserError(f"{path}: no <subject>_test.csv files: expected {MMLU_FORMAT}")
        return [it for f in files for it in _read_csv(f)]
    if path.suffix == ".csv":
        if path.stem.endswith("_test"):  # one official file: its siblings are the other subjects
            siblings = sorted(path.parent.glob("*_test.csv"))
            return [it for f in siblings for it in _read_csv(f)]
        return _read_csv(path)
    return _mmlu_rows(records(path, MMLU_FORMAT), path)


def _mmlu_rows(rows: list[tuple[int | None, dict]], path: Path | str) -> list[Item]:
    """Rows of the hub layout -> items numbered within their subject, as the official files are
    (so a run from the hub and one from local files share item ids)."""
    counts: dict[str, int] = {}
    items = []
    for line, row in rows:
        subject = str(row.get("subject") or "all") if isinstance(row, dict) else "all"
        items.append(_mmlu_row(row, counts.get(subject, 0), path, line))
        counts[subject] = counts.get(subject, 0) + 1
    return items


def _hub_mmlu(rows: list[dict]) -> list[Item]:
    return _mmlu_rows([(None, row) for row in rows], "hub")


def _pro_row(row: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    p = Path(str(path))
    question = field(row, "question", p, line, fmt=PRO_FORMAT)
    # The hub pads some rows' options with "N/A"; they are not options.
    options = [o for o in field(row, "options", p, line, list, PRO_FORMAT) if str(o).strip() != "N/A"]
    uid = str(row.get("question_id", index))
    return _item(f"mmlu_pro-{uid}", question, options, _letter(row.get("answer"), where(path, line, "answer")),
                 str(row.get("category") or "all"), where(path, line))


def read_pro(path: Path) -> list[Item]:
    return [_pro_row(row, i, path, line) for i, (line, row) in enumerate(records(path, PRO_FORMAT))]


MMLU = Task(
    name="mmlu", answer_type="choice", description="MMLU test (14,042 questions, 57 subjects, options A-D)",
    read=read_mmlu, files=("*.dev.csv", "mmlu*.csv", "data/test", "test", "*_test.csv", "*.parquet", "*.jsonl",
                           "*.json"),
    format=MMLU_FORMAT, hub=HubSource("cais/mmlu", "all", "test", to_items=_hub_mmlu), group_by="subject",
)
MMLU_PRO = Task(
    name="mmlu_pro", answer_type="choice", description="MMLU-Pro test (12,032 questions, 14 categories, options A-J)",
    read=read_pro, files=("*.parquet", "*.jsonl", "*.json"), format=PRO_FORMAT,
    hub=HubSource("TIGER-Lab/MMLU-Pro", None, "test", _pro_row), group_by="subject",
)
