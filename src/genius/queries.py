"""Unlabeled queries from JSONL / JSON / CSV files or a hub dataset, as chat messages.

A record's text comes from ``instruction`` (with ``input`` appended after a blank line when it is
non-empty), ``prompt`` or ``question``; ``field=`` picks one when a record holds several. Every
query gets a stable id: the record's ``id`` (or ``uuid``) field, else ``<file stem>-<line>``
(JSONL line, JSON item or CSV line number), so resumed and sharded runs agree on who is who.

A query also carries the corpus' own response (the record's ``output`` or ``response``) when
it is read for a supervised baseline (SFT, SPIN: ``genius.baselines.common.load_baseline_queries``).

Empty or whitespace-only queries are skipped and counted; queries longer than ``max_chars`` are
skipped or truncated (``overlong=``) and counted; malformed records raise a UserError naming the
file and line, or are skipped and counted with ``skip_invalid=True``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genius.errors import UserError, where
from genius.io import iter_jsonl, read_text

TEXT_FIELDS = ("instruction", "prompt", "question")
ID_FIELDS = ("id", "uuid")
RESPONSE_FIELDS = ("output", "response")
Overlong = Literal["skip", "truncate"]


@dataclass(frozen=True)
class Query:
    id: str
    """Stable id: the record's id/uuid field, else ``<file stem>-<line>``."""
    messages: list[dict[str, str]]
    """Chat messages for the prompt: an optional system turn, then the user turn."""
    index: int
    """Position in the loaded list (after shuffle and limit): the order outputs are merged in."""
    response: str | None = None
    """The corpus' own response, for the supervised baselines (SFT, SPIN); None elsewhere."""

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]


@dataclass
class QuerySet:
    queries: list[Query]
    source: str
    counts: Counter = field(default_factory=Counter)
    """read, loaded, empty, overlong_skipped, truncated, invalid (skipped with skip_invalid)."""

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self) -> Iterator[Query]:
        return iter(self.queries)


def load_queries(source: str | Path, *, field: str | None = None, limit: int | None = None,
                 shuffle: bool = False, seed: int = 0, skip_invalid: bool = False,
                 max_chars: int | None = None, overlong: Overlong = "skip", system: str | None = None,
                 split: str = "train") -> QuerySet:
    """Load queries from a file (.jsonl, .json, .csv) or a hub dataset id (online only).

    Order: file order, then ``shuffle`` (random.Random(seed)), then the first ``limit``.
    """
    if field is not None and not field.strip():
        raise UserError("--field must name a column such as instruction, prompt or question")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    if overlong not in ("skip", "truncate"):
        raise UserError(f"overlong must be skip or truncate, got {overlong!r}")
    if max_chars is not None and max_chars < 1:
        raise UserError(f"max query length must be >= 1 character, got {max_chars}")
    counts: Counter = Counter()
    queries: list[Query] = []
    seen: dict[str, str] = {}
    for loc, default_id, record in _records(source, split, skip_invalid, counts):
        counts["read"] += 1
        try:
            text = record_text(record, loc, field)
            qid = record_id(record, default_id, loc)
            if qid in seen:
                raise UserError(f"{loc} duplicate query id '{qid}' (first seen at {seen[qid]}); ids must be unique")
        except UserError:
            if not skip_invalid:
                raise
            counts["invalid"] += 1
            continue
        if not text.strip():
            counts["empty"] += 1
            continue
        if max_chars is not None and len(text) > max_chars:
            if overlong == "skip":
                counts["overlong_skipped"] += 1
                continue
            text = text[:max_chars]
            counts["truncated"] += 1
        seen[qid] = loc.rstrip(":")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        queries.append(Query(id=qid, messages=messages, index=-1))
    if shuffle:
        random.Random(seed).shuffle(queries)
    if limit is not None:
        queries = queries[:limit]
    queries = [dataclasses.replace(q, index=i) for i, q in enumerate(queries)]
    counts["loaded"] = len(queries)
    return QuerySet(queries=queries, source=str(source), counts=counts)


def record_text(record: dict, loc: str, field: str | None = None) -> str:
    """The query text of one record (``loc`` names file and line in errors)."""
    if field is not None:
        if field not in record:
            raise UserError(f"{loc} field '{field}' missing (record keys: {', '.join(map(str, record)) or 'none'})")
        return _field_text(record, field, loc)
    present = [f for f in TEXT_FIELDS if f in record]
    if not present:
        raise UserError(f"{loc} no query field: expected one of {', '.join(TEXT_FIELDS)} "
                        f"(record keys: {', '.join(map(str, record)) or 'none'}); name it with --field")
    if len(present) > 1:
        raise UserError(f"{loc} ambiguous: the record has {' and '.join(present)}; choose one with --field")
    return _field_text(record, present[0], loc)


