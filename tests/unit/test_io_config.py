"""JSONL resume helpers, atomic writes, typed configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from genius import config
from genius.errors import UserError
from genius.io import JsonlAppender, iter_jsonl, iter_lines, read_json, read_jsonl, read_text, read_yaml, write_json


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


@dataclass
class Resumable:
    seed: int = 0
    """Changes the results: a resume must keep it."""
    batch: int = config.may_change(8)
    """How fast it goes: a resume may change it."""
    folder: str = config.path_field("runs/x")
    """Where it goes, compared as a path."""


def test_check_resume_refuses_a_fixed_field_only(tmp_path: Path) -> None:
    saved = tmp_path / "copy.yaml"
    config.check_resume(saved, Resumable(seed=1))  # no copy yet: nothing to refuse
    config.save(Resumable(), saved)
    config.check_resume(saved, Resumable(batch=64))
    with pytest.raises(UserError, match=r"copy.yaml: this folder was started with other settings \(seed: 0 -> 3\)"
                                        r".*--force"):
        config.check_resume(saved, Resumable(seed=3, batch=64))
    config.check_resume(saved, Resumable(seed=3), force=True)
    assert config.changed_keys(config.to_dict(Resumable()), Resumable(seed=3, batch=1)) == ["seed"]
    assert config.fixed_keys(Resumable) == ["seed", "folder"]


def test_check_resume_compares_extra_values_and_paths_by_spelling(tmp_path: Path) -> None:
    saved = tmp_path / "copy.yaml"
    saved.write_text("seed: 0\nbatch: 8\nfolder: runs/x/\nmethod: star\n")  # a copy written before normalising
    config.check_resume(saved, Resumable(folder="./runs/x"), also={"method": "star"})
    with pytest.raises(UserError, match=r"method: 'star' -> 'scpo'"):
        config.check_resume(saved, Resumable(), also={"method": "scpo"})
    with pytest.raises(UserError, match=r"folder: 'runs/x/' -> 'runs/y'"):
        config.check_resume(saved, Resumable(folder="runs/y"), also={"method": "star"})
    assert config.from_dict(Resumable, {"folder": "runs/x/"}).folder == "runs/x"


def test_a_field_added_after_the_copy_was_written_counts_as_its_default(tmp_path: Path) -> None:
    saved = tmp_path / "copy.yaml"
    saved.write_text("batch: 8\nfolder: runs/x\n")  # written before `seed` existed: the run had seed 0
    config.check_resume(saved, Resumable())
    with pytest.raises(UserError, match=r"seed: None -> 4"):
        config.check_resume(saved, Resumable(seed=4))


def test_a_config_file_that_is_not_a_mapping_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- beta: 0.1\n- lr: 1\n")
    for call in (lambda: config.load(Outer, path), lambda: config.check_resume(path, Resumable())):
        with pytest.raises(UserError, match=r"list.yaml: expected a mapping of config keys at the top level, got a l"):
            call()
    (tmp_path / "empty.yaml").write_text("")
    assert config.load(Outer, tmp_path / "empty.yaml") == Outer()


def test_load_lays_sets_then_given_flags_over_the_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: from-yaml\nsteps: 4\ninner:\n  lr: 0.5\n")
    cfg = config.load(Outer, path, {"steps": 9, "name": None}, sets=config.parse_sets(["inner.lr=2", "steps=7"]))
    assert (cfg.name, cfg.steps, cfg.inner.lr) == ("from-yaml", 9, 2.0)


def test_parse_sets_nests_dotted_keys_and_reads_yaml_values() -> None:
    assert config.parse_sets(["beta=0.2", "lora.r=8", "lora.target_modules=[q_proj]", "trackers=[]", "name=a=b"]) == {
        "beta": 0.2, "lora": {"r": 8, "target_modules": ["q_proj"]}, "trackers": [], "name": "a=b"}
    for bad, message in [("beta", "expected KEY=VALUE"), ("lora..r=1", "expected KEY=VALUE"),
                         ("beta=[1,", "not valid YAML at character"), ]:
        with pytest.raises(UserError, match=message) as e:
            config.parse_sets([bad])
        assert len(str(e.value).splitlines()) == 1
    with pytest.raises(UserError, match="'lora' was already set to a value, not a section"):
        config.parse_sets(["lora=1", "lora.r=8"])


def test_nest_and_merge_lay_dotted_overrides_into_sections() -> None:
    data = {"queries": {"count": 64, "source": "synthetic"}, "seed": 0}
    given = {"queries": {"count": 8}}
    merged = config.merge_sets(data, config.nest({**given, "queries.kinds": ["order"], "seed": 2}))
    assert merged == {"queries": {"count": 8, "source": "synthetic", "kinds": ["order"]}, "seed": 2}
    assert given == {"queries": {"count": 8}} and data["queries"]["count"] == 64  # inputs untouched


@dataclass
class Documented:
    plain: int = 1
    """One sentence (e.g. this one) with "quoted. text" and a.b names. Then more."""
    bare: int = 2
    spread: str = "x"
    """A docstring over
    two lines."""


def test_field_docs_read_the_docstring_under_each_field() -> None:
    docs = config.field_docs(Documented)
    assert set(docs) == {"plain", "spread"}
    assert docs["spread"] == "A docstring over\ntwo lines."
    assert config.first_sentence(docs["plain"]) == 'One sentence (e.g. this one) with "quoted. text" and a.b names.'
    assert config.first_sentence(docs["spread"]) == "A docstring over two lines."
    assert config.field_docs(Inner) == {"lr": "Learning rate."}
    assert config.field_docs(Inherits) == {"lr": "Learning rate.", "spread": "Its own."}  # bases' docs too


@dataclass
class Inherits(Inner):
    spread: str = "y"
    """Its own."""


# --- readers on hostile input: one line naming the file (and the line, the byte offset) ---

def test_non_utf8_jsonl_names_file_line_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(UserError) as e:
        read_jsonl(path)
    # line 2 starts at byte 9; the bad byte is its 11th (offset 10 in the line)
    assert str(e.value) == (f"{path}:2: not UTF-8 text (byte 0xe9 at byte offset 19: invalid continuation byte); "
                            "save it as UTF-8")
    counted = []
    assert [r for _, r in iter_jsonl(path, skip_invalid=True, on_invalid=lambda: counted.append(1))] == [{"a": 1}]
    assert counted == [1]


@pytest.mark.parametrize("reader", [read_json, read_yaml, read_text])
def test_non_utf8_json_yaml_and_text_name_the_byte_offset(tmp_path: Path, reader) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b'{"a":\n "\xff"}\n')
    with pytest.raises(UserError, match=rf"^{path}:2: not UTF-8 text \(byte 0xff at byte offset 8: invalid start"):
        reader(path)


@pytest.mark.parametrize("reader", [read_json, read_yaml, read_text, read_jsonl])
def test_a_folder_where_a_file_belongs_is_one_line(tmp_path: Path, reader) -> None:
    with pytest.raises(UserError, match=rf"^{tmp_path}: is a folder, expected a"):
        reader(tmp_path)


def test_iter_lines_streams_utf8_and_stops_at_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("é\r\nb\n".encode() + b"\x80\n")
    lines = iter_lines(path)
    assert next(lines) == (1, "é\r\n") and next(lines) == (2, "b\n")
    with pytest.raises(UserError, match=r":3: not UTF-8 text \(byte 0x80 at byte offset 6"):
        next(lines)


def test_a_list_yaml_config_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(UserError, match="expected a mapping of config keys at the top level, got a list"):
        config.load(Outer, path)


def test_an_unknown_key_inside_an_optional_section_is_named() -> None:
    @dataclass
    class WithSection:
        inner: Inner | None = None

    with pytest.raises(UserError, match=r"unknown key 'inner\.zzz' \(known keys: lr\)"):
        config.from_dict(WithSection, {"inner": {"zzz": 1}})
    with pytest.raises(UserError, match=r"key 'inner\.lr': expected float, got 'x'"):
        config.from_dict(WithSection, {"inner": {"lr": "x"}})
    assert config.from_dict(WithSection, {"inner": {"lr": 2}}).inner == Inner(lr=2.0)
    with pytest.raises(UserError, match=r"key 'inner': expected Inner or NoneType, got 3"):
        config.from_dict(WithSection, {"inner": 3})
