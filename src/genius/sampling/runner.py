"""A resumable, shardable run of the search over a list of queries, into a run directory.

Files (``<s>`` is empty for a one-machine run, ``.<i>-of-<n>`` for shard i of n):

- ``trees<s>.jsonl``: one foresight tree per query, appended (and fsynced) as each query ends;
- ``pairs<s>.jsonl``: its preference pairs, appended right after the tree;
- ``stats<s>.json``: counts, tokens, speed and advantage quantiles (``queries``: the trees in
  ``trees<s>.jsonl`` when the shard finished, which the merge checks the file against);
- ``sample_config.yaml``: the settings, checked on resume;
- ``sample_inputs.yaml``: what the run samples from beyond its settings (``SampleInputs``),
  checked on resume by the same rule as the settings (a run resumed with another model or other
  queries would mix them into one run): the model spec (a local folder as its real path) and
  the query source (a file by name + sha256 of its bytes, its path free to change; a hub dataset
  by id + split). Written by ``genius sample``; ``--force`` goes on with the new ones and records
  them.

A rerun of the same command reads the trees written so far (a torn last line, the trace of a
SIGKILL, is dropped), rebuilds the pairs file from them (so a kill between a tree and its pairs
loses nothing and duplicates nothing) and samples only the queries not done yet. Shard i of n takes
the queries whose index is i modulo n; once all shards are done they are merged, once (the rule
of ``genius.ranks``), into ``trees.jsonl`` / ``pairs.jsonl`` / ``stats.json`` in query order
(``genius merge`` does the same by hand). What a query samples does not depend on its shard. A
shard file holding fewer trees than its stats recorded (emptied or cut by a crash) is refused:
nothing is merged until that shard is run again.

Every reader goes through ``genius.io`` and ``genius.sampling.pairs.check_tree``: bytes that are not
UTF-8, a line that is not JSON or a tree record without a field it needs are one line naming the
file, the line (and byte offset, or field).

A query whose prompt leaves the engine's context no room for a step (``search.has_room``) is
skipped before any generation: counted in stats (``queries_too_long``, with the first ids) and
warned about on stderr, never written as a tree. It is not done, so a rerun checks it again: with
the same engine it is skipped and counted again (nothing is generated for it, ever), with a
larger context (engine_options.max_model_len may change on resume) it is sampled then.

The progress bar counts query-steps (queries x K): it moves as the engine's sequences finish
within each step, a query that ends early counts its steps left as done, and the postfix shows
the queries written and the tokens generated per second; tqdm adds the rate and the ETA.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from genius import config as configlib
from genius.config import may_change
from genius.engines import engine_name
from genius.engines.base import Engine
from genius.errors import UserError, where
from genius.io import (JsonlAppender, atomic_writer, dumps, iter_jsonl, iter_jsonl_offsets, read_json, sha256_file,
                       truncate_torn_tail, write_json)
from genius.queries import Query, QuerySet
from genius.ranks import Shard, finish_share, owns, shard_suffix, start_share
from genius.sampling.config import SampleConfig
from genius.sampling.pairs import check_tree, pairs_for_tree, unfinished_pairs
from genius.sampling.scoring import quantiles
from genius.sampling.search import QuerySearch, advance

CONFIG_NAME = "sample_config.yaml"
INPUTS_NAME = "sample_inputs.yaml"
TOO_LONG_IDS_KEPT = 20
"""How many ids of over-long queries stats.json lists (the count is always whole)."""
BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} query-steps "
              "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
"""tqdm's default bar with the count to one decimal: steps advance in fractions as sequences finish."""


@dataclass(frozen=True)
class SampleInputs:
    """What a run samples from beyond its settings (``sample_inputs.yaml``): a resume with another
    model or other queries would mix them into one run, so it must match (the one resume rule)."""

    model: str
    """The model spec (a local folder as its real path)."""
    queries: str
    """The query file's name (the default query ids, <stem>-<line>, are made of it) or the hub dataset id."""
    queries_sha256: str | None = None
    """sha256 of the query file's bytes (None: a hub dataset)."""
    split: str | None = None
    """The split of a hub dataset (None: a file)."""
    queries_path: str | None = may_change(None)
    """Where the query file is now: the same bytes under the same name are the same queries wherever
    the file has moved."""


def sample_inputs(model: str, queries: str | Path, split: str = "train") -> SampleInputs:
    """The inputs of a run on ``model`` and the query file or hub dataset ``queries``."""
    folder = Path(model).expanduser()
    spec = str(folder.resolve()) if folder.is_dir() else model
    path = Path(queries).expanduser()
    if path.is_file():
        return SampleInputs(model=spec, queries=path.name, queries_sha256=sha256_file(path),
                            queries_path=str(path.resolve()))
    return SampleInputs(model=spec, queries=str(queries), split=split)