def _field_text(record: dict, name: str, loc: str) -> str:
    value = record[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"{loc} field '{name}': expected a string, got {type(value).__name__}")
    if name == "instruction":
        extra = record.get("input")
        if extra is not None and not isinstance(extra, str):
            raise UserError(f"{loc} field 'input': expected a string, got {type(extra).__name__}")
        if extra and extra.strip() and value.strip():
            return f"{value}\n\n{extra}"
    return value


def record_id(record: dict, default_id: str, loc: str) -> str:
    """The record's ``id`` (or ``uuid``) as a string, else ``default_id``."""
    for name in ID_FIELDS:
        value = record.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise UserError(f"{loc} field '{name}': expected a string or integer id, got {value!r}")
        return str(value)
    return default_id


def record_response(record: dict, loc: str) -> str | None:
    """The corpus response of a record (``output``, else ``response``), None when it has none."""
    for name in RESPONSE_FIELDS:
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UserError(f"{loc} field '{name}': expected a string, got {type(value).__name__}")
        return value
    return None


def _records(source: str | Path, split: str, skip_invalid: bool,
             counts: Counter) -> Iterator[tuple[str, str, dict]]:
    """(location for errors, default id, record) for every record of the source."""
    path = Path(source).expanduser()
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            yield from _jsonl_records(path, skip_invalid, counts)
        elif suffix == ".json":
            yield from _json_records(path, skip_invalid, counts)
        elif suffix in (".csv", ".tsv"):
            yield from _csv_records(path, "\t" if suffix == ".tsv" else ",")
        else:
            raise UserError(f"{path}: unknown query file type '{suffix}': expected .jsonl, .json or .csv")
        return
    if path.exists():
        raise UserError(f"{path}: not a file (expected a .jsonl, .json or .csv file of queries)")
    text = str(source)
    from genius.models import hub_revision

    name = hub_revision(text)[0]  # a dataset may be pinned as org/name@revision
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1 and not Path(name).suffix:
        yield from _hub_records(text, split)
        return
    raise UserError(f"{source}: file not found (expected a .jsonl, .json or .csv file, or a hub dataset id org/name[@revision])")


def _jsonl_records(path: Path, skip_invalid: bool, counts: Counter) -> Iterator[tuple[str, str, dict]]:
    def count_invalid() -> None:
        counts["invalid"] += 1

    for lineno, record in iter_jsonl(path, skip_invalid=skip_invalid, on_invalid=count_invalid):
        yield where(path, lineno), f"{path.stem}-{lineno}", record


def _json_records(path: Path, skip_invalid: bool, counts: Counter) -> Iterator[tuple[str, str, dict]]:
    try:
        data: Any = json.loads(read_text(path, "a JSON list of query records"))
    except json.JSONDecodeError as e:
        raise UserError(f"{where(path, e.lineno)} not valid JSON ({e.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise UserError(f"{path}: expected a JSON list of records (or an object holding exactly one list)")
        data = lists[0]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for i, record in enumerate(data, start=1):
        loc = f"{path}: item {i}:"
        if not isinstance(record, dict):
            if skip_invalid:
                counts["invalid"] += 1
                continue
            raise UserError(f"{loc} expected a JSON object, got {type(record).__name__}")
        yield loc, f"{path.stem}-{i}", record


def _csv_records(path: Path, delimiter: str) -> Iterator[tuple[str, str, dict]]:
    # Decoded whole first: bytes that are not UTF-8 are one line with the byte offset.
    text = read_text(path, "a CSV file of queries with a header row")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise UserError(f"{where(path, 1)} expected a header row naming the columns")
    for row in reader:
        line = reader.line_num
        # Missing trailing cells come back as None, extra cells under the None key.
        record = {k: v for k, v in row.items() if k is not None}
        yield where(path, line), f"{path.stem}-{line}", record


def _hub_records(dataset_id: str, split: str) -> Iterator[tuple[str, str, dict]]:
    from genius.models import hub_reachable, hub_revision

    if not hub_reachable():
        raise UserError(f"'{dataset_id}' is not a local file and the Hugging Face hub is unreachable "
                        "(offline): download the dataset and pass a .jsonl/.json/.csv file")
    import datasets

    try:
        name, revision = hub_revision(dataset_id)
        ds = datasets.load_dataset(name, split=split, revision=revision)
    except Exception as e:  # the hub raises many types for a missing id/split; all mean "cannot load"
        raise UserError(f"cannot load hub dataset '{dataset_id}' split '{split}': {str(e).splitlines()[0]}") from None
    stem = dataset_id.split("/")[-1]
    for i, record in enumerate(ds, start=1):
        yield f"{dataset_id}: row {i}:", f"{stem}-{i}", dict(record)
