"""genius sample / pairs / merge end to end on the tiny random model, including a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genius.cli import main
from genius.schema import check_pair

# Budgets this short cut most responses: their pairs are kept (trained without EOS) to have some.
SMALL = ["--beams", "1", "--candidates", "2", "--steps", "2", "--max-step-tokens", "4",
         "--max-rollout-tokens", "6", "--unfinished", "keep", "--no-progress", "--dtype", "fp32", "--device", "cpu"]


def write_queries(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"instruction": f"Add {i} and {i + 1}.", "input": ""}) + "\n" for i in range(n)))
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sample_then_rebuild_pairs(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    queries = write_queries(tmp_path / "q.jsonl", 3)
    out = tmp_path / "run"
    assert main(["sample", str(queries), "--out", str(out), "--model", str(tiny_model_dir), *SMALL]) == 0
    assert "genius sample: 3 queries" in capsys.readouterr().out
    trees = lines(out / "trees.jsonl")
    assert sorted(t["query_id"] for t in trees) == ["q-1", "q-2", "q-3"]
    for t in trees:
        assert 1 <= len(t["steps"]) <= 2 and t["messages"] == [{"role": "user", "content": t["messages"][0]["content"]}]
        for step in t["steps"]:
            assert len(step["candidates"]) == 2
            assert all(c["step_tokens"] >= 1 and c["score"] is not None for c in step["candidates"])
    pairs = lines(out / "pairs.jsonl")
    assert len(pairs) == sum(len(t["steps"]) for t in trees) - sum(
        1 for t in trees for s in t["steps"] if len({c["step"] + c["rollout"] for c in s["candidates"]}) == 1)
    for i, p in enumerate(pairs, start=1):
        check_pair(p, out / "pairs.jsonl", i, need_advantages=True)
        assert p["chosen"].startswith("The reasoning steps are:\n\n") and p["f_w"] >= p["f_l"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["queries"] == 3 and stats["pairs"] == len(pairs) and stats["generated_tokens"] > 0
    assert "beams: 1" in (out / "sample_config.yaml").read_text()

    rebuilt = tmp_path / "pairs.lowest.jsonl"
    assert main(["pairs", str(out / "trees.jsonl"), "--out", str(rebuilt), "--negatives", "lowest"]) == 0
    assert "negatives lowest" in capsys.readouterr().out
    assert [(p["query_id"], p["step"], p["chosen"]) for p in lines(rebuilt)] == [
        (p["query_id"], p["step"], p["chosen"]) for p in pairs]  # same chosen; 2 candidates: same rejected too


def test_bad_input_and_settings_exit_2(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"prompt": \n{"prompt": "also fine"}\n')
    argv = ["sample", str(bad), "--out", str(tmp_path / "r"), "--model", str(tiny_model_dir), *SMALL]
    assert main(argv) == 2
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err
    assert main([*argv, "--tau", "-1"]) == 2
    assert "tau must be > 0" in capsys.readouterr().err
    assert main([*argv, "--skip-invalid", "--steps", "1"]) == 0
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert stats["queries"] == 2 and stats["input"]["invalid"] == 1


def test_sigkill_then_resume(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Kill the process once the first query has landed, tear the last line, rerun: every query
    id exactly once. One query at a time (--batch-sequences 2) so that queries land one by one."""
    queries = write_queries(tmp_path / "q.jsonl", 4)
    out = tmp_path / "run"
    argv = ["sample", str(queries), "--out", str(out), "--model", str(tiny_model_dir), *SMALL,
            "--batch-sequences", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "genius.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    trees = out / "trees.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if trees.is_file() and trees.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = trees.read_text().count("\n")
    assert done_before >= 1
    with trees.open("a") as f:
        f.write('{"query_id": "q-4", "index": 3, "steps": [{"k"')  # a torn line
    assert main(argv) == 0
    ids = [t["query_id"] for t in lines(trees)]
    assert sorted(ids) == ["q-1", "q-2", "q-3", "q-4"]
    assert {p["query_id"] for p in lines(out / "pairs.jsonl")} <= set(ids)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["queries_resumed"] == min(done_before, 4) and stats["queries"] == 4


def test_two_shards_by_flag_then_merge(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    queries = write_queries(tmp_path / "q.jsonl", 3)
    out = tmp_path / "run"
    base = ["sample", str(queries), "--out", str(out), "--model", str(tiny_model_dir), *SMALL, "--steps", "1"]
    assert main([*base, "--shard", "0/2"]) == 0
    assert main(["merge", str(out)]) == 2
    assert "shard(s) 1 of 2 not finished" in capsys.readouterr().err
    assert main([*base, "--shard", "1/2"]) == 0
    assert [t["query_id"] for t in lines(out / "trees.jsonl")] == ["q-1", "q-2", "q-3"]
    assert main(["merge", str(out)]) == 0
    assert "2/2 shards -> 3 queries" in capsys.readouterr().out


@pytest.mark.slow
def test_embedded_model_samples_real_queries(tmp_path: Path, embedded_model_dir: Path, shared_data: Path) -> None:
    """SmolLM2-135M on 2 alpaca queries, one capped step: valid trees and pairs with real text."""
    out = tmp_path / "run"
    argv = ["sample", str(shared_data / "queries" / "alpaca_cleaned.queries.jsonl"), "--limit", "2", "--out", str(out),
            "--model", str(embedded_model_dir), "--steps", "1", "--candidates", "2", "--max-step-tokens", "10", "--max-rollout-tokens", "10",
            "--unfinished", "keep", "--no-progress", "--dtype", "fp32", "--device", "cpu"]
    assert main(argv) == 0
    trees = lines(out / "trees.jsonl")
    assert [t["query_id"] for t in sorted(trees, key=lambda t: t["index"])] == ["alpaca_cleaned.queries-1",
                                                                                   "alpaca_cleaned.queries-2"]
    assert all(len(t["steps"][0]["candidates"]) == 4 for t in trees)
    pairs = lines(out / "pairs.jsonl")
    assert len(pairs) == 2 and all(p["chosen"] != p["rejected"] for p in pairs)
    assert all(-20 < p["f_l"] <= p["f_w"] < 0 for p in pairs)
