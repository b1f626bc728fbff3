"""The run layout: names made and read back by the same module, readers of a run folder."""

from __future__ import annotations

from pathlib import Path

from genius.io import write_yaml
from genius.layout import (RunLayout, eval_step_name, eval_step_number, last_train_step, round_name,
                           round_number)


def test_numbered_names_round_trip_and_others_are_ignored():
    assert [round_number(round_name(r)) for r in (1, 12)] == [1, 12]
    assert eval_step_number(eval_step_name(20)) == 20
    for name in ("rounds", "round", "round1.bak", "round-1", "round 1", "roundx", "round١"):
        assert round_number(name) is None, name
    assert eval_step_number("eval-steps") is None and eval_step_number("eval") is None


def test_paths_of_a_run(tmp_path: Path):
    run = RunLayout(str(tmp_path))
    assert run.root == tmp_path
    assert run.queries == tmp_path / "queries" / "queries.jsonl"
    assert run.answers == tmp_path / "queries" / "answers.jsonl"
    assert run.base_eval == tmp_path / "eval" / "base"
    rnd = run.round(2)
    assert (rnd.sample, rnd.train_log, rnd.eval, rnd.eval_step(20)) == (
        tmp_path / "round2" / "sample", tmp_path / "round2" / "train" / "train_log.jsonl",
        tmp_path / "round2" / "eval", tmp_path / "round2" / "eval-step20")
    assert run.member("star").round(1).pairs == tmp_path / "star" / "round1" / "sample" / "pairs.jsonl"


def test_rounds_and_eval_locations_in_order(tmp_path: Path):
    run = RunLayout(tmp_path)
    for path in (run.base_eval, run.round(10).eval, run.round(2).eval_step(20), run.round(2).eval_step(5),
                 run.round(2).eval_steps, run.round(2).eval, tmp_path / "round3.old", tmp_path / "rounds"):
        path.mkdir(parents=True)
    (tmp_path / "round7").write_text("a file, not a round")
    assert [r.number for r in run.rounds()] == [2, 10]  # numeric order, not 10 before 2
    assert [(x.label, x.round, x.step) for x in run.eval_locations()] == [
        ("base", 0, 0), ("round2-step5", 2, 5), ("round2-step20", 2, 20), ("round2", 2, None), ("round10", 10, None)]


def test_last_train_step(tmp_path: Path):
    log = tmp_path / "train_log.jsonl"
    assert last_train_step(log) is None
    log.write_text('{"step": 3, "loss": 1}\n{"note": "no step"}\n{"step": 12}\n{"step": 8}\n')
    assert last_train_step(log) == 12
    log.write_text('{"note": "no step"}\n')
    assert last_train_step(log) is None


def test_members_of_a_comparison(tmp_path: Path):
    run = RunLayout(tmp_path)
    assert run.members() is None
    write_yaml(run.config, {"compare": {"genius": {}, "star": {}, "sft": {}}})
    for name in ("sft", "genius"):
        run.member(name).root.mkdir()
    assert [m.root.name for m in run.members()] == ["genius", "sft"]  # config order, existing only
