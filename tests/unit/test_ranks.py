"""genius.ranks: who generates which share, and shards that finish together merge once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from genius.errors import UserError
from genius.ranks import Ranks, finish_share, owns, parse_shard, start_share

TWO_NODES = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}


def test_shares_in_rank_and_node_mode() -> None:
    r = Ranks.from_env(TWO_NODES)
    assert (r.rank, r.world, r.local_rank, r.local_world) == (5, 8, 1, 4)
    assert r.shard("rank") == (5, 8) and r.generates("rank")
    # node mode: 2 nodes of 4; rank 5 is on node 1 and not its first process
    assert r.shard("node") == (1, 2) and not r.generates("node")
    assert Ranks.from_env({**TWO_NODES, "RANK": "4", "LOCAL_RANK": "0"}).generates("node")
    assert Ranks.from_env({}).shard("rank") is None and Ranks.from_env({}).shard("node") is None
    one_node = Ranks.from_env({"RANK": "0", "WORLD_SIZE": "4", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "4"})
    assert one_node.shard("node") is None and one_node.shard("rank") == (0, 4)
    assert [i for i in range(10) if owns((1, 4), i)] == [1, 5, 9] and owns(None, 7)
    assert parse_shard(None, "node", TWO_NODES) == (1, 2) and parse_shard("2/3", env=TWO_NODES) == (2, 3)


def test_a_launch_that_does_not_add_up_is_one_line() -> None:
    with pytest.raises(UserError, match="not a consistent launch"):
        Ranks.from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(UserError, match="WORLD_SIZE='x'"):
        Ranks.from_env({"WORLD_SIZE": "x"})


def test_the_engine_device_follows_the_local_rank_only_on_gpus_in_rank_mode() -> None:
    r = Ranks.from_env(TWO_NODES)
    assert r.device("cpu", "rank") == "cpu" and r.device("cuda:3", "rank") == "cuda:3"
    assert r.device("auto", "node") == "auto"


def _finish_separately(folder: str, i: int, barrier, merges: str) -> None:
    barrier.wait()
    finish_share(Path(folder), "trees", (i, 2), lambda: Path(merges).open("a").write(f"{i}\n"), together=False)


def test_separate_shards_finishing_at_the_same_moment_merge_once(tmp_path: Path) -> None:
    """Two processes (separate jobs) end their shares at one instant, 20 times: each time
    exactly one of them merges (the file lock), and no marker is left."""
    ctx = multiprocessing.get_context("fork")
    merges = tmp_path / "merges.txt"
    for _ in range(20):
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_finish_separately, args=(str(tmp_path), i, barrier, str(merges)))
                 for i in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
    assert len(merges.read_text().splitlines()) == 20
    assert not list(tmp_path.glob(".trees.done*"))


def test_in_one_launch_shard_zero_waits_for_the_others_and_merges(tmp_path: Path) -> None:
    merged = []
    start_share(tmp_path, "samples", (0, 2))
    waiter = threading.Thread(target=lambda: merged.append(
        finish_share(tmp_path, "samples", (0, 2), lambda: merged.append("merge"), together=True)))
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and merged == []  # shard 1 is not done: shard 0 waits
    assert finish_share(tmp_path, "samples", (1, 2), lambda: merged.append("wrong"), together=True) is False
    waiter.join(10)
    assert merged == ["merge", True] and not list(tmp_path.glob(".samples.done*"))
