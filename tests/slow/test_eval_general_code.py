"""The embedded model end to end on the general-domain and code tasks (paper Tables 2 and 6):
4 items of MMLU, MBPP, HumanEval, Arena-Hard and AlpacaEval from ../shared/data/bench, and (no
slice of theirs is there) the 4 LiveCodeBench problems of tests/conftest.py and 2 WildBench tasks
written here; the code run in the sandbox, the judged tasks judged by the embedded model itself
through the local judge; a rerun asks nothing again. Short budgets keep it to a few minutes on
2 CPU cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius.cli import main
from genius.io import read_jsonl

pytestmark = pytest.mark.slow
TASKS = ("mmlu", "mbpp", "humaneval", "arena_hard", "alpaca_eval")


def test_embedded_model_on_mmlu_code_and_judged_tasks(embedded_model_dir: Path, shared_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    argv = ["eval", "--model", "smollm2-135m", "--tasks", ",".join(TASKS), "--limit", "4", "--data-dir",
            str(shared_data / "bench"), "--allow-code-execution", "--judge-local", "smollm2-135m",
            "--max-new-tokens", "48", "--judge-max-tokens", "24", "--dtype", "fp32", "--device", "cpu", "--out",
            str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    metrics = {t: json.loads((out / t / "metrics.json").read_text()) for t in TASKS}
    for task in TASKS:
        assert metrics[task]["n"] == 4 and len(read_jsonl(out / task / "samples.jsonl")) == 4
        assert f"| {task} | 4 |" in printed
    assert metrics["mmlu"]["groups"]["by"] == "subject" and metrics["mmlu"]["groups"]["n_groups"] == 1
    for task in ("mbpp", "humaneval"):
        m = metrics[task]
        assert m["metric"] == "pass@1" and m["pass@1"] == m["accuracy"] and m["isolation"]
        assert 0 <= m["n_correct"] <= 4
    for task in ("arena_hard", "alpaca_eval"):
        m = metrics[task]
        assert m["judge"] == "local=smollm2-135m" and m["n_judge_failed"] == 0
        assert m["n_judged"] + m["n_no_verdict"] == 4
        records = read_jsonl(out / task / "samples.jsonl")
        assert all("judge" in r for r in records) and (out / task / "judge_cache.jsonl").is_file()
        assert all(r["correct"] == (r["score"] > 0.5) for r in records if r["score"] is not None)
    assert "win rate against the reference answers (arena_hard, alpaca_eval)" in (out / "results.md").read_text()

    # A rerun finds every item answered and judged: nothing generated, nothing judged again.
    before = {t: (out / t / "samples.jsonl").read_text() for t in TASKS}
    cache = (out / "arena_hard" / "judge_cache.jsonl").read_text()
    assert main(argv) == 0
    assert {t: (out / t / "samples.jsonl").read_text() for t in TASKS} == before
    assert (out / "arena_hard" / "judge_cache.jsonl").read_text() == cache


def test_embedded_model_on_livecodebench(embedded_model_dir: Path, livecodebench_data: Path, tmp_path: Path) -> None:
    """LiveCodeBench has no slice in ../shared/data: four problems written in the hub's layout
    (tests/conftest.py), two stdin and two functional, the private tests packed as the hub packs
    them. The model's programs run through the harness in the sandbox; a rerun asks nothing again."""
    out = tmp_path / "lcb"
    argv = ["eval", "--model", "smollm2-135m", "--tasks", "livecodebench", "--data-dir", str(livecodebench_data),
            "--allow-code-execution", "--max-new-tokens", "96", "--dtype", "fp32", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    m = json.loads((out / "livecodebench" / "metrics.json").read_text())
    assert (m["n"], m["metric"], m["groups"]["by"]) == (4, "pass@1", "difficulty") and 0 <= m["n_correct"] <= 4
    records = read_jsonl(out / "livecodebench" / "samples.jsonl")
    assert [r["id"] for r in records] == ["abc001_a", "2824", "abc002_b", "2900"]
    assert all(r["meta"]["tests_at"][0].endswith(".jsonl") for r in records)
    before = (out / "livecodebench" / "samples.jsonl").read_text()
    assert main(argv) == 0
    assert (out / "livecodebench" / "samples.jsonl").read_text() == before


def test_embedded_model_on_wildbench_judging_itself(embedded_model_dir: Path, tmp_path: Path) -> None:
    """WildBench has no slice in ../shared/data either: two tasks in its v2 row layout, one a
    conversation (the model answers its last turn after the earlier ones), judged by the
    embedded model itself: scored 1-10 against their checklists (WB-Score) and against a
    reference's answers in both orders (WB-Reward); a rerun judges nothing again."""
    folder = tmp_path / "data" / "wildbench"
    folder.mkdir(parents=True)
    rows = [{"session_id": "w1", "conversation_input": [{"role": "user", "content": "Name three primary colours."}],
             "checklist": ["Names three colours?"], "primary_tag": "Information seeking", "secondary_tags": []},
            {"session_id": "w2", "conversation_input": [
                {"role": "user", "content": "Write one line about the sea."},
                {"role": "assistant", "content": "The sea is wide and blue."},
                {"role": "user", "content": "Now one about the sky."}],
             "checklist": ["About the sky?", "One line?"], "primary_tag": "Creative Writing", "secondary_tags": []}]
    (folder / "wildbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "claude-3-haiku-20240307").mkdir()
    (folder / "claude-3-haiku-20240307" / "answers.jsonl").write_text(
        json.dumps({"session_id": "w1", "output": ["Red, yellow and blue."]}) + "\n"
        + json.dumps({"session_id": "w2", "output": ["The sky is a quiet blue."]}) + "\n")
    out = tmp_path / "wb"
    argv = ["eval", "--model", "smollm2-135m", "--tasks", "wildbench,wildbench_reward", "--data-dir",
            str(folder.parent),
            "--judge-local", "smollm2-135m", "--max-new-tokens", "48", "--judge-max-tokens", "64", "--dtype", "fp32",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    m = json.loads((out / "wildbench" / "metrics.json").read_text())
    assert (m["n"], m["metric"], m["judge"], m["n_judge_failed"]) == (2, "wb_score", "local=smollm2-135m", 0)
    assert m["n_judged"] + m["n_no_verdict"] == 2
    records = read_jsonl(out / "wildbench" / "samples.jsonl")
    assert all("judgement" in r["judge"] for r in records)
    assert all(r["score"] is None or -0.8 <= r["score"] <= 1.0 for r in records)
    reward = json.loads((out / "wildbench_reward" / "metrics.json").read_text())
    assert (reward["metric"], reward["n"], reward["n_judge_failed"]) == ("wb_reward", 2, 0)
    games = [g for r in read_jsonl(out / "wildbench_reward" / "samples.jsonl") for g in r["judge"]["games"]]
    assert [g["model_is_a"] for g in games] == [True, False, True, False]  # both orders of each pair
    before = {t: (out / t / "samples.jsonl").read_text() for t in ("wildbench", "wildbench_reward")}
    assert main(argv) == 0
    assert {t: (out / t / "samples.jsonl").read_text() for t in ("wildbench", "wildbench_reward")} == before
