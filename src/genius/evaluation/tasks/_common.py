"""Helpers shared by the task readers: checked field access and multiple-choice layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from genius.errors import UserError, where
from genius.io import iter_jsonl, read_json

LETTERS = "ABCDEFGHIJ"


def field(record: dict, key: str, path: Path, line: int | None, kind: type | tuple[type, ...] = str,
          fmt: str = "") -> Any:
    """``record[key]`` checked for presence and type; else one line naming file, line and field."""
    if not isinstance(record, dict):
        raise UserError(f"{where(path, line)} expected a JSON object{f' ({fmt})' if fmt else ''}")
    if key not in record:
        raise UserError(f"{where(path, line, key)} missing{f' (expected {fmt})' if fmt else ''}")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise UserError(f"{where(path, line, key)} expected {names}, got {type(value).__name__}")
    return value


def jsonl(path: Path) -> list[tuple[int, dict]]:
    return list(iter_jsonl(path))


def json_document(path: Path, fmt: str) -> Any:
    if path.suffix == ".jsonl":
        raise UserError(f"{path}: expected {fmt}, got a .jsonl file")
    return read_json(path)


def choice_text(stem: str, options: Sequence[str], labels: Sequence[str], context: str = "") -> str:
    """A multiple-choice problem as the model sees it: context, question, one option per line."""
    lines = [context.strip(), stem.strip()] if context.strip() else [stem.strip()]
    body = "\n\n".join(lines)
    opts = "\n".join(f"{label}. {text.strip()}" for label, text in zip(labels, options))
    return f"{body}\n\n{opts}"


def records(path: Path, fmt: str) -> list[tuple[int | None, dict]]:
    """(line number or None, row) of a parquet, JSONL or JSON-list file; ``fmt`` names the
    expected format in the error of a JSON file that is not a list."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(None, row) for row in pq.read_table(path).to_pylist()]
    if path.suffix == ".jsonl":
        return list(iter_jsonl(path))
    data = read_json(path)
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of rows ({fmt})")
    return [(None, row) for row in data]