def check_inputs(run_dir: Path, inputs: SampleInputs, *, force: bool = False) -> None:
    """Refuse to resume ``run_dir`` with another model or other queries than its recorded inputs
    (none recorded: a fresh run, or one sampled before they were, goes on). Writes nothing."""
    configlib.check_resume(run_dir / INPUTS_NAME, inputs, force=force,
                           hint=", or pass --force to go on with the new ones (their trees join the old ones)")


def check_config(run_dir: Path, cfg: SampleConfig, force: bool, inputs: SampleInputs | None = None) -> None:
    """Refuse a resume whose settings or inputs differ (genius.config.check_resume; unless
    forced), then write the config copy and the inputs. Called once the inputs (queries, engine)
    are checked."""
    path = run_dir / CONFIG_NAME
    configlib.check_resume(path, cfg, force=force)
    if inputs is not None:
        check_inputs(run_dir, inputs, force=force)
    configlib.save(cfg, path)
    if inputs is not None:
        configlib.save(inputs, run_dir / INPUTS_NAME)


def iter_trees(path: Path) -> Iterator[dict]:
    """Stream the records of a trees file (after dropping a torn last line); nothing when it is
    absent. Their fields are not checked (a reader of a few fields takes what it needs):
    ``checked_trees`` gives trees with every field the pairs, the stats and the merge read."""
    for _, _, record in _records(path):
        yield record


def checked_trees(path: Path) -> Iterator[dict]:
    """``iter_trees`` with each record checked (genius.sampling.pairs.check_tree): a record without
    a field the pairs, the stats or the merge read is one line naming file, line and field."""
    for _, _, tree in _indexed_trees(path):
        yield tree


def _records(path: Path) -> Iterator[tuple[int, int, dict]]:
    if not path.exists():
        return
    if path.is_file():
        truncate_torn_tail(path)
    yield from iter_jsonl_offsets(path)


def _indexed_trees(path: Path) -> Iterator[tuple[int, int, dict]]:
    """(line number, byte offset, tree) of every tree record of a trees file, each checked."""
    for lineno, offset, record in _records(path):
        yield lineno, offset, check_tree(record, where(path, lineno))


def rewrite_pairs(trees_path: Path, pairs_path: Path, cfg: SampleConfig,
                  check: Callable[[int, int], None] | None = None) -> int:
    """pairs file := the pairs of every tree in the trees file (atomically); returns the count.
    ``check(trees, pairs)`` sees the counts before the file is replaced and may refuse (raise):
    then the old file stays as it was."""
    count = trees = 0
    with atomic_writer(pairs_path) as f:
        for tree in checked_trees(trees_path):
            trees += 1
            for p in pairs_for_tree(tree, cfg):
                f.write(dumps(p) + "\n")
                count += 1
        if check is not None:
            check(trees, count)
    return count


def run_sample(cfg: SampleConfig, queries: QuerySet | Sequence[Query], run_dir: str | Path, engine: Engine, *,
               force: bool = False, shard: Shard | None = None, together: bool = False,
               progress: bool = True, inputs: SampleInputs | None = None) -> dict:
    """Sample foresight trees and pairs for ``queries`` into ``run_dir``; resume what is there.

    Returns the stats (also written to stats<s>.json), with ``merged_here``: whether trees.jsonl
    now holds every shard (always for a one-process run). ``shard=(i, n)`` runs the queries with
    index % n == i and the shards are merged once (genius.ranks: ``together`` when they are
    the processes of one launch); ``force`` goes on with changed settings instead of refusing.
    ``inputs`` (``sample_inputs``): checked against the folder's recorded ones, then recorded.
    """
    cfg.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_config(run_dir, cfg, force, inputs)
    suffix = shard_suffix(shard)
    start_share(run_dir, "trees", shard)
    trees_path, pairs_path = run_dir / f"trees{suffix}.jsonl", run_dir / f"pairs{suffix}.jsonl"
    done = {t["query_id"] for t in checked_trees(trees_path)}
    if shard is not None:  # and what an earlier launch (maybe with another shard count) merged
        done |= {t["query_id"] for t in checked_trees(run_dir / "trees.jsonl")}
    rewrite_pairs(trees_path, pairs_path, cfg)
    mine = [q for q in queries if owns(shard, q.index)]
    todo = [q for q in mine if q.id not in done]
    counts = dict(getattr(queries, "counts", {}))
    start = time.perf_counter()
    tokens, too_long = _search_all(todo, cfg, engine, trees_path, pairs_path, progress)
    seconds = time.perf_counter() - start
    sampled = len(todo) - len(too_long)
    stats = summarize(trees_path, pairs_path, cfg)
    stats.update({
        "queries_this_run": sampled, "queries_resumed": len(mine) - len(todo),
        "queries_too_long": len(too_long), "queries_too_long_ids": too_long[:TOO_LONG_IDS_KEPT],
        "generated_tokens": tokens, "seconds": round(seconds, 3),
        "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        "queries_per_min": 60 * sampled / seconds if seconds > 0 else 0.0,
        "input": counts, "shard": list(shard) if shard else None, "engine": engine_name(engine), "complete": True,
    })
    write_json(run_dir / f"stats{suffix}.json", stats)
    if too_long:
        shown = ", ".join(too_long[:3]) + (", ..." if len(too_long) > 3 else "")
        print(f"genius sample: warning: {len(too_long)} queries skipped, their prompts leave no room to generate "
              f"in the engine's context of {engine.max_context} tokens ({shown}; stats.json queries_too_long)",
              file=sys.stderr)
    merged = finish_share(run_dir, "trees", shard, lambda: merge_shards(run_dir, shards=shard[1]),
                          together=together) if shard is not None else True
    return {**stats, "merged_here": merged}


