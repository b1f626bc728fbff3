"""What a sample run checks before it reads or resumes (issue 17): tree records (every field the
pairs, the stats and the merge read), the run's inputs (model and query source), the shard counts
of a merge, and the check of rewrite_pairs that runs before the old file is replaced."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from genius.errors import UserError
from genius.config import save
from genius.io import write_json
from genius.sampling.config import SampleConfig
from genius.sampling.pairs import check_tree
from genius.sampling.runner import (INPUTS_NAME, SampleInputs, check_inputs, merge_shards, rewrite_pairs,
                                    sample_inputs)

PREFIX = "The reasoning steps are:\n\n"


def cand(score: float, parent: int = 0) -> dict:
    return {"parent": parent, "step": f"s{score}\n", "rollout": "r", "score": score, "A": score, "ended": False,
            "step_finish": "stop", "rollout_finish": "eos"}


def tree(qid: str = "q0", index: int = 0) -> dict:
    """A tree record with the fields genius sample writes (those the readers take)."""
    return {"query_id": qid, "index": index, "messages": [{"role": "user", "content": "x"}], "ended": False,
            "generated_tokens": {"step": 4, "rollout": 6},
            "steps": [{"k": 1, "beams": [{"text": PREFIX, "Q": 0.0}], "mean_A": None,
                       "candidates": [cand(-1.0), cand(-2.0)]}]}


def test_a_whole_tree_passes_and_each_missing_or_mistyped_field_is_named() -> None:
    assert check_tree(tree(), "t.jsonl:1:") == tree()
    cases = {
        "field 'steps' missing": lambda t: t.pop("steps"),
        "field 'generated_tokens.rollout' missing": lambda t: t["generated_tokens"].pop("rollout"),
        "field 'steps[0].candidates[1].score': expected a number, got str": lambda t: t["steps"][0]["candidates"][
            1].update(score="high"),
        "field 'steps[0].beams[0]': expected an object, got str": lambda t: t["steps"][0]["beams"].__setitem__(0, "b"),
        # JSON true is an int to Python: it is no index
        "field 'index': expected an integer, got bool": lambda t: t.update(index=True),
        "field 'ended': expected true or false, got int": lambda t: t.update(ended=1),
        "field 'steps[0].candidates[0].parent': 3 names no beam of the step (it has 1)": lambda t: t["steps"][0][
            "candidates"][0].update(parent=3),
    }
    for expected, spoil in cases.items():
        bad = copy.deepcopy(tree())
        spoil(bad)
        with pytest.raises(UserError) as e:
            check_tree(bad, "t.jsonl:7:")
        assert str(e.value).startswith("t.jsonl:7: ") and expected in str(e.value), (expected, str(e.value))


def test_inputs_name_the_model_and_the_query_file_by_name_and_content(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"instruction": "hi"}\n')
    model = tmp_path / "model"
    model.mkdir()
    # sha256 of the 22 bytes, as `sha256sum q.jsonl` prints it
    digest = hashlib.sha256(b'{"instruction": "hi"}\n').hexdigest()
    assert sample_inputs(f"{model}/", str(queries)) == SampleInputs(
        model=str(model.resolve()), queries="q.jsonl", queries_sha256=digest, queries_path=str(queries.resolve()))
    assert sample_inputs("org/name@v1", "org/data", "test") == SampleInputs(model="org/name@v1", queries="org/data",
                                                                            split="test")


def test_a_resume_with_other_inputs_is_refused_and_the_same_file_moved_is_not(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "moved").mkdir()
    first, moved, renamed, other = (tmp_path / n for n in ("a.jsonl", "moved/a.jsonl", "b.jsonl", "moved/c.jsonl"))
    for path in (first, moved, renamed):
        path.write_text('{"instruction": "hi"}\n')
    other.write_text('{"instruction": "ho"}\n')
    check_inputs(run, sample_inputs("m1", first))  # nothing recorded yet: goes on
    save(sample_inputs("m1", first), run / INPUTS_NAME)
    check_inputs(run, sample_inputs("m1", moved))  # the same queries, moved
    digest = sample_inputs("m1", first).queries_sha256
    refusals = {
        "(model: 'm1' -> 'm2')": sample_inputs("m2", first),
        f"(queries: 'a.jsonl' -> 'c.jsonl', queries_sha256: '{digest}' -> ": sample_inputs("m1", other),
        # the same bytes, but the default ids (b-1, not a-1) are made of the file name
        "(queries: 'a.jsonl' -> 'b.jsonl')": sample_inputs("m1", renamed),
        f"(queries: 'a.jsonl' -> 'org/data', queries_sha256: '{digest}' -> None, split: None -> 'train')":
            sample_inputs("m1", "org/data"),
    }
    for expected, now in refusals.items():
        with pytest.raises(UserError) as e:
            check_inputs(run, now)
        message = str(e.value)
        assert message.startswith(f"{run / INPUTS_NAME}: this folder was started with other settings ")
        assert expected in message and "pass --force" in message, message
        check_inputs(run, now, force=True)
    first.write_text('{"instruction": "hi"}\n{"instruction": "more"}\n')  # changed in place
    with pytest.raises(UserError, match=f"queries_sha256: '{digest}' -> '"):
        check_inputs(run, sample_inputs("m1", first))


def test_rewrite_pairs_checks_the_counts_before_the_old_file_is_replaced(tmp_path: Path) -> None:
    trees, pairs = tmp_path / "trees.jsonl", tmp_path / "pairs.jsonl"
    trees.write_text("".join(json.dumps(tree(f"q{i}", i)) + "\n" for i in range(3)))
    pairs.write_text("old\n")
    seen = []

    def refuse(n_trees: int, n_pairs: int) -> None:
        seen.append((n_trees, n_pairs))
        raise UserError("refused")

    cfg = SampleConfig(unfinished="keep")
    with pytest.raises(UserError, match="refused"):
        rewrite_pairs(trees, pairs, cfg, check=refuse)
    assert seen == [(3, 3)] and pairs.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "trees.jsonl"]  # no temporary file left
    assert rewrite_pairs(trees, pairs, cfg) == 3 and len(pairs.read_text().splitlines()) == 3


def test_a_bad_tree_line_names_the_file_and_line(tmp_path: Path) -> None:
    trees = tmp_path / "trees.jsonl"
    bad = tree("q1", 1)
    del bad["messages"]
    trees.write_text(json.dumps(tree()) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(UserError, match=r"trees.jsonl:3: field 'messages' missing"):
        rewrite_pairs(trees, tmp_path / "pairs.jsonl", SampleConfig())
    trees.write_bytes(json.dumps(tree()).encode() + b"\n" + b'{"query_id": "caf\xe9"}\n')
    with pytest.raises(UserError, match=r"trees.jsonl:2: not UTF-8 text \(byte 0xe9 at byte offset \d+"):
        rewrite_pairs(trees, tmp_path / "pairs.jsonl", SampleConfig())


def _two_shards(run: Path) -> None:
    """A finished run of 2 shards, one tree each, as genius sample leaves it."""
    write_json(run / "sample_config.yaml", {})  # JSON is YAML: the default settings
    for i in range(2):
        suffix = f".{i}-of-2"
        (run / f"trees{suffix}.jsonl").write_text(json.dumps(tree(f"q{i}", i)) + "\n")
        write_json(run / f"stats{suffix}.json", {"queries": 1, "complete": True, "seconds": 1.0,
                                                 "generated_tokens": 10})


def test_merge_refuses_a_shard_with_fewer_trees_than_it_recorded(tmp_path: Path) -> None:
    _two_shards(tmp_path)
    stats = merge_shards(tmp_path)
    assert stats["queries"] == 2 and stats["shards_merged"] == 2
    merged = (tmp_path / "trees.jsonl").read_bytes()
    (tmp_path / "trees.0-of-2.jsonl").write_text("")  # a crash emptied it
    with pytest.raises(UserError) as e:
        merge_shards(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'trees.0-of-2.jsonl'}: 0 trees, but shard 0/2 recorded 1 when it "
                                   "finished (stats.0-of-2.json); nothing merged")
    assert (tmp_path / "trees.jsonl").read_bytes() == merged
    # more trees than recorded (a resumed shard added some) is no loss
    (tmp_path / "trees.0-of-2.jsonl").write_text(json.dumps(tree("q0", 0)) + "\n" + json.dumps(tree("q2", 2)) + "\n")
    assert merge_shards(tmp_path)["queries"] == 3
