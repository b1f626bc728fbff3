"""Run directories on the scripted engine: resume, changed settings, shards and merge, stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_sampling_mock import MockEngine
from test_sampling_search import F, S, q

from genius.errors import UserError
from genius.ranks import parse_shard
from genius.sampling import SampleConfig, merge_shards, run_sample

CFG = SampleConfig(beams=2, candidates=2, steps=2)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_resume_after_a_kill_keeps_every_query_once(tmp_path: Path) -> None:
    """A clean run of 4 queries vs a run "killed" after 2 trees, mid-way through the 3rd line and
    before the 2nd tree's pairs: the resumed run samples only queries 3 and 4 and ends with the
    clean run's trees and pairs."""
    clean = tmp_path / "clean"
    run_sample(CFG, [q(i) for i in range(4)], clean, MockEngine(S=S, F=F), progress=False)
    killed = tmp_path / "killed"
    killed.mkdir()
    tree_lines = (clean / "trees.jsonl").read_text().splitlines(keepends=True)
    (killed / "trees.jsonl").write_text("".join(tree_lines[:2]) + tree_lines[2][:50])
    (killed / "pairs.jsonl").write_text("".join((clean / "pairs.jsonl").read_text().splitlines(keepends=True)[:2]))
    (killed / "sample_config.yaml").write_text((clean / "sample_config.yaml").read_text())
    eng = MockEngine(S=S, F=F)
    stats = run_sample(CFG, [q(i) for i in range(4)], killed, eng, progress=False)
    assert stats["queries_resumed"] == 2 and stats["queries_this_run"] == 2 and stats["queries"] == 4
    assert eng.calls[0][1] == 2 * 2  # one step call: 2 queries x 2 root copies
    by_id = {t["query_id"]: t for t in lines(killed / "trees.jsonl")}
    assert sorted(by_id) == ["q0", "q1", "q2", "q3"] and len(lines(killed / "trees.jsonl")) == 4
    assert by_id == {t["query_id"]: t for t in lines(clean / "trees.jsonl")}
    key = lambda p: (p["query_id"], p["step"])  # noqa: E731
    assert sorted(lines(killed / "pairs.jsonl"), key=key) == sorted(lines(clean / "pairs.jsonl"), key=key)


def test_changed_settings_are_refused_unless_forced(tmp_path: Path) -> None:
    run_sample(CFG, [q(0)], tmp_path, MockEngine(S=S, F=F), progress=False)
    with pytest.raises(UserError) as e:
        run_sample(SampleConfig(beams=2, candidates=2, steps=2, tau=0.2), [q(0), q(1)], tmp_path,
                   MockEngine(S=S, F=F), progress=False)
    assert "tau: 0.1 -> 0.2" in str(e.value) and "--force" in str(e.value)
    assert len(lines(tmp_path / "trees.jsonl")) == 1  # nothing written was touched
    # batch_sequences only changes speed: allowed
    run_sample(SampleConfig(beams=2, candidates=2, steps=2, batch_sequences=8), [q(0)], tmp_path,
               MockEngine(S=S, F=F), progress=False)
    stats = run_sample(SampleConfig(beams=2, candidates=2, steps=2, tau=0.2), [q(0), q(1)], tmp_path,
                       MockEngine(S=S, F=F), force=True, progress=False)
    assert stats["queries"] == 2 and "tau: 0.2" in (tmp_path / "sample_config.yaml").read_text()


def test_two_shards_merge_to_the_one_machine_run(tmp_path: Path) -> None:
    """Shard 0/2 takes indices 0, 2, 4; shard 1/2 takes 1, 3. The second shard to finish merges:
    trees.jsonl in query order, each id once, the same pairs as one machine."""
    queries = [q(i) for i in range(5)]
    one = tmp_path / "one"
    run_sample(CFG, queries, one, MockEngine(S=S, F=F), progress=False)
    two = tmp_path / "two"
    s0 = run_sample(CFG, queries, two, MockEngine(S=S, F=F), shard=(0, 2), progress=False)
    assert s0["queries"] == 3 and not (two / "trees.jsonl").exists()
    with pytest.raises(UserError, match="shard\\(s\\) 1 of 2 not finished"):
        merge_shards(two)
    run_sample(CFG, queries, two, MockEngine(S=S, F=F), shard=(1, 2), progress=False)
    assert [t["query_id"] for t in lines(two / "trees.1-of-2.jsonl")] == ["q1", "q3"]
    merged = lines(two / "trees.jsonl")
    assert [t["query_id"] for t in merged] == ["q0", "q1", "q2", "q3", "q4"]
    assert {t["query_id"] for t in merged} == {t["query_id"] for t in lines(one / "trees.jsonl")}
    assert lines(two / "pairs.jsonl") == lines(one / "pairs.jsonl")
    stats = json.loads((two / "stats.json").read_text())
    assert stats["queries"] == 5 and stats["shards_merged"] == 2 and stats["complete"]


