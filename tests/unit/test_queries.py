"""Query loading: formats, fields, ids, order, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius.errors import UserError
from genius.queries import load_queries


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_instruction_with_input_and_ids(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "alpaca.jsonl", [
        {"instruction": "Add the numbers.", "input": "2, 3"},
        {"instruction": "Name a color.", "input": ""},
        {"id": 77, "prompt": "Why is the sky blue?"},
    ])
    qs = load_queries(f, system="Think step by step.")
    assert [q.id for q in qs] == ["alpaca-1", "alpaca-2", "77"]
    assert qs.queries[0].text == "Add the numbers.\n\n2, 3"
    assert qs.queries[1].text == "Name a color."
    assert qs.queries[2].messages == [{"role": "system", "content": "Think step by step."},
                                      {"role": "user", "content": "Why is the sky blue?"}]
    assert [q.index for q in qs] == [0, 1, 2] and qs.counts["loaded"] == 3


def test_json_list_and_csv(tmp_path: Path) -> None:
    j = tmp_path / "set.json"
    j.write_text(json.dumps({"data": [{"question": "Q1?"}, {"question": "Q2?"}]}))
    assert [(q.id, q.text) for q in load_queries(j)] == [("set-1", "Q1?"), ("set-2", "Q2?")]
    c = tmp_path / "set.csv"
    c.write_text('question,answer\n"Is 7 prime?",yes\n"Multi\nline?",no\n')
    # ids use the CSV line the record ends on (header = line 1; the second record spans lines 3-4)
    assert [(q.id, q.text) for q in load_queries(c)] == [("set-2", "Is 7 prime?"), ("set-4", "Multi\nline?")]


def test_ambiguous_fields_need_field_flag(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "q.jsonl", [{"instruction": "A", "question": "B"}])
    with pytest.raises(UserError, match=r"q.jsonl:1: ambiguous: the record has instruction and question; choose one with --field"):
        load_queries(f)
    assert load_queries(f, field="question").queries[0].text == "B"
    with pytest.raises(UserError, match="field 'prompt' missing"):
        load_queries(f, field="prompt")


def test_empty_and_overlong_queries_are_counted(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "q.jsonl", [{"prompt": "  \n"}, {"prompt": "x" * 50}, {"prompt": "short"},
                                            {"instruction": "", "input": "only input"}])
    qs = load_queries(f, max_chars=10)
    assert [q.text for q in qs] == ["short"]
    assert qs.counts["empty"] == 2 and qs.counts["overlong_skipped"] == 1
    qs = load_queries(f, max_chars=10, overlong="truncate")
    assert [q.text for q in qs] == ["x" * 10, "short"] and qs.counts["truncated"] == 1


def test_malformed_line_names_file_and_line_or_is_skipped(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "q.jsonl", [{"prompt": "ok"}, '{"prompt": "torn', "[1, 2]", {"prompt": 5}, {"prompt": "fine"}])
    with pytest.raises(UserError) as e:
        load_queries(f)
    assert str(e.value).startswith(f"{f}:2: not valid JSON")
    qs = load_queries(f, skip_invalid=True)
    assert [q.text for q in qs] == ["ok", "fine"] and qs.counts["invalid"] == 3


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "prompt": "1"}, {"id": "a", "prompt": "2"}])
    with pytest.raises(UserError, match=r"q.jsonl:2: duplicate query id 'a' \(first seen at .*q.jsonl:1\)"):
        load_queries(f)


def test_shuffle_then_limit_is_seeded(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "q.jsonl", [{"prompt": f"p{i}"} for i in range(20)])
    a = [q.id for q in load_queries(f, shuffle=True, seed=3, limit=5)]
    assert a == [q.id for q in load_queries(f, shuffle=True, seed=3, limit=5)]
    assert a != [q.id for q in load_queries(f, shuffle=True, seed=4, limit=5)]
    assert a != [f"q-{i}" for i in range(1, 6)] and len(set(a)) == 5
    assert [q.id for q in load_queries(f, limit=2)] == ["q-1", "q-2"]


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="file not found"):
        load_queries(tmp_path / "nope.jsonl")
    (tmp_path / "q.txt").write_text("hello\n")
    with pytest.raises(UserError, match="unknown query file type '.txt'"):
        load_queries(tmp_path / "q.txt")


def test_shared_query_files_load(shared_data: Path) -> None:
    for name in ("alpaca_cleaned.queries.jsonl", "gpteacher_codegen.queries.jsonl", "magpie_schema_example.jsonl"):
        qs = load_queries(shared_data / "queries" / name, limit=50)
        assert len(qs) > 0 and all(q.text.strip() for q in qs)
    magpie = load_queries(shared_data / "queries" / "magpie_schema_example.jsonl")
    assert magpie.queries[0].id == "8cabba98-e7fa-52f7-a778-ab847f36f123"  # the record's uuid


def test_hub_id_offline_is_one_clear_error() -> None:
    """conftest sets HF_HUB_OFFLINE=1: a hub id fails at once, naming the way out."""
    with pytest.raises(UserError, match="hub is unreachable .*pass a .jsonl/.json/.csv file"):
        load_queries("xufangzhi/Magpie_reasoning_150K_train")
