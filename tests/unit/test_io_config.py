"""JSONL resume helpers, atomic writes, typed configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from genius import config
from genius.errors import UserError
from genius.io import JsonlAppender, iter_jsonl, read_jsonl, read_yaml, write_json


def test_torn_last_line_is_dropped(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "tex')
    assert [r["id"] for r in read_jsonl(p, repair=True)] == [1, 2]
    assert p.read_text() == '{"id": 1}\n{"id": 2}\n'


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": 1}\n{"id": 2}')
    with JsonlAppender(p) as out:
        out.write({"id": 3})
    assert [r["id"] for r in read_jsonl(p)] == [1, 2, 3]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "q.jsonl"
    p.write_text('{"a": 1}\n\nnot json\n')
    with pytest.raises(UserError, match=r"q.jsonl:3: not valid JSON"):
        list(iter_jsonl(p))
    assert [n for n, _ in iter_jsonl(p, skip_invalid=True)] == [1]


def test_non_finite_numbers_become_null(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    write_json(p, {"a": float("nan"), "b": [1.0, float("inf")]})
    assert p.read_text().split() == ["{", '"a":', "null,", '"b":', "[", "1.0,", "null", "]", "}"]


@dataclass
class Inner:
    lr: float = 1e-3
    """Learning rate."""


@dataclass
class Outer:
    name: str = "x"
    steps: int = 3
    mode: Literal["a", "b"] = "a"
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    path: Path | None = None


def test_from_dict_builds_nested_and_coerces() -> None:
    cfg = config.from_dict(Outer, {"steps": 5, "inner": {"lr": 1}, "path": "a/b", "tags": ["t"]})
    assert cfg.steps == 5 and cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.path == Path("a/b") and cfg.tags == ["t"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"stepz": 1}, "unknown key 'stepz'"),
        ({"inner": {"lrr": 1}}, "unknown key 'inner.lrr'"),
        ({"steps": "5"}, "key 'steps': expected int"),
        ({"steps": True}, "key 'steps': expected int"),
        ({"mode": "c"}, "key 'mode': expected one of 'a', 'b'"),
        ({"inner": {"lr": "fast"}}, "key 'inner.lr': expected float"),
    ],
)
def test_from_dict_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        config.from_dict(Outer, data, source="run.yaml")


def test_yaml_round_trip_and_bad_yaml(tmp_path: Path) -> None:
    cfg = Outer(steps=7, path=Path("p"))
    config.save(cfg, tmp_path / "c.yaml")
    assert config.load(Outer, tmp_path / "c.yaml") == cfg
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(UserError, match="bad.yaml:.*not valid YAML"):
        read_yaml(tmp_path / "bad.yaml")


def test_diff_lists_changed_keys() -> None:
    assert config.diff({"a": 1, "b": 2, "seed": 0}, {"a": 1, "b": 3, "seed": 1}, ignore=("seed",)) == ["b"]
