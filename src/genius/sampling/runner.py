"""A resumable, shardable run of the search over a list of queries, into a run directory.

Files (``<s>`` is empty for a one-machine run, ``.<i>-of-<n>`` for shard i of n):

- ``trees<s>.jsonl``: one foresight tree per query, appended (and fsynced) as each query ends;
- ``pairs<s>.jsonl``: its preference pairs, appended right after the tree;
- ``stats<s>.json``: counts, tokens, speed and advantage quantiles;
- ``sample_config.yaml``: the settings, checked on resume.

A rerun of the same command reads the trees written so far (a torn last line, the trace of a
SIGKILL, is dropped), rebuilds the pairs file from them (so a kill between a tree and its pairs
loses nothing and duplicates nothing) and samples only the queries not done yet. Shard i of n takes
the queries whose index is i modulo n; once all shards are done they are merged, once (the rule
of ``genius.ranks``), into ``trees.jsonl`` / ``pairs.jsonl`` / ``stats.json`` in query order
(``genius merge`` does the same by hand). What a query samples does not depend on its shard.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from genius import config as configlib
from genius.engines import engine_name
from genius.engines.base import Engine
from genius.errors import UserError
from genius.io import JsonlAppender, atomic_writer, dumps, read_json, read_yaml, truncate_torn_tail, write_json
from genius.queries import Query, QuerySet
from genius.ranks import Shard, finish_share, owns, shard_suffix, start_share
from genius.sampling.config import RUNTIME_KEYS, SampleConfig
from genius.sampling.pairs import pairs_for_tree, unfinished_pairs
from genius.sampling.scoring import quantiles
from genius.sampling.search import QuerySearch, advance

CONFIG_NAME = "sample_config.yaml"


def check_config(run_dir: Path, cfg: SampleConfig, force: bool) -> None:
    """Write the config copy, or refuse a resume whose settings differ (unless forced)."""
    path = run_dir / CONFIG_NAME
    new = configlib.to_dict(cfg)
    if path.is_file() and not force:
        old = read_yaml(path) or {}
        changed = configlib.diff(old, new, ignore=RUNTIME_KEYS)
        if changed:
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
            raise UserError(f"{path}: this run was started with other settings ({shown}); rerun with the same "
                            "settings, use another output folder, or pass --force to go on with the new ones")
    configlib.save(cfg, path)


def iter_trees(path: Path) -> Iterator[dict]:
    """Stream a trees file (after dropping a torn last line)."""
    if not path.is_file():
        return
    truncate_torn_tail(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg}); the trees file is damaged") from None


def rewrite_pairs(trees_path: Path, pairs_path: Path, cfg: SampleConfig) -> int:
    """pairs file := the pairs of every tree in the trees file (atomically); returns the count."""
    count = 0
    with atomic_writer(pairs_path) as f:
        for tree in iter_trees(trees_path):
            for p in pairs_for_tree(tree, cfg):
                f.write(dumps(p) + "\n")
                count += 1
    return count


def run_sample(cfg: SampleConfig, queries: QuerySet | Sequence[Query], run_dir: str | Path, engine: Engine, *,
               force: bool = False, shard: Shard | None = None, together: bool = False,
               progress: bool = True) -> dict:
    """Sample foresight trees and pairs for ``queries`` into ``run_dir``; resume what is there.

    Returns the stats (also written to stats<s>.json), with ``merged_here``: whether trees.jsonl
    now holds every shard (always for a one-process run). ``shard=(i, n)`` runs the queries with
    index % n == i and the shards are merged once (genius.ranks: ``together`` when they are
    the processes of one launch); ``force`` goes on with changed settings instead of refusing.
    """
    cfg.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_config(run_dir, cfg, force)
    suffix = shard_suffix(shard)
    start_share(run_dir, "trees", shard)
    trees_path, pairs_path = run_dir / f"trees{suffix}.jsonl", run_dir / f"pairs{suffix}.jsonl"
    done = {t["query_id"] for t in iter_trees(trees_path)}
    if shard is not None:  # and what an earlier launch (maybe with another shard count) merged
        done |= {t["query_id"] for t in iter_trees(run_dir / "trees.jsonl")}
    rewrite_pairs(trees_path, pairs_path, cfg)
    mine = [q for q in queries if owns(shard, q.index)]
    todo = [q for q in mine if q.id not in done]
    counts = dict(getattr(queries, "counts", {}))
    start = time.perf_counter()
    tokens = _search_all(todo, cfg, engine, trees_path, pairs_path, progress)
    seconds = time.perf_counter() - start
    stats = summarize(trees_path, pairs_path, cfg)
    stats.update({
        "queries_this_run": len(todo), "queries_resumed": len(mine) - len(todo),
        "generated_tokens": tokens, "seconds": round(seconds, 3),
        "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        "queries_per_min": 60 * len(todo) / seconds if seconds > 0 else 0.0,
        "input": counts, "shard": list(shard) if shard else None, "engine": engine_name(engine), "complete": True,
    })
    write_json(run_dir / f"stats{suffix}.json", stats)
    merged = finish_share(run_dir, "trees", shard, lambda: merge_shards(run_dir, shards=shard[1]),
                          together=together) if shard is not None else True
    return {**stats, "merged_here": merged}


def _search_all(todo: list[Query], cfg: SampleConfig, engine: Engine, trees_path: Path, pairs_path: Path,
                progress: bool) -> int:
    """The lockstep loop: keep as many queries active as ``batch_sequences`` allows."""
    pending = deque(todo)
    active: list[QuerySearch] = []
    per_call = max(1, cfg.batch_sequences // cfg.first_step_candidates)
    tokens = 0
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="query", desc="sample", disable=not progress, dynamic_ncols=True)
    with JsonlAppender(trees_path) as trees, JsonlAppender(pairs_path) as pairs, bar:
        while pending or active:
            while pending and len(active) < per_call:
                active.append(QuerySearch.start(pending.popleft(), engine, cfg))
            tokens += advance(active, engine, cfg)
            for s in active:
                if s.done:
                    tree = s.record(engine.tokenizer)
                    trees.write(tree)  # the tree first: resume rebuilds pairs from trees
                    pairs.write_many(pairs_for_tree(tree, cfg))
                    bar.update(1)
            active = [s for s in active if not s.done]
            bar.set_postfix_str(f"{tokens / max(time.perf_counter() - start, 1e-9):.0f} tok/s")
    return tokens


def summarize(trees_path: Path, pairs_path: Path, cfg: SampleConfig) -> dict:
    """Counts and advantage quantiles over every tree and pair written so far."""
    n_trees = ended = no_steps = step_tok = roll_tok = unfinished = rollouts = cut = 0
    adv: list[float] = []
    for tree in iter_trees(trees_path):
        n_trees += 1
        unfinished += unfinished_pairs(tree, cfg)
        for step in tree["steps"]:
            for c in step["candidates"]:
                if c.get("rollout_finish") is not None:
                    rollouts += 1
                    cut += c["rollout_finish"] == "length"
        ended += bool(tree["ended"])
        no_steps += not tree["steps"]
        step_tok += tree["generated_tokens"]["step"]
        roll_tok += tree["generated_tokens"]["rollout"]
        adv.extend(c["A"] for step in tree["steps"] for c in step["candidates"] if c["A"] is not None)
    a_w: list[float] = []
    a_l: list[float] = []
    n_pairs = 0
    if pairs_path.is_file():
        with pairs_path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    p = json.loads(line)
                    n_pairs += 1
                    a_w.append(p["A_w"] if p["A_w"] is not None else float("nan"))
                    a_l.append(p["A_l"] if p["A_l"] is not None else float("nan"))
    return {
        "queries": n_trees, "pairs": n_pairs, "queries_ended_early": ended, "queries_without_steps": no_steps,
        "pairs_with_a_cut_side": unfinished, "unfinished": cfg.unfinished,
        "rollouts": rollouts, "rollouts_cut": cut, "rollouts_cut_share": cut / rollouts if rollouts else 0.0,
        "total_step_tokens": step_tok, "total_rollout_tokens": roll_tok,
        "advantage_quantiles": quantiles(adv),
        "pair_advantage_quantiles": {"A_w": quantiles(a_w), "A_l": quantiles(a_l)},
    }


def _shard_stats(run_dir: Path, n: int) -> list[dict | None]:
    out = []
    for i in range(n):
        path = run_dir / f"stats{shard_suffix((i, n))}.json"
        out.append(read_json(path) if path.is_file() else None)
    return out


def find_shard_count(run_dir: Path) -> int:
    counts = {p.name.split("-of-")[1].split(".")[0] for p in run_dir.glob("trees.*-of-*.jsonl")}
    if not counts:
        raise UserError(f"{run_dir}: no shard files (trees.<i>-of-<n>.jsonl) to merge")
    if len(counts) > 1:
        raise UserError(f"{run_dir}: shard files of different shard counts ({', '.join(sorted(counts))}); "
                        "keep one set")
    return int(counts.pop())


def merge_shards(run_dir: str | Path, *, shards: int | None = None, allow_partial: bool = False) -> dict:
    """Combine the trees of all shards (and of an earlier merge) into trees.jsonl / pairs.jsonl in
    query order, each query once, and write stats.json. Refuses missing or unfinished shards of
    the ``shards`` count (default: the one count of the shard files) unless allow_partial. Shard
    files of another count (a launch with other processes) are merged too: a query samples the
    same whatever its shard, so which copy is kept does not matter."""
    run_dir = Path(run_dir)
    n = shards or find_shard_count(run_dir)
    shard_stats = _shard_stats(run_dir, n)
    missing = [str(i) for i, s in enumerate(shard_stats) if s is None or not s.get("complete")]
    if missing and not allow_partial:
        raise UserError(f"{run_dir}: shard(s) {', '.join(missing)} of {n} not finished; run them "
                        "(or merge with --partial)")
    cfg = configlib.load(SampleConfig, run_dir / CONFIG_NAME)
    index: list[tuple[int, str, Path, int]] = []
    sources = [run_dir / "trees.jsonl", *sorted(run_dir.glob("trees.*-of-*.jsonl"))]
    for path in sources:
        if not path.is_file():
            continue
        truncate_torn_tail(path)
        with path.open("rb") as f:
            offset = 0
            for line in f:
                if line.strip():
                    t = json.loads(line)
                    index.append((t["index"], t["query_id"], path, offset))
                offset += len(line)
    index.sort(key=lambda row: (row[0], row[1]))
    trees_path, pairs_path = run_dir / "trees.jsonl", run_dir / "pairs.jsonl"
    seen: set[str] = set()
    handles: dict[Path, BinaryIO] = {}
    try:
        with atomic_writer(trees_path, "wb") as out:
            for _, qid, path, offset in index:
                if qid in seen:
                    continue
                seen.add(qid)
                f = handles.setdefault(path, path.open("rb"))
                f.seek(offset)
                out.write(f.readline())
    finally:
        for f in handles.values():
            f.close()
    rewrite_pairs(trees_path, pairs_path, cfg)
    stats = summarize(trees_path, pairs_path, cfg)
    done = [s for s in shard_stats if s]
    seconds = max((s["seconds"] for s in done), default=0.0)
    tokens = sum(s["generated_tokens"] for s in done)
    stats.update({"shards": n, "shards_merged": len(done), "generated_tokens": tokens, "seconds": seconds,
                  "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
                  "input": done[0].get("input", {}) if done else {}, "complete": not missing,
                  "engine": done[0].get("engine") if done else None})
    write_json(run_dir / "stats.json", stats)
    return stats
