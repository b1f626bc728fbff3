"""`genius sample` on the tiny random model with a query longer than the model's context: skipped,
counted and warned about, never stored as an empty tree, and skipped again by a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius.cli import main

SMALL = ["--beams", "1", "--candidates", "2", "--steps", "1", "--max-step-tokens", "4",
         "--max-rollout-tokens", "4", "--unfinished", "keep", "--no-progress", "--dtype", "fp32", "--device", "cpu"]


def test_an_over_long_query_is_skipped_and_counted(tmp_path: Path, tiny_model_dir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    queries = tmp_path / "q.jsonl"
    texts = ["Add 1 and 2.", "Repeat this: " + "word " * 220, "Add 3 and 4."]  # the tiny context: 1024 tokens
    queries.write_text("".join(json.dumps({"id": f"q{i}", "instruction": t}) + "\n" for i, t in enumerate(texts)))
    argv = ["sample", str(queries), "--out", str(tmp_path / "run"), "--model", str(tiny_model_dir), *SMALL]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "genius sample: warning: 1 queries skipped" in err and "(q1;" in err
    assert "1 too long for the context" in out
    trees = [json.loads(line) for line in (tmp_path / "run" / "trees.jsonl").read_text().splitlines()]
    assert [t["query_id"] for t in trees] == ["q0", "q2"] and all(t["steps"] for t in trees)
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["queries_too_long"] == 1 and stats["queries_too_long_ids"] == ["q1"] and stats["queries"] == 2

    assert main(argv) == 0  # the rerun: nothing left to sample, the long one skipped and counted again
    assert "warning: 1 queries skipped" in capsys.readouterr().err
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["queries_too_long"] == 1 and stats["queries_this_run"] == 0 and stats["queries_resumed"] == 2
