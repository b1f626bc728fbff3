"""Exact trees and pairs of the search on a scripted engine, for the paper default, the reference
code's variant and both ablations of paper Table 3.

Script (M = 2 beams, N = 2 candidates, K = 2 steps, tau = 0.1). Root candidates a0..a3, then
children named after their beam (a0b0, a0b1, ...). Score gaps are >= 1.9, so softmax(f / 0.1)
puts more than 1 - 1e-8 of its mass on the best remaining candidate: the "sampled" draws below are
certain in practice, which lets the tests state exact trees.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_sampling_mock import BLANK_LP, MockEngine

from genius.queries import Query
from genius.sampling import SampleConfig, run_sample
from genius.sampling.scoring import rng_for

PREFIX = "The reasoning steps are:\n\n"
F = {"a0": -0.5, "a1": -2.5, "a2": -4.5, "a3": -6.5,
     "a0b0": -3.0, "a0b1": -9.0, "a1b0": -1.0, "a1b1": -7.0}
S = {"a0": -3.0, "a1": -1.0, "a2": -5.0, "a3": -7.0,
     "a0b0": -2.0, "a0b1": -0.1, "a1b0": -4.0, "a1b1": -6.0}


def q(i: int = 0) -> Query:
    return Query(id=f"q{i}", messages=[{"role": "user", "content": f"question {i}"}], index=i)


def sample(tmp_path: Path, engine: MockEngine, queries: list[Query], **settings) -> tuple[list[dict], list[dict]]:
    cfg = SampleConfig(beams=2, candidates=2, steps=2, **settings)
    run_sample(cfg, queries, tmp_path, engine, progress=False)
    trees = [json.loads(line) for line in (tmp_path / "trees.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    return trees, pairs


def rollout(label: str) -> str:
    return f" then {label} ends."


def test_paper_default_tree_and_pairs(tmp_path: Path) -> None:
    """Step 1: f = A = [-0.5, -2.5, -4.5, -6.5] (Q(root) = 0); beams a0 (Q -0.5), a1 (Q -2.5);
    pair a0 > a1 (categorical over a1..a3 puts ~1 on a1); mean A = -14 / 4 = -3.5.
    Step 2, candidates a0b0, a0b1, a1b0, a1b1: f = [-3, -9, -1, -7], Q = [-0.5, -0.5, -2.5, -2.5]
    -> A = [-2.5, -8.5, 1.5, -4.5], mean -14 / 4 = -3.5; chosen a1b0 (A_w 1.5), rejected a0b0
    (best of the rest, A_l -2.5); new beams a1b0 then a0b0."""
    eng = MockEngine(S=S, F=F)
    [tree], pairs = sample(tmp_path, eng, [q()])
    s1, s2 = tree["steps"]
    assert [c["step"] for c in s1["candidates"]] == ["a0\n", "a1\n", "a2\n", "a3\n"]
    assert [c["f"] for c in s1["candidates"]] == [-0.5, -2.5, -4.5, -6.5]
    assert [c["s"] for c in s1["candidates"]] == [-3.0, -1.0, -5.0, -7.0]
    assert [c["A"] for c in s1["candidates"]] == [-0.5, -2.5, -4.5, -6.5]
    assert s1["selected"] == [0, 1] and s1["mean_A"] == -3.5
    assert s1["beams"] == [{"text": PREFIX, "Q": 0.0}]
    assert [c["step"] for c in s2["candidates"]] == ["a0b0\n", "a0b1\n", "a1b0\n", "a1b1\n"]
    assert [c["A"] for c in s2["candidates"]] == [-2.5, -8.5, 1.5, -4.5]
    assert [b["Q"] for b in s2["beams"]] == [-0.5, -2.5]
    assert s2["selected"] == [2, 0] and s2["mean_A"] == -3.5
    assert [c["beam"] for c in s2["candidates"]] == [True, False, True, False]
    assert [b["text"] for b in tree["final_beams"]] == [PREFIX + "a1\na1b0\n", PREFIX + "a0\na0b0\n"]
    assert tree["ended"] is False
    assert [(p["step"], p["A_w"], p["A_l"], p["f_w"], p["f_l"]) for p in pairs] == [
        (1, -0.5, -2.5, -0.5, -2.5), (2, 1.5, -2.5, -1.0, -3.0)]
    assert pairs[1]["chosen"] == PREFIX + "a1\na1b0\n" + rollout("a1b0")
    assert pairs[1]["rejected"] == PREFIX + "a0\na0b0\n" + rollout("a0b0")
    assert pairs[0]["prompt"] == [{"role": "user", "content": "question 0"}]
    assert pairs[0]["step_mean_advantage"] == -3.5 and pairs[0]["method"] == "genius"
    # Two engine calls per step: candidates (M copies of the root x N, then one prompt per beam), rollouts.
    assert [(phase, prompts, n) for phase, prompts, n, _ in eng.calls] == [
        ("step", 2, 2), ("rollout", 4, 1), ("step", 2, 2), ("rollout", 4, 1)]
    assert eng.calls[1][3].temperature == 0.6


def test_code_variant_uniform_negatives_and_rollout_temperature(tmp_path: Path) -> None:
    """negatives=uniform: the rejected response is any non-chosen candidate with equal chance; the
    draw is rest[floor(u * 3)] with u the first number of rng_for(seed, query, step, "negative")."""
    eng = MockEngine(S=S, F=F)
    queries = [q(i) for i in range(40)]
    trees, pairs = sample(tmp_path, eng, queries, negatives="uniform", rollout_temperature=1.0)
    assert {c[3].temperature for c in eng.calls if c[0] == "rollout"} == {1.0}
    assert {c[3].temperature for c in eng.calls if c[0] == "step"} == {0.6}
    by_query = {(p["query_id"], p["step"]): p for p in pairs}
    rest1 = ["a1", "a2", "a3"]  # step 1: chosen a0
    u = rng_for(0, "q7", 1, "negative").random()
    assert by_query[("q7", 1)]["rejected"] == PREFIX + f"{rest1[int(u * 3)]}\n" + rollout(rest1[int(u * 3)])
    rejected = Counter(p["rejected"].split("\n")[2] for p in pairs if p["step"] == 1)
    assert set(rejected) == {"a1", "a2", "a3"}  # categorical would pick a1 every time


def test_without_foresight_scores_by_step_logprob_and_completes_responses_unscored(tmp_path: Path) -> None:
    """score=step_logprob: step 1 scores s = [-3, -1, -5, -7] -> beams a1 (Q -1) then a0 (Q -3);
    pair a1 > a0 (A_w -1, A_l -3). Step 2 (beam order a1, a0): a1b0, a1b1, a0b0, a0b1 with
    s = [-4, -6, -2, -0.1], Q = [-1, -1, -3, -3] -> A = [-3, -5, 1, 2.9]; pair a0b1 > a0b0
    (A_w 2.9, A_l 1.0). The rollouts are made (so the responses are whole answers, as in Genius)
    but never scored: the F values, which would rank the candidates otherwise, change nothing."""
    eng = MockEngine(S=S, F=F)
    [tree], pairs = sample(tmp_path, eng, [q()], score="step_logprob")
    assert [phase for phase, *_ in eng.calls] == ["step", "rollout", "step", "rollout"]
    s1, s2 = tree["steps"]
    assert s1["selected"] == [1, 0]
    assert [c["step"] for c in s2["candidates"]] == ["a1b0\n", "a1b1\n", "a0b0\n", "a0b1\n"]
    assert [c["A"] for c in s2["candidates"]] == pytest.approx([-3.0, -5.0, 1.0, 2.9])
    assert all(c["f"] is None and c["rollout"] == rollout(c["step"].strip()) for c in s2["candidates"])
    assert [a for p in pairs for a in (p["A_w"], p["A_l"])] == pytest.approx([-1.0, -3.0, 2.9, 1.0])
    assert pairs[1]["chosen"] == PREFIX + "a0\na0b1\n" + rollout("a0b1")
    assert pairs[1]["rejected"] == PREFIX + "a0\na0b0\n" + rollout("a0b0")
    assert {p["chosen_finish"] for p in pairs} == {"eos"}


def test_pairs_say_how_each_side_finished_and_cut_ones_are_dropped_by_default() -> None:
    """Hand-made step: chosen c0 (f -1) ended by EOS in its rollout, c1 (f -2) cut at its rollout
    budget, c2 (f -3) ended the response in its step. Categorical negatives at tau 0.1 put ~1 on
    c1: that pair has a cut side and is dropped (counted); kept with unfinished: keep."""
    from genius.sampling.pairs import all_pairs, pairs_for_tree, unfinished_pairs

    def cand(f, ended, step_finish, rollout_finish):
        return {"parent": 0, "step": f"s{f}\n", "rollout": "r", "score": f, "A": f, "ended": ended,
                "step_finish": step_finish, "rollout_finish": rollout_finish}

    tree = {"query_id": "q0", "messages": [{"role": "user", "content": "x"}],
            "steps": [{"k": 1, "beams": [{"text": PREFIX, "Q": 0.0}], "mean_A": -2.0,
                       "candidates": [cand(-1.0, False, "stop", "eos"), cand(-2.0, False, "stop", "length"),
                                      cand(-3.0, True, "eos", None)]}]}
    [pair] = all_pairs(tree, SampleConfig())
    assert (pair["chosen_finish"], pair["rejected_finish"]) == ("eos", "length")
    assert pairs_for_tree(tree, SampleConfig()) == [] and unfinished_pairs(tree, SampleConfig()) == 1
    assert pairs_for_tree(tree, SampleConfig(unfinished="keep")) == [pair]
    tree["steps"][0]["candidates"][1]["rollout_finish"] = "stop"  # an end marker: finished
    assert pairs_for_tree(tree, SampleConfig())[0]["rejected_finish"] == "stop"


def test_without_sampling_greedy_beams_and_lowest_negative(tmp_path: Path) -> None:
    """selection=greedy: beams are the top 2 by f (a0, a1) and the negative is the lowest f:
    step 1 a0 > a3 (A_w -0.5, A_l -6.5); step 2 a1b0 > a0b1 (A_w 1.5, A_l -9 - (-0.5) = -8.5)."""
    eng = MockEngine(S=S, F=F)
    [tree], pairs = sample(tmp_path, eng, [q()], selection="greedy")
    assert [s["selected"] for s in tree["steps"]] == [[0, 1], [2, 0]]
    assert [(p["A_w"], p["A_l"]) for p in pairs] == [(-0.5, -6.5), (1.5, -8.5)]
    assert pairs[1]["rejected"] == PREFIX + "a0\na0b1\n" + rollout("a0b1")


def test_beams_that_end_retire_and_the_query_stops(tmp_path: Path) -> None:
    """a0 and a1 end with EOS: no rollout, f = their step log-prob (-3, -1); a2/a3 roll out
    (f -4.5, -6.5). Beams drawn: a1 (f -1) and a0 (f -3), both ended -> the query stops after one
    step with no beam left, having asked for rollouts of a2 and a3 only."""
    eng = MockEngine(S=S, F=F, eos={"a0", "a1"})
    [tree], pairs = sample(tmp_path, eng, [q()])
    [s1] = tree["steps"]
    assert [c["f"] for c in s1["candidates"]] == [-3.0, -1.0, -4.5, -6.5]
    assert [c["ended"] for c in s1["candidates"]] == [True, True, False, False]
    assert [c["rollout_tokens"] for c in s1["candidates"]][:2] == [0, 0]
    assert s1["selected"] == [1, 0] and tree["ended"] is True and tree["final_beams"] == []
    assert [c[1] for c in eng.calls] == [2, 2]  # step call (2 root copies), rollouts for a2, a3
    assert len(pairs) == 1 and pairs[0]["chosen"] == PREFIX + "a1"


def test_one_ended_beam_leaves_one_beam(tmp_path: Path) -> None:
    """Only a1 ends: beams a0 (alive) and a1 (ended) -> step 2 expands a0 alone (2 candidates) and
    keeps 1 beam."""
    eng = MockEngine(S=S, F=F, eos={"a1"})
    [tree], _ = sample(tmp_path, eng, [q()])
    s2 = tree["steps"][1]
    assert [c["step"] for c in s2["candidates"]] == ["a0b0\n", "a0b1\n"]
    assert len(s2["selected"]) == 1 and len(tree["final_beams"]) == 1


def test_blank_step_is_continued_into_the_next_line(tmp_path: Path) -> None:
    """a1 first comes out as a whitespace line "  \\n" (3 tokens at -1.0) and is continued to
    "a1\\n" (3 tokens at S = -1.0 ... set to -2.2 here): s = (3 * -1.0 + 3 * -2.2) / 6 = -1.6."""
    eng = MockEngine(S={**S, "a1": -2.2}, F=F, blank={"a1"})
    [tree], _ = sample(tmp_path, eng, [q()])
    c = tree["steps"][0]["candidates"][1]
    assert c["step"] == "  \na1\n" and c["step_tokens"] == 6
    assert c["s"] == pytest.approx((3 * BLANK_LP + 3 * -2.2) / 6)
    assert [phase for phase, *_ in eng.calls][:3] == ["step", "step", "rollout"]


def test_a_query_does_not_depend_on_its_batch(tmp_path: Path) -> None:
    """Five queries in lockstep (one engine call per phase) give the trees of five lone runs."""
    together, _ = sample(tmp_path / "all", MockEngine(S=S, F=F), [q(i) for i in range(5)])
    alone = [sample(tmp_path / f"q{i}", MockEngine(S=S, F=F), [q(i)])[0][0] for i in range(5)]
    key = {t["query_id"]: t for t in together}
    for t in alone:
        assert key[t["query_id"]]["steps"] == t["steps"]
