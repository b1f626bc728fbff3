"""`genius run` under torchrun with 2 CPU processes (gloo) on the tiny model, against 1 process.

The same config in two run folders: one process, and ``torchrun --nproc-per-node 2``. Sampling
and evaluation split their items over the ranks and rank 0 merges them; training runs on both
ranks. The run files must match: the same queries, trees, pairs, evaluation answers, and the
same training losses within float tolerance. Then a rank is SIGKILLed mid-sampling and the run
restarted: it resumes without losing or duplicating a query.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genius.io import read_json, read_jsonl

pytestmark = pytest.mark.slow

QUERIES = 6


def _config(tmp: Path, model: Path, name: str, **sample) -> Path:
    cfg = {
        "model": str(model), "run_dir": str(tmp / name), "dtype": "fp32", "device": "cpu", "engine": "hf",
        "queries": {"source": "synthetic", "count": QUERIES},
        "sample": {"beams": 2, "candidates": 2, "steps": 2, "max_step_tokens": 6, "max_rollout_tokens": 8,
                   "unfinished": "keep",
                   "batch_sequences": 8, **sample},
        "train": {"loss": "aco", "lr": 1e-3, "max_steps": 3, "per_device_batch_size": 1, "global_batch_size": 2,
                  "max_length": 256, "cpu": True},
        "eval": {"tasks": ["synthetic"], "limit": 6, "max_new_tokens": 8, "batch_size": 2},
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "GENIUS_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}


def _genius_run(cfg: Path, procs: int, **popen) -> subprocess.Popen:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
                if procs > 1 else [sys.executable])
    return subprocess.Popen([*launcher, "-m", "genius.cli", "run", str(cfg)], env=_env(), **popen)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (out or b"").decode()[-3000:]


def _trees(run: Path) -> list[tuple]:
    return [(t["query_id"], [[c["step"] + "|" + c["rollout"] for c in s["candidates"]] for s in t["steps"]])
            for t in read_jsonl(run / "round1" / "sample" / "trees.jsonl")]


def _pairs(run: Path) -> list[dict]:
    return read_jsonl(run / "round1" / "sample" / "pairs.jsonl")


@pytest.fixture(scope="module")
def runs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ranks")
    one = _genius_run(_config(tmp, tiny_model_dir, "one"), 1, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _finish(one)
    two = _genius_run(_config(tmp, tiny_model_dir, "two"), 2, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _finish(two)
    return tmp / "one", tmp / "two"


def test_two_ranks_write_the_files_of_one_process(runs):
    one, two = runs
    assert read_jsonl(one / "queries" / "queries.jsonl") == read_jsonl(two / "queries" / "queries.jsonl")
    assert len(_trees(one)) == QUERIES and _trees(two) == _trees(one)  # same queries, same order, same samples
    assert _pairs(one) and _approx(_pairs(two), _pairs(one))
    for stage in ("eval/base", "round1/eval"):
        a = read_jsonl(one / stage / "synthetic" / "samples.jsonl")
        b = read_jsonl(two / stage / "synthetic" / "samples.jsonl")
        assert [r["id"] for r in b] == [r["id"] for r in a] and len(a) == 6
        assert [r["response"] for r in b] == [r["response"] for r in a]
        ma, mb = read_json(one / stage / "synthetic" / "metrics.json"), read_json(two / stage / "synthetic" / "metrics.json")
        assert (mb["n"], mb["accuracy"], mb["shards"], ma["shards"]) == (ma["n"], ma["accuracy"], 2, 1)
    la = [r["loss"] for r in read_jsonl(one / "round1" / "train" / "train_log.jsonl") if "loss" in r]
    lb = [r["loss"] for r in read_jsonl(two / "round1" / "train" / "train_log.jsonl") if "loss" in r]
    assert len(la) == len(lb) == 3 and lb == pytest.approx(la, rel=1e-4, abs=1e-5)
    # Merged once, by rank 0: no shard markers or temporary files left behind (the lock files of
    # genius.lock stay: empty of meaning once their holders are gone).
    left = [p.name for p in two.rglob(".*") if p.is_file() and not p.name.startswith(".genius.lock")
            and not p.name.endswith(".lock")]
    assert left == []
    assert (two / "report.md").is_file() and (two / "round1" / "eval" / "DONE.json").is_file()


def _approx(a, b) -> bool:
    """Equal records, floats within 1e-6."""
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6, abs=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_approx(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_approx(x, y) for x, y in zip(a, b))
    return a == b


def _rank_pids(launcher: int) -> dict[int, int]:
    """rank -> pid of torchrun's worker processes (read from their environment)."""
    found = {}
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        try:
            if int((child / "stat").read_text().split()[3]) != launcher:
                continue
            env = dict(kv.split("=", 1) for kv in (child / "environ").read_bytes().decode().split("\0") if "=" in kv)
        except (OSError, ValueError):
            continue
        if "RANK" in env:
            found[int(env["RANK"])] = int(child.name)
    return found


