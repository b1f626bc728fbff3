"""genius.sampling.signal: AUROC and paired differences by hand, diagnostics of a hand-made tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from genius.errors import UserError
from genius.evaluation.tasks import Item, get_task
from genius.io import read_json, write_json
from genius.sampling.signal import (auroc, diagnose, paired_difference, read_answer_key, write_answer_key,
                                    write_signal)

PREFIX = "The reasoning steps are:\n\n"


def test_auroc_by_hand() -> None:
    # correct scores {3, 1}, wrong {2, 0}: pairs (3>2, 3>0, 1<2, 1>0) -> 3 of 4
    assert auroc([3, 2, 1, 0], [True, False, True, False]) == pytest.approx(0.75)
    assert auroc([1, 1], [True, False]) == pytest.approx(0.5)  # a tie counts 1/2
    # ties across classes: correct {2, 2}, wrong {2, 1}: (1/2 + 1) * 2 / 4 = 0.75
    assert auroc([2, 2, 2, 1], [True, True, False, False]) == pytest.approx(0.75)
    assert auroc([5, 4], [False, True]) == 0.0 and auroc([1, 2], [True, True]) is None


def test_paired_difference_by_hand() -> None:
    # diffs 1, 0, 0, -1, 1: mean 0.2, sd sqrt(2.8 / 4) = 0.8367, half-width 1.96 * 0.8367 / sqrt(5) = 0.7334
    d = paired_difference([True, True, False, False, True], [False, True, False, True, False])
    assert d["n"] == 5 and d["mean"] == pytest.approx(0.2)
    assert d["ci95"] == pytest.approx([0.2 - 0.7334, 0.2 + 0.7334], abs=1e-3)
    assert paired_difference([], []) == {"n": 0, "mean": None, "ci95": None}


def _cand(step: str, rollout: str, f: float, s: float, finish: str = "eos") -> dict:
    return {"parent": 0, "step": step, "rollout": rollout, "f": f, "s": s, "score": f, "A": f, "ended": False,
            "step_finish": "stop", "rollout_finish": finish}


def _tree(qid: str) -> dict:
    return {"query_id": qid, "steps": [{"k": 1, "beams": [{"text": PREFIX, "Q": 0.0}], "candidates": [
        _cand("3 + 4 = 7\n", "The answer is: 7", -0.5, -1.0),
        _cand("3 + 4 = 8\n", "The answer is: 8", -1.5, -0.8),
        _cand("3 + 4\n", "is", -2.5, -2.0, finish="length"),
    ]}], "final_beams": [{"text": PREFIX + "3 + 4 = 7\nThe answer is: 7", "Q": -0.5}]}


def test_diagnose_a_hand_made_tree_against_its_answer() -> None:
    """Gold 7. Candidates: f -0.5 correct, -1.5 wrong (8), -2.5 wrong (no answer, cut): AUROC f =
    1 (the correct one ranks above both), s: -1.0 vs wrong {-0.8, -2.0} -> 1/2. One pair chosen
    correct, rejected wrong: diff +1. One cut rollout of 3. A query not in the key is ignored."""
    task = get_task("synthetic")
    key = {"q0": Item(id="q0", question="", gold="7", meta={"kind": "arith1", "choices": []})}
    pairs = [{"query_id": "q0", "chosen": PREFIX + "3 + 4 = 7\nThe answer is: 7",
              "rejected": PREFIX + "3 + 4 = 8\nThe answer is: 8"}, {"query_id": "other", "chosen": "", "rejected": ""}]
    d = diagnose([_tree("q0"), _tree("other")], pairs, task, key)
    assert (d["queries"], d["pairs"], d["chosen_correct"], d["rejected_correct"]) == (1, 1, 1.0, 0.0)
    assert d["chosen_minus_rejected"]["mean"] == 1.0
    assert d["auroc_f"] == 1.0 and d["auroc_s"] == pytest.approx(0.5)
    assert d["final_beams_correct"] == 1.0 and d["candidates_correct"] == pytest.approx(1 / 3)
    assert d["rollouts"] == 3 and d["rollouts_cut_share"] == pytest.approx(1 / 3)
    assert d["headline"].startswith("signal: chosen correct 100.0% vs rejected 0.0% over 1 pairs")
    assert d["f_by_correctness"] == {"correct": [-0.5], "wrong": [-1.5, -2.5]}


def test_write_signal_adds_to_stats_and_draws_the_plot(tmp_path: Path) -> None:
    import json

    (tmp_path / "trees.jsonl").write_text(json.dumps(_tree("q0")) + "\n")
    (tmp_path / "pairs.jsonl").write_text("")
    write_json(tmp_path / "stats.json", {"queries": 1})
    key = write_answer_key(tmp_path / "answers.jsonl", [Item(id="q0", question="?", gold="7",
                                                             meta={"kind": "arith1", "choices": []})], "synthetic")
    d = write_signal(tmp_path, key)
    stats = read_json(tmp_path / "stats.json")
    assert stats["queries"] == 1 and stats["signal"]["auroc_f"] == 1.0 == d["auroc_f"]
    assert "f_by_correctness" not in stats["signal"] and (tmp_path / "signal_f.png").stat().st_size > 1000


def test_a_bad_answer_key_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text('{"id": "a", "task": "synthetic", "gold": "1"}\n{"id": "b", "task": "synthetic"}\n')
    with pytest.raises(UserError, match=r"answers.jsonl:2: field 'gold'.*missing"):
        read_answer_key(path)
    path.write_text('{"id": "a", "task": "synthetic", "gold": "1"}\n{"id": "b", "task": "gsm8k", "gold": "2"}\n')
    with pytest.raises(UserError, match="expected the answers of one task"):
        read_answer_key(path)
