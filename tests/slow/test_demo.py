"""The demo preset (`genius run` with no config) on the embedded model, at a reduced size."""

from __future__ import annotations

import pytest

from genius.cli import main
from genius.io import read_json, read_jsonl

pytestmark = pytest.mark.slow


def test_demo_preset_end_to_end_reduced(embedded_model_dir, tmp_path, capsys):
    run = tmp_path / "demo"
    sets = ["queries.count=4", "sample.steps=2", "sample.max_step_tokens=24", "sample.max_rollout_tokens=32",
            "sample.unfinished=keep", "train.epochs=1", "eval.limit=8", "eval.max_new_tokens=96"]
    argv = ["run", "--run-dir", str(run)] + [a for s in sets for a in ("--set", s)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # the results table is the last thing printed
    assert "| task | n | base acc % [95% CI] | trained acc % [95% CI] |" in out
    assert "| synthetic_arith1 | 8 |" in out
    assert "signal: chosen correct" in out  # the diagnostics' headline, from the answers kept aside
    stats = read_json(run / "round1" / "sample" / "stats.json")
    assert stats["queries"] == 4 and stats["pairs"] == len(read_jsonl(run / "round1" / "sample" / "pairs.jsonl")) > 0
    log = read_jsonl(run / "round1" / "train" / "train_log.jsonl")
    assert log and all(r["loss"] > 0 for r in log)
    for folder in (run / "eval" / "base", run / "round1" / "eval"):
        assert len(read_jsonl(folder / "synthetic_arith1" / "samples.jsonl")) == 8
    report = (run / "report.md").read_text()
    assert "## Training, round 1" in report and (run / "plots" / "training_round1.png").is_file()