def _search_all(todo: list[Query], cfg: SampleConfig, engine: Engine, trees_path: Path, pairs_path: Path,
                progress: bool) -> tuple[int, list[str]]:
    """The lockstep loop: keep as many queries active as ``batch_sequences`` allows. Returns the
    tokens generated and the ids of the queries skipped as too long for the context."""
    pending = deque(todo)
    active: list[QuerySearch] = []
    per_call = max(1, cfg.batch_sequences // cfg.first_step_candidates)
    tokens, written, retired = 0, 0, 0  # retired: query-steps of the queries written or skipped
    too_long: list[str] = []
    start = time.perf_counter()
    bar = tqdm(total=len(todo) * cfg.steps, unit="step", desc="sample", disable=not progress, dynamic_ncols=True,
               bar_format=BAR_FORMAT)
    with JsonlAppender(trees_path) as trees, JsonlAppender(pairs_path) as pairs, bar:
        while pending or active:
            while pending and len(active) < per_call:
                search = QuerySearch.start(pending.popleft(), engine, cfg)
                if search.fits(engine.max_context):
                    active.append(search)
                else:
                    too_long.append(search.query.id)
                    retired += cfg.steps
            tokens += advance(active, engine, cfg, bar.update)
            for s in active:
                if s.done:
                    tree = s.record(engine.tokenizer)
                    trees.write(tree)  # the tree first: resume rebuilds pairs from trees
                    pairs.write_many(pairs_for_tree(tree, cfg))
                    written += 1
                    retired += cfg.steps  # one that ended early skips its steps left
            active = [s for s in active if not s.done]
            # What the engine did not report as it went (and the steps skipped) lands here.
            bar.update(max(0.0, retired + sum(s.k - 1 for s in active) - bar.n))
            rate = tokens / max(time.perf_counter() - start, 1e-9)
            skipped = f", {len(too_long)} too long" if too_long else ""
            bar.set_postfix_str(f"{written}/{len(todo)} queries{skipped}, {tokens} tok, {rate:.0f} tok/s")
    return tokens, too_long


def summarize(trees_path: Path, pairs_path: Path, cfg: SampleConfig) -> dict:
    """Counts and advantage quantiles over every tree and pair written so far."""
    n_trees = ended = no_steps = step_tok = roll_tok = unfinished = rollouts = cut = 0
    adv: list[float] = []
    for tree in checked_trees(trees_path):
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
    for _, p in (iter_jsonl(pairs_path) if pairs_path.exists() else ()):
        n_pairs += 1
        a_w.append(p["A_w"] if p.get("A_w") is not None else float("nan"))
        a_l.append(p["A_l"] if p.get("A_l") is not None else float("nan"))
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


def _check_shard_count(run_dir: Path, trees_path: Path, found: int) -> None:
    """Refuse a shard file that holds fewer trees than its shard counted when it finished (its
    stats): its records were lost (a crash emptied or cut the file), and merging it would replace
    a whole run with a part. More is fine (a resumed shard added to it)."""
    suffix = trees_path.name[len("trees"):-len(".jsonl")]
    if not suffix:
        return
    stats_path = run_dir / f"stats{suffix}.json"
    stats = read_json(stats_path) if stats_path.exists() else None
    if not isinstance(stats, dict) or not stats.get("complete"):
        return
    recorded = stats.get("queries")
    if isinstance(recorded, int) and found < recorded:
        shard = suffix[1:].replace("-of-", "/")
        raise UserError(f"{trees_path}: {found} trees, but shard {shard} recorded {recorded} when it finished "
                        f"({stats_path.name}); nothing merged: run shard {shard} again (genius sample ... --shard "
                        f"{shard}) to sample its missing queries")


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
        rows = [(t["index"], t["query_id"], path, offset) for _, offset, t in _indexed_trees(path)]
        _check_shard_count(run_dir, path, len(rows))
        index.extend(rows)
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
    too_long = [i for s in done for i in s.get("queries_too_long_ids", [])][:TOO_LONG_IDS_KEPT]
    stats.update({"shards": n, "shards_merged": len(done), "generated_tokens": tokens, "seconds": seconds,
                  "queries_too_long": sum(s.get("queries_too_long", 0) for s in done),
                  "queries_too_long_ids": too_long,
                  "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
                  "input": done[0].get("input", {}) if done else {}, "complete": not missing,
                  "engine": done[0].get("engine") if done else None})
    write_json(run_dir / "stats.json", stats)
    return stats
