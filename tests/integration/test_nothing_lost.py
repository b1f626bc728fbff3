"""No command replaces good output with less (issue 17), end to end on the tiny model: an empty or
smaller trees input does not replace a pairs file, a shard that lost its trees is not merged, a
resumed genius sample refuses another model or other queries (each unless --force), and two
writers of one folder: the second is refused, the first's folder stays as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genius.cli import main
from genius.lock import LOCK_NAME
from genius.sampling.config import SampleConfig
from genius.sampling.pairs import pairs_for_tree
from genius.sampling.runner import INPUTS_NAME

SMALL = ["--beams", "1", "--candidates", "2", "--steps", "2", "--max-step-tokens", "4", "--max-rollout-tokens", "6",
         "--unfinished", "keep", "--no-progress", "--dtype", "fp32", "--device", "cpu"]


def write_queries(path: Path, n: int, start: int = 0) -> Path:
    path.write_text("".join(json.dumps({"instruction": f"Add {i} and 1.", "input": ""}) + "\n"
                            for i in range(start, start + n)))
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def error_line(err: str, command: str) -> str:
    """The one error line a command ends with (no traceback before it)."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"genius {command}: error: "), err
    return last


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the lock files (a writer notes itself there while it holds them)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(LOCK_NAME)}


@pytest.fixture(scope="module")
def sampled(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-process genius sample run of 3 queries."""
    tmp = tmp_path_factory.mktemp("sampled")
    queries = write_queries(tmp / "q.jsonl", 3)
    assert main(["sample", str(queries), "--out", str(tmp / "run"), "--model", str(tiny_model_dir), *SMALL]) == 0
    assert len(lines(tmp / "run" / "trees.jsonl")) == 3 and lines(tmp / "run" / "pairs.jsonl")
    return tmp / "run"


@pytest.fixture(scope="module")
def sharded(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """genius sample in 2 shards of 1 query each, merged by the last."""
    tmp = tmp_path_factory.mktemp("sharded")
    queries = write_queries(tmp / "q.jsonl", 2)
    for shard in ("0/2", "1/2"):
        assert main(["sample", str(queries), "--out", str(tmp / "run"), "--model", str(tiny_model_dir),
                     "--shard", shard, *SMALL]) == 0
    assert len(lines(tmp / "run" / "trees.jsonl")) == 2
    return tmp / "run"


def test_pairs_from_an_empty_trees_file_do_not_replace_a_pairs_file(sampled: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pairs = Path(shutil.copy(sampled / "pairs.jsonl", tmp_path / "pairs.jsonl"))
    before, had = pairs.read_bytes(), len(lines(pairs))
    empty = tmp_path / "trees.jsonl"
    empty.write_text("")
    argv = ["pairs", str(empty), "--out", str(pairs), "--unfinished", "keep"]
    capsys.readouterr()
    assert main(argv) == 2
    line = error_line(capsys.readouterr().err, "pairs")
    assert f"{empty}: no trees in it" in line and f"({pairs} keeps its {had} pairs)" in line and "--force" in line
    assert pairs.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "trees.jsonl"]  # no temporary file left
    assert main([*argv, "--force"]) == 0 and pairs.read_bytes() == b""


def test_pairs_that_would_be_fewer_than_the_file_holds_are_refused(sampled: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    trees = lines(sampled / "trees.jsonl")
    cfg = SampleConfig(unfinished="keep")
    richest = max(range(len(trees)), key=lambda i: len(pairs_for_tree(trees[i], cfg)))
    fewer = [t for i, t in enumerate(trees) if i != richest]  # e.g. a trees file of an interrupted copy
    part = tmp_path / "part" / "trees.jsonl"
    part.parent.mkdir()
    part.write_text("".join(json.dumps(t) + "\n" for t in fewer))
    shutil.copy(sampled / "sample_config.yaml", part.parent)
    pairs = Path(shutil.copy(sampled / "pairs.jsonl", tmp_path / "pairs.jsonl"))
    before, had = pairs.read_bytes(), len(lines(pairs))
    would = sum(len(pairs_for_tree(t, cfg)) for t in fewer)
    assert would < had
    capsys.readouterr()
    assert main(["pairs", str(part), "--out", str(pairs)]) == 2
    line = error_line(capsys.readouterr().err, "pairs")
    assert f"{pairs}: has {had} pairs, this would write {would} (from {len(fewer)} trees in {part})" in line
    assert pairs.read_bytes() == before
    assert main(["pairs", str(sampled / "trees.jsonl"), "--out", str(pairs)]) == 0  # as many: replaced
    assert len(lines(pairs)) == had
    assert main(["pairs", str(part), "--out", str(pairs), "--force"]) == 0 and len(lines(pairs)) == would


def test_merge_refuses_a_shard_emptied_by_a_crash_and_merges_once_it_is_rerun(
        sharded: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Path(shutil.copytree(sharded, tmp_path / "run"))
    (run / "trees.1-of-2.jsonl").write_bytes(b"")
    before = snapshot(run)
    capsys.readouterr()
    assert main(["merge", str(run)]) == 2
    line = error_line(capsys.readouterr().err, "merge")
    assert (f"{run / 'trees.1-of-2.jsonl'}: 0 trees, but shard 1/2 recorded 1 when it finished (stats.1-of-2.json); "
            "nothing merged") in line
    assert snapshot(run) == before
    # Its query is in the earlier merge, so the rerun shard has nothing left to sample and records 0.
    queries = write_queries(tmp_path / "q.jsonl", 2)
    assert main(["sample", str(queries), "--out", str(run), "--model", str(tiny_model_dir), "--shard", "1/2",
                 *SMALL]) == 0
    assert json.loads((run / "stats.1-of-2.json").read_text())["queries"] == 0
    assert main(["merge", str(run)]) == 0
    assert [t["query_id"] for t in lines(run / "trees.jsonl")] == ["q-1", "q-2"]


def test_a_resume_with_another_model_is_refused_before_it_loads_unless_forced(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries, out = write_queries(tmp_path / "q.jsonl", 2), tmp_path / "run"
    assert main(["sample", str(queries), "--out", str(out), "--model", str(tiny_model_dir), "--limit", "1",
                 *SMALL]) == 0
    other = Path(shutil.copytree(tiny_model_dir, tmp_path / "other-model"))
    before = snapshot(out)
    capsys.readouterr()
    argv = ["sample", str(queries), "--out", str(out), "--model", str(other), *SMALL]
    assert main(argv) == 2
    err = capsys.readouterr().err
    line = error_line(err, "sample")
    assert line.startswith(f"genius sample: error: {out / INPUTS_NAME}: this folder was started with other settings "
                           f"(model: '{tiny_model_dir.resolve()}' -> '{other.resolve()}'); ") and "--force" in line
    assert "engine:" not in err  # refused before the model loaded
    assert snapshot(out) == before
    assert main([*argv, "--force"]) == 0
    assert len(lines(out / "trees.jsonl")) == 2
    assert yaml.safe_load((out / INPUTS_NAME).read_text())["model"] == str(other.resolve())
    # the same model by another path to the same folder (a trailing /) is the same model
    assert main(["sample", str(queries), "--out", str(out), "--model", f"{other}/", *SMALL]) == 0


def test_a_resume_with_another_queries_file_is_refused_unless_forced_and_a_moved_copy_is_not(
        tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queries, out = write_queries(tmp_path / "q.jsonl", 2), tmp_path / "run"
    model = ["--model", str(tiny_model_dir)]
    assert main(["sample", str(queries), "--out", str(out), *model, "--limit", "1", *SMALL]) == 0
    (tmp_path / "moved").mkdir()
    moved = Path(shutil.copy(queries, tmp_path / "moved" / "q.jsonl"))
    assert main(["sample", str(moved), "--out", str(out), *model, *SMALL]) == 0  # the same bytes and name: resumed
    assert [t["query_id"] for t in lines(out / "trees.jsonl")] == ["q-1", "q-2"]
    other = write_queries(tmp_path / "other.jsonl", 2, start=5)
    before = snapshot(out)
    capsys.readouterr()
    assert main(["sample", str(other), "--out", str(out), *model, *SMALL]) == 2
    line = error_line(capsys.readouterr().err, "sample")
    digest = hashlib.sha256(queries.read_bytes()).hexdigest()
    assert (f"{out / INPUTS_NAME}: this folder was started with other settings (queries: 'q.jsonl' -> 'other.jsonl', "
            f"queries_sha256: '{digest}' -> '{hashlib.sha256(other.read_bytes()).hexdigest()}')") in line
    assert snapshot(out) == before
    write_queries(moved, 3)  # the file of the run changed under it
    assert main(["sample", str(moved), "--out", str(out), *model, *SMALL]) == 2
    assert f"(queries_sha256: '{digest}' -> '" in error_line(capsys.readouterr().err, "sample")
    assert snapshot(out) == before
    assert main(["sample", str(other), "--out", str(out), *model, *SMALL, "--force"]) == 0
    assert [t["query_id"] for t in lines(out / "trees.jsonl")] == ["q-1", "q-2", "other-1", "other-2"]


SHARD_HOLDER = ("import sys, time\nfrom genius.lock import hold_folder\n"
                "with hold_folder(sys.argv[1], shard=(0, 2)):\n    print('held', flush=True)\n    time.sleep(300)\n")


def test_two_writers_of_one_folder_the_second_is_refused(sharded: Path, tiny_model_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A process writes shard 0 of 2: a merge (a whole-folder writer) and a second writer of shard
    0 are refused and change nothing; shard 1 of 2 writes beside it."""
    run = Path(shutil.copytree(sharded, tmp_path / "run"))
    queries = write_queries(tmp_path / "q.jsonl", 2)
    sample = ["sample", str(queries), "--out", str(run), "--model", str(tiny_model_dir), *SMALL]
    holder = subprocess.Popen([sys.executable, "-c", SHARD_HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(run)
        capsys.readouterr()
        assert main(["merge", str(run)]) == 2
        line = error_line(capsys.readouterr().err, "merge")
        assert line.startswith(f"genius merge: error: {run}: being written by 1 shard process(es) "
                               f"(pid {holder.pid} on ") and " as shard 0/2 " in line
        assert main([*sample, "--shard", "0/2"]) == 2
        line = error_line(capsys.readouterr().err, "sample")
        assert line.startswith(f"genius sample: error: {run}: shard 0 is already being written by pid {holder.pid} ")
        assert snapshot(run) == before
        assert main([*sample, "--shard", "1/2"]) == 0  # another shard of the same count
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert main(["merge", str(run)]) == 0  # the holder's lock died with it