def test_a_rank_killed_mid_sampling_resumes_without_duplicates(runs, tiny_model_dir: Path, tmp_path: Path):
    one, _ = runs
    cfg = _config(tmp_path, tiny_model_dir, "killed")
    proc = _genius_run(cfg, 2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shard = tmp_path / "killed" / "round1" / "sample" / "trees.1-of-2.jsonl"
    deadline = time.monotonic() + 300
    while not (shard.is_file() and shard.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before rank 1 wrote a tree"
        time.sleep(0.02)
    os.kill(_rank_pids(proc.pid)[1], signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode != 0  # torchrun stops the launch when a rank dies
    assert not (tmp_path / "killed" / "round1" / "sample" / "DONE.json").exists()
    written = shard.read_text().count("\n")
    assert 1 <= written < QUERIES // 2
    _finish(_genius_run(cfg, 2, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    killed = tmp_path / "killed"
    ids = [t["query_id"] for t in read_jsonl(killed / "round1" / "sample" / "trees.jsonl")]
    assert len(ids) == len(set(ids)) == QUERIES
    assert _trees(killed) == _trees(one) and _approx(_pairs(killed), _pairs(one))


def test_sample_and_eval_commands_under_torchrun_match_one_process(tiny_model_dir: Path, tmp_path: Path):
    """`genius sample` and `genius eval` on 2 ranks: the merged files equal a one-process run's."""
    from genius import synthetic

    queries = tmp_path / "queries.jsonl"
    synthetic.write_queries(queries, synthetic.generate(5, seed=1, split="train"))
    common = ["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "fp32", "--engine", "hf"]
    sample = ["sample", str(queries), *common, "--beams", "2", "--candidates", "2", "--steps", "2",
              "--max-step-tokens", "6", "--max-rollout-tokens", "6", "--unfinished", "keep", "--no-progress"]
    evaluate = ["eval", *common, "--tasks", "synthetic", "--limit", "5", "--max-new-tokens", "8",
                "--samples", "2", "--batch-size", "2"]
    for procs in (1, 2):
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
                    if procs > 1 else [sys.executable])
        for args in ([*sample, "--out", str(tmp_path / f"s{procs}")], [*evaluate, "--out", str(tmp_path / f"e{procs}")]):
            done = subprocess.run([*launcher, "-m", "genius.cli", *args], env=_env(), capture_output=True, timeout=300)
            assert done.returncode == 0, done.stderr.decode()[-3000:]
    # Scores agree to float rounding (other batch shapes), everything else exactly.
    for name in ("trees.jsonl", "pairs.jsonl"):
        one, two = read_jsonl(tmp_path / "s1" / name), read_jsonl(tmp_path / "s2" / name)
        assert one and _approx(two, one)
    one = read_jsonl(tmp_path / "e1" / "synthetic" / "samples.jsonl")
    two = read_jsonl(tmp_path / "e2" / "synthetic" / "samples.jsonl")
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in one]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in two] == strip and len(one) == 5
    assert (tmp_path / "e2" / "results.md").is_file() and not list((tmp_path / "e2" / "synthetic").glob("samples.*-of-*"))
