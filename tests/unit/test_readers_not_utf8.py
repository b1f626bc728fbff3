"""Every reader of a text input (queries as JSON/CSV, the GPQA, LogiQA and MMLU files) reads it
through genius.io: bytes that are not UTF-8 are one UserError naming the file and the byte offset
of the first bad byte (issue 17), never a UnicodeDecodeError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from genius.errors import UserError
from genius.evaluation.tasks import get_task
from genius.queries import load_queries

BAD = "caf\xe9".encode("latin-1")  # é in latin-1: 0xe9, not UTF-8

GPQA_HEADER = b"Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,Record ID\n"
LOGIQA_BLOCK = b"\nc\nSome context.\nWhich follows?\nA. one\nB. two\nC. three\nD. four\n"

# name -> (file name, its bytes with a bad byte, how to read it)
READERS: dict[str, tuple[str, bytes, Callable[[Path], object]]] = {
    "queries-json": ("q.json", b'[{"instruction": "' + BAD + b'"}]', lambda p: load_queries(p)),
    "queries-csv": ("q.csv", b"instruction\nfine\n" + BAD + b"\n", lambda p: load_queries(p)),
    "gpqa": ("gpqa_diamond.csv", GPQA_HEADER + b"Q?," + BAD + b",b,c,d,r1\n",
             lambda p: get_task("gpqa_diamond").load(p.parent)),
    "logiqa": ("Test.txt", LOGIQA_BLOCK.replace(b"one", BAD), lambda p: get_task("logiqa").load(p.parent)),
    "mmlu": ("anatomy_test.csv", b"Q?,a,b,c,d,A\n" + BAD + b"?,a,b,c,d,B\n", lambda p: get_task("mmlu").load(p)),
}


@pytest.mark.parametrize("name", list(READERS))
def test_bytes_that_are_not_utf8_name_the_file_and_the_byte_offset(name: str, tmp_path: Path) -> None:
    file_name, data, read = READERS[name]
    path = tmp_path / file_name
    path.write_bytes(data)
    with pytest.raises(UserError) as e:
        read(path)
    offset = data.index(b"\xe9")
    line = data.count(b"\n", 0, offset) + 1
    assert str(e.value) == (f"{path}:{line}: not UTF-8 text (byte 0xe9 at byte offset {offset}: invalid continuation "
                            "byte); save it as UTF-8")


@pytest.mark.parametrize("name", list(READERS))
def test_the_same_files_in_utf8_read(name: str, tmp_path: Path) -> None:
    file_name, data, read = READERS[name]
    path = tmp_path / file_name
    path.write_bytes(data.replace(b"\xe9", "é".encode()))
    assert read(path)  # the check above fails on the bytes, not on the format
