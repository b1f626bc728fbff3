"""Plain files of a run: JSONL read/append/resume, atomic writes, YAML copies.

JSONL files are appended one complete line at a time and flushed, so a killed process leaves
at most one torn last line; ``read_jsonl(..., repair=True)`` detects and drops it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from genius.errors import UserError, describe_decode_error, where


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(record: Any) -> str:
    """One JSON line; NaN/inf become null so every line is valid JSON."""
    return json.dumps(_finite(record), ensure_ascii=False, default=_json_default)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def input_file(path: str | Path, expected: str = "a file") -> Path:
    """``path`` as an input file: a missing path or a folder is a UserError saying what was expected."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected {expected}")
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected {expected})")
    return path


def read_bytes(path: str | Path, expected: str = "a file") -> bytes:
    """The bytes of an input file; missing, a folder or unreadable: one line."""
    path = input_file(path, expected)
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def decode_text(data: bytes, path: str | Path) -> str:
    """UTF-8 bytes of ``path`` -> text; other bytes: a UserError with the line and byte offset."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(describe_decode_error(e, path, line=line)) from None


def read_text(path: str | Path, expected: str = "a UTF-8 text file") -> str:
    """The text of a UTF-8 input file (newlines as written); every failure is one line."""
    return decode_text(read_bytes(path, expected), path)


def iter_lines(path: str | Path, expected: str = "a UTF-8 text file") -> Iterator[tuple[int, str]]:
    """Stream (line number, text) of a UTF-8 file, newlines kept; bytes that are not UTF-8 are a
    UserError naming the line and the byte offset in the file."""
    for lineno, _, line, error in _lines(path, expected):
        if error:
            raise UserError(error)
        yield lineno, line


def _lines(path: str | Path, expected: str) -> Iterator[tuple[int, int, str, str | None]]:
    """(line number, byte offset, text, None) or (line number, byte offset, '', why it is not
    UTF-8) for each line."""
    path = input_file(path, expected)
    try:
        f = path.open("rb")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    with f:
        offset = 0
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, offset, raw.decode("utf-8"), None
            except UnicodeDecodeError as e:
                yield lineno, offset, "", describe_decode_error(e, path, offset=offset + e.start, line=lineno)
            offset += len(raw)


def iter_jsonl(path: str | Path, *, skip_invalid: bool = False,
               on_invalid: Callable[[], None] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record). A malformed line (not UTF-8, not JSON, not an object) raises
    UserError naming file and line, or with skip_invalid is skipped (``on_invalid`` is called for
    each, e.g. to count them)."""
    for lineno, _, record in iter_jsonl_offsets(path, skip_invalid=skip_invalid, on_invalid=on_invalid):
        yield lineno, record


def iter_jsonl_offsets(path: str | Path, *, skip_invalid: bool = False,
                       on_invalid: Callable[[], None] | None = None) -> Iterator[tuple[int, int, dict]]:
    """``iter_jsonl`` with the byte offset where each record's line starts, (line number, offset,
    record): a reader can index a large file and seek back to the lines it keeps."""
    path = Path(path)
    for lineno, offset, line, not_utf8 in _lines(path, "a JSONL file, one JSON object per line"):
        if not_utf8:
            if skip_invalid:
                if on_invalid:
                    on_invalid()
                continue
            raise UserError(not_utf8)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if skip_invalid:
                if on_invalid:
                    on_invalid()
                continue
            raise UserError(f"{where(path, lineno)} not valid JSON ({e.msg}); expected one JSON object per line") from None
        if not isinstance(record, dict):
            if skip_invalid:
                if on_invalid:
                    on_invalid()
                continue
            raise UserError(f"{where(path, lineno)} expected a JSON object, got {type(record).__name__}")
        yield lineno, offset, record


def count_lines(path: str | Path) -> int:
    """Non-blank lines of a file (the records of a JSONL file, valid or not); 0 when it is absent."""
    path = Path(path)
    if not path.exists():
        return 0
    path = input_file(path, "a JSONL file")
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def sha256_file(path: str | Path) -> str:
    """The sha256 (hex) of a file's bytes, read in chunks (a query file may be large)."""
    path = input_file(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    return digest.hexdigest()


def read_jsonl(path: str | Path, *, repair: bool = False) -> list[dict]:
    """Read all records. With repair=True a torn (unterminated, unparsable) last line, the
    trace of a killed writer, is cut off the file instead of raising."""
    path = Path(path)
    if repair and path.is_file():
        truncate_torn_tail(path)
    return [r for _, r in iter_jsonl(path)]


def truncate_torn_tail(path: Path) -> bool:
    """Drop a last line that lacks its newline and is not valid JSON. Returns True if cut."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    try:
        json.loads(tail)
        with path.open("ab") as f:  # complete record that only lacks its newline
            f.write(b"\n")
        return False
    except (json.JSONDecodeError, UnicodeDecodeError):
        with path.open("r+b") as f:
            f.truncate(cut)
        return True


class JsonlAppender:
    """Append records to a JSONL file, one flushed (and fsynced) line per record."""

    def __init__(self, path: str | Path, *, fsync: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            truncate_torn_tail(self.path)
        self._f = self.path.open("a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: Any) -> None:
        self.write_many([record])

    def write_many(self, records: Iterable[Any]) -> None:
        with _naming(self.path):
            for r in records:
                self._f.write(dumps(r) + "\n")
            self._f.flush()
            if self._fsync:
                os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Errors of writing bytes, which the kernel reports without the file's name.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Put ``path`` into a failed write's error (a full disk names no file) and into the error
    of creating a temporary file beside it (whose odd name says nothing to the user)."""
    try:
        yield
    except OSError as e:
        if (e.filename is None and e.errno in _WRITE_ERRNOS) or str(e.filename or "").endswith(".tmp"):
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """A file to write ``path`` through: readers see the old or the new content, never a part.
    The temporary file's name is unique, so two processes writing one path never share it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _naming(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            with _naming(path):
                yield f
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, never a part."""
    with atomic_writer(path) as f:
        f.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, ensure_ascii=False, default=_json_default) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file; missing, a folder, not UTF-8 or not JSON: one line naming the file."""
    path = Path(path)
    text = read_text(path, "a JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{where(path, e.lineno)} not valid JSON ({e.msg})") from None


def write_yaml(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_yaml(path: str | Path) -> Any:
    """A YAML file; missing, a folder, not UTF-8 or not YAML: one line naming the file (and line)."""
    path = Path(path)
    text = read_text(path, "a YAML config")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise UserError(f"{where(path, line)} not valid YAML ({getattr(e, 'problem', e)})") from None
