"""report.md, plots and the several-runs table, from small hand-written run folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from genius.evaluation.compare import paired_difference
from genius.io import write_json, write_yaml
from genius.report import (EvalPoint, advantage_bins, build_report, curves, eval_points, final_points, runs_table,
                           scaling_series)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _eval(folder: Path, task: str, correct: dict[str, bool]) -> None:
    k, n = sum(correct.values()), len(correct)
    write_json(folder / task / "metrics.json", {"task": task, "accuracy": k / n, "n": n, "ci95": [0.1, 0.9]})
    _write_jsonl(folder / task / "samples.jsonl", [{"id": i, "correct": c} for i, c in correct.items()])


def _make_run(run: Path, *, trained: dict[str, bool], loss: str = "aco", steps: bool = False) -> Path:
    write_yaml(run / "config.yaml", {"model": "tiny", "method": "genius", "train": {"loss": loss}})
    base = {"q1": True, "q2": False, "q3": False, "q4": False}
    _eval(run / "eval" / "base", "synthetic", base)
    _eval(run / "round1" / "eval", "synthetic", trained)
    if steps:
        _eval(run / "round1" / "eval-step2", "synthetic", {"q1": True, "q2": True, "q3": False, "q4": False})
    write_json(run / "round1" / "sample" / "stats.json", {"queries": 2, "pairs": 3, "generated_tokens": 1234,
                                                          "seconds": 5.0, "advantage_quantiles": {"q50": -0.5}})
    _write_jsonl(run / "round1" / "sample" / "pairs.jsonl",
                 [{"A_w": 0.5, "A_l": -1.0}, {"A_w": 0.0, "A_l": 1.0}, {"A_w": None, "A_l": 0.2}])
    _write_jsonl(run / "round1" / "train" / "train_log.jsonl",
                 [{"step": s, "loss": 0.7 - 0.1 * s, "reward_margin": 0.1 * s, "chosen_reward": 0.05 * s,
                   "rejected_reward": -0.05 * s, "accuracy": 0.5, "aco_w_mean": 0.9} for s in (1, 2, 3, 4)])
    write_json(run / "round1" / "train" / "DONE.json", {"stage": "round1-train", "seconds": 12.0, "finished_at": 2})
    write_json(run / "round1" / "sample" / "DONE.json", {"stage": "round1-sample", "seconds": 30.0, "finished_at": 1})
    return run


def test_paired_counts_and_exact_mcnemar():
    """Base right on q1 only; trained right on q1..q6 except nothing lost:
    discordant: base-only 0, trained-only 5 -> McNemar p = 2 * P(Bin(5, 1/2) <= 0) = 2/32 = 0.0625.
    diff = (6 - 1) / 8 = 0.625."""
    base = {f"q{i}": i == 1 for i in range(1, 9)}
    trained = {f"q{i}": i <= 6 for i in range(1, 9)}
    pr = paired_difference(base, trained)
    assert (pr.n, pr.only_a, pr.only_b) == (8, 0, 5)
    assert pr.diff == pytest.approx(0.625)
    assert pr.p_value == pytest.approx(0.0625)
    assert pr.low <= pr.diff <= pr.high


def test_paired_uses_only_items_both_evaluated():
    pr = paired_difference({"a": True, "b": False}, {"b": True, "c": True})
    assert (pr.n, pr.only_b, pr.only_a) == (1, 1, 0)


def test_advantage_bins_by_hand():
    """Values -1, 0, 0.2, 0.5, 1 (None skipped) over [-1, 1] in 2 bins of width 1:
    bin 0 = [-1, 0): A_l -1; bin 1 = [0, 1]: A_w 0.5, 0.0 and A_l 1.0, 0.2 (the max goes in the last bin)."""
    pairs = [{"A_w": 0.5, "A_l": -1.0}, {"A_w": 0.0, "A_l": 1.0}, {"A_w": None, "A_l": 0.2}]
    assert advantage_bins(pairs, bins=2) == [(-1.0, 0.0, 0, 1), (0.0, 1.0, 2, 2)]
    assert advantage_bins([]) == []


def test_curves_skip_missing_and_non_finite_values():
    log = [{"step": 1, "loss": 0.7}, {"step": 2, "loss": float("nan"), "reward_margin": 0.3}, {"loss": 0.1}]
    found = curves(log)
    assert found["loss"] == [("loss", [1], [0.7])]
    assert found["reward margin"] == [("reward_margin", [2], [0.3])]
    assert "ACO weight w" not in found


def test_scaling_series_puts_rounds_one_after_another():
    """Round 1 trained 4 steps, round 2 trained 6: round 2's step 2 is global step 4 + 2 = 6,
    its final model global step 10."""
    def pt(label: str, r: int, step: int | None, acc: float) -> EvalPoint:
        return EvalPoint(label, r, step, {"t": {"accuracy": acc, "ci": (0, 1), "n": 1, "correct": {}}})

    points = [pt("base", 0, 0, 0.1), pt("round1-step2", 1, 2, 0.2), pt("round1", 1, None, 0.3),
              pt("round2-step2", 2, 2, 0.4), pt("round2", 2, None, 0.5)]
    assert scaling_series(points, {1: 4, 2: 6}) == {"t": [(0, 0.1), (2, 0.2), (4, 0.3), (6, 0.4), (10, 0.5)]}


def test_build_report_writes_every_section_and_plot(tmp_path):
    run = _make_run(tmp_path / "run", trained={"q1": True, "q2": True, "q3": True, "q4": False}, steps=True)
    text = build_report(run)
    assert (run / "report.md").read_text() == text
    for name in ("advantages_round1.png", "training_round1.png", "scaling.png"):
        assert (run / "plots" / name).stat().st_size > 1000
    # base 1/4 = 25.0%, trained 3/4 = 75.0%, delta +50.0, only trained right on q2, q3
    assert "| synthetic | 4 | 25.0 [10.0, 90.0] | 75.0 [10.0, 90.0] | +50.0 |" in text
    assert "| 0 / 2 |" in text
    assert "| generated_tokens | 1234 |" in text
    assert "| round1-sample | 30 | - |" in text and "| total | 42 | 0 |" in text
    assert "3 pairs" in text
    assert "4 logged steps" in text
    # scaling: base at step 0, step 2, final at the last logged step (4)
    assert "| synthetic | 25.0 | 50.0 | 75.0 |" in text


def test_report_tolerates_a_run_with_nothing_yet(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    text = build_report(run)
    assert "_no evaluation results yet_" in text
    assert "## Sampling" not in text and "scaling" not in text


def test_final_points_take_the_last_round(tmp_path):
    run = _make_run(tmp_path / "run", trained={"q1": True, "q2": False, "q3": False, "q4": False}, steps=True)
    points = eval_points(run)
    assert [p.label for p in points] == ["base", "round1-step2", "round1"]
    base, trained = final_points(points)
    assert (base.label, trained.label) == ("base", "round1")


def test_runs_table_side_by_side(tmp_path):
    a = _make_run(tmp_path / "aco", trained={"q1": True, "q2": True, "q3": True, "q4": False})
    b = _make_run(tmp_path / "dpo", trained={"q1": True, "q2": True, "q3": False, "q4": False}, loss="dpo")
    table = runs_table([a, b])
    lines = table.strip().splitlines()
    assert lines[0] == "| run | synthetic | avg |"
    assert lines[2] == "| base: tiny | 25.0 | 25.0 |"
    assert lines[3] == "| aco (genius, aco) | 75.0 | 75.0 |"
    assert lines[4] == "| dpo (genius, dpo) | 50.0 | 50.0 |"