def test_stats_file(tmp_path: Path) -> None:
    """4 queries x 2 steps -> 8 pairs; per query 2 step calls of 4 steps x 3 tokens ("a0\\n")
    + 4 x 5 tokens ("a0b0\\n") = 32 step tokens."""
    run_sample(CFG, [q(i) for i in range(4)], tmp_path, MockEngine(S=S, F=F), progress=False)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["queries"] == 4 and stats["pairs"] == 8 and stats["total_step_tokens"] == 4 * 32
    assert stats["advantage_quantiles"]["q0"] == -8.5 and stats["advantage_quantiles"]["q100"] == 1.5
    assert stats["pair_advantage_quantiles"]["A_w"]["q100"] == 1.5
    assert stats["generated_tokens"] > stats["total_step_tokens"] and stats["complete"] is True


def test_parse_shard() -> None:
    assert parse_shard("1/4", env={}) == (1, 4)
    assert parse_shard("0/1", env={}) is None
    assert parse_shard(None, env={"RANK": "3", "WORLD_SIZE": "4"}) == (3, 4)
    assert parse_shard(None, env={}) is None
    for bad in ("2/2", "a/b", "1"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad, env={})


def _tiny_queries(n: int):
    from genius.queries import Query

    return [Query(id=f"t{i}", index=i, messages=[{"role": "user", "content": f"What is {i} + {2 * i}?"}])
            for i in range(n)]


def test_samples_do_not_depend_on_the_batch_or_the_shard_on_a_real_model(tiny_engine, tmp_path: Path) -> None:
    """Real tiny model, sampled: 3 queries with batch_sequences 4 (one query per call) and 12 (all
    three together), and as 2 shards, give the same trees: a query's samples depend only on
    (seed, query, step, candidate), not on the other queries of its engine calls."""
    base = dict(beams=2, candidates=2, steps=2, max_step_tokens=6, max_rollout_tokens=6, step_temperature=1.0)
    runs = {}
    for name, rows in (("small", 4), ("large", 12)):
        run_sample(SampleConfig(**base, batch_sequences=rows), _tiny_queries(3), tmp_path / name, tiny_engine,
                   progress=False)
        runs[name] = lines(tmp_path / name / "trees.jsonl")
    for i in range(2):
        run_sample(SampleConfig(**base, batch_sequences=12), _tiny_queries(3), tmp_path / "shards", tiny_engine,
                   shard=(i, 2), progress=False)
    runs["shards"] = lines(tmp_path / "shards" / "trees.jsonl")
    steps = {name: [[c["step"] + "|" + c["rollout"] for s in t["steps"] for c in s["candidates"]] for t in trees]
             for name, trees in runs.items()}
    assert len({len(set(map(tuple, v))) for v in steps.values()}) == 1
    assert steps["small"] == steps["large"] == steps["shards"]
    assert len(set(steps["small"][0])) > 1  # sampled for real: the candidates differ
    for name in ("large", "shards"):
        for a, b in zip(runs["small"], runs[name]):
            fa = [c["f"] for s in a["steps"] for c in s["candidates"]]
            fb = [c["f"] for s in b["steps"] for c in s["candidates"]]
            assert fa == pytest.approx(fb, abs=1e-5)


def test_a_relaunch_with_another_shard_count_keeps_what_was_merged(tiny_engine, tmp_path: Path) -> None:
    """Real tiny model: 4 queries as 2 shards (merged), then the launch comes back with 3
    processes: nothing is sampled again, and a 5th query added later is sampled once."""
    cfg = SampleConfig(beams=2, candidates=2, steps=1, max_step_tokens=4, max_rollout_tokens=4)
    for i in range(2):
        run_sample(cfg, _tiny_queries(4), tmp_path, tiny_engine, shard=(i, 2), progress=False)
    first = lines(tmp_path / "trees.jsonl")
    again = [run_sample(cfg, _tiny_queries(4), tmp_path, tiny_engine, shard=(i, 3), progress=False)
             for i in range(3)]
    assert sum(s["queries_this_run"] for s in again) == 0 and lines(tmp_path / "trees.jsonl") == first
    for i in range(3):
        run_sample(cfg, _tiny_queries(5), tmp_path, tiny_engine, shard=(i, 3), progress=False)
    ids = [t["query_id"] for t in lines(tmp_path / "trees.jsonl")]
    assert ids == [f"t{i}" for i in range(5)] and lines(tmp_path / "trees.jsonl")[:4] == first


def test_queries_too_long_for_the_context_are_counted_across_shards(tmp_path: Path) -> None:
    """Scripted engine with a 200-token context: q1 and q2 (300-character questions) cannot take a
    step. Each shard skips and counts its own; the merge adds them up and writes no tree for them."""
    from genius.queries import Query

    queries = [q(0), *(Query(id=f"q{i}", messages=[{"role": "user", "content": "x" * 300}], index=i)
                       for i in (1, 2)), q(3)]
    for i in range(2):
        s = run_sample(CFG, queries, tmp_path, MockEngine(S=S, F=F, max_context=200), shard=(i, 2), progress=False)
        assert s["queries_too_long"] == 1 and s["queries_this_run"] == 1
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["queries_too_long"] == 2 and stats["queries_too_long_ids"] == ["q2", "q1"]
    assert [t["query_id"] for t in lines(tmp_path / "trees.jsonl")] == ["q0", "q3"] and stats["queries"] == 2
