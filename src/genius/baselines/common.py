"""What all baseline builders share: queries, chat prompts, generation, resumable output.

A builder turns a batch of queries into, per query, the training records it keeps (pairs or
SFT examples, in the schema of ``genius.schema``) and a *detail* record (every sample, score
and vote, for inspection). ``run_builder`` drives it over all queries with a progress bar,
writing ``<out>/pairs.jsonl`` or ``<out>/sft.jsonl`` and ``<out>/candidates.jsonl`` one batch
at a time; a rerun skips the queries whose detail record is already on disk.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from genius.baselines.config import BaselineConfig
from genius.config import check_resume, to_dict
from genius.engines.base import Engine, SamplingParams
from genius.errors import UserError, where
from genius.io import JsonlAppender, atomic_write_text, dumps, iter_jsonl, read_jsonl, write_yaml
from genius.models import chat_prompt_ids
from genius.queries import Query, load_queries, record_id, record_response, record_text
from genius.ranks import Shard, finish_share, owns, shard_suffix, start_share
from genius.schema import prompt_messages

CANDIDATES = "candidates.jsonl"
CONFIG_COPY = "baseline.yaml"


@dataclass
class QueryResult:
    query_id: str
    records: list[dict]
    """Training records kept for this query (may be empty: no usable pair)."""
    detail: dict
    """Everything sampled and scored for this query (written to candidates.jsonl)."""


Process = Callable[[list[Query], Engine | None, BaselineConfig, int], list[QueryResult]]


def as_query(item: Any, index: int, system_prompt: str | None = None, source: str = "queries") -> Query:
    """A query record (a dict) or a Query -> the Query at position ``index``, the system prompt
    put first when it has no system turn.

    A record's id is ``query_id`` or ``id`` (else ``q<index>``); its query ``messages`` or
    ``prompt`` (a string or chat messages), else the text genius.queries reads (``instruction``
    [+ ``input``] or ``question``); its corpus response ``output`` or ``response``.
    """
    if isinstance(item, Query):
        qid, messages, response = item.id, item.messages, item.response
    elif isinstance(item, dict):
        loc = f"{source}: item {index + 1}:"
        qid = next((item[k] for k in ("query_id", "id") if item.get(k) is not None), f"q{index}")
        chat = next((item[k] for k in ("messages", "prompt") if item.get(k) is not None), None)
        messages = prompt_messages(chat if chat is not None else record_text(item, loc), source, index + 1)
        response = record_response(item, loc)
    else:
        raise UserError(f"{source}: item {index + 1}: expected a query record or a Query, got {type(item).__name__}")
    if system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}] + messages
    return Query(id=str(qid), messages=messages, index=index, response=response)


def as_queries(items: Iterable[Any], system_prompt: str | None = None, source: str = "queries") -> list[Query]:
    queries = [as_query(item, i, system_prompt, source) for i, item in enumerate(items)]
    seen: set[str] = set()
    for q in queries:
        if q.id in seen:
            raise UserError(f"{source}: query id '{q.id}' appears twice (ids must be unique)")
        seen.add(q.id)
    return queries


def load_baseline_queries(source: str | Path, *, supervised: bool, limit: int | None = None,
                          field: str | None = None, system: str | None = None,
                          corpus: str | Path | None = None) -> list[Query]:
    """genius.queries.load_queries (the same ids and text as Genius); for the supervised
    baselines each query also gets its corpus response from ``corpus`` (default: the query file
    itself), matched by query id."""
    queries = list(load_queries(source, field=field, limit=limit, system=system))
    if not supervised:
        return queries
    responses = corpus_responses(Path(corpus or source))
    return [dataclasses.replace(q, response=responses.get(q.id)) for q in queries]


def corpus_responses(path: Path) -> dict[str, str]:
    """query id -> corpus response (``output`` or ``response``) of a JSONL corpus, ids as
    genius.queries gives them (the record's ``id``/``uuid``, else ``<file stem>-<line>``)."""
    if path.suffix.lower() not in (".jsonl", ".ndjson") or not path.is_file():
        raise UserError(f"{path}: the supervised baselines read the corpus responses from a JSONL file "
                        "with an 'output' (or 'response') field")
    responses = {}
    for lineno, record in iter_jsonl(path):
        loc = where(path, lineno)
        response = record_response(record, loc)
        if response is not None:
            responses[record_id(record, f"{path.stem}-{lineno}", loc)] = response
    return responses


class Response(NamedTuple):
    text: str
    """The whole assistant turn: the prefix, then what the model wrote."""
    complete: bool
    """False when the token budget cut it off (it then states no final answer)."""


def ballots(responses: Sequence[Response], prefix: str) -> list[str]:
    """What each response votes with: its own words (the shared prefix would read as a final
    sentence), or "" (no vote) for a response cut off by the token budget."""
    return [r.text[len(prefix):] if r.complete else "" for r in responses]


def generate(engine: Engine, message_lists: Sequence[list[dict[str, str]]], *, prefix: str, n: int,
             temperature: float, top_p: float, max_new_tokens: int, seed: int) -> list[list[Response]]:
    """n responses per chat prompt, each text starting with ``prefix`` (the whole assistant turn)."""
    prompts = [chat_prompt_ids(engine.tokenizer, m, prefix) for m in message_lists]
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                            max_new_tokens=max_new_tokens, seed=seed)
    return [[Response(prefix + c.text, c.finish_reason != "length") for c in outs]
            for outs in engine.generate(prompts, params)]


def sample(engine: Engine, cfg: BaselineConfig, message_lists: Sequence[list[dict[str, str]]], *, n: int,
           seed: int, prefix: str | None = None) -> list[list[Response]]:
    """n sampled responses per prompt with the config's temperature, top-p and length."""
    return generate(engine, message_lists, prefix=cfg.assistant_prefix if prefix is None else prefix, n=n,
                    temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=seed)


def check_config_copy(out_dir: Path, method: str, cfg: BaselineConfig, *, force: bool = False) -> None:
    """Refuse to resume into a folder built with another method or other settings (the fields
    of BaselineConfig not marked may_change; unless ``force``), then write ``baseline.yaml``."""
    path = out_dir / CONFIG_COPY
    check_resume(path, cfg, force=force, also={"method": method})
    write_yaml(path, {"method": method, **to_dict(cfg)})


def _resume_state(data_path: Path, candidates_path: Path) -> set[str]:
    """Ids of finished queries; training records of an unfinished query (killed between the two
    writes) are dropped so that a rerun does not duplicate them."""
    done = {r["query_id"] for r in read_jsonl(candidates_path, repair=True)} if candidates_path.is_file() else set()
    if data_path.is_file():
        records = read_jsonl(data_path, repair=True)
        kept = [r for r in records if r.get("query_id") in done]
        if len(kept) != len(records):
            atomic_write_text(data_path, "".join(dumps(r) + "\n" for r in kept))
    return done


def run_builder(method: str, output: str, process: Process, cfg: BaselineConfig, queries: Sequence[Query],
                engine: Engine | None, out_dir: Path, *, shard: Shard | None = None, together: bool = False,
                force: bool = False, inputs: Any = None) -> Path:
    """Run ``process`` over the queries not yet done; return the data file (pairs/sft.jsonl).

    ``shard=(i, n)``: only the queries at positions i mod n, into ``<output>.<i>-of-<n>.jsonl``
    and ``candidates.<i>-of-<n>.jsonl``; once every shard is done they are merged, once, in
    query order (genius.ranks). The data file is complete only in the process that merged."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if inputs is not None:  # genius.sampling.runner.sample_inputs: another model or query file is refused
        from genius.config import save
        from genius.sampling.runner import INPUTS_NAME, check_inputs

        check_inputs(out_dir, inputs, force=force)
    check_config_copy(out_dir, method, cfg, force=force)
    if inputs is not None:
        save(inputs, out_dir / INPUTS_NAME)
    start_share(out_dir, output, shard)
    suffix = shard_suffix(shard)
    data_path = out_dir / f"{output}{suffix}.jsonl"
    candidates_path = out_dir / f"{Path(CANDIDATES).stem}{suffix}.jsonl"
    done = _resume_state(data_path, candidates_path)
    if shard is not None and (out_dir / CANDIDATES).is_file():  # merged by an earlier launch
        done |= {r["query_id"] for r in read_jsonl(out_dir / CANDIDATES, repair=True)}
    position = {q.id: i for i, q in enumerate(queries)}
    mine = [q for q in queries if owns(shard, position[q.id])]
    todo = [q for q in mine if q.id not in done]
    written = 0
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=method, unit="query", dynamic_ncols=True,
               disable=os.environ.get("GENIUS_NO_PROGRESS") == "1")
    # A batch's queries finish together, after all of its engine calls: the responses count moves meanwhile.
    counted = _ResponseCounter(bar)
    reporting = _ReportingEngine(engine, counted) if engine is not None else None
    with JsonlAppender(data_path) as data, JsonlAppender(candidates_path) as details, bar:
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start:start + cfg.batch_size]
            # The seed follows the batch's first query, so a resumed run samples as a fresh one would
            # wherever its batches line up.
            seed = cfg.seed * 1_000_003 + position[batch[0].id]
            for result in process(batch, reporting, cfg, seed):
                records = [{"query_id": result.query_id, **r, "method": method} for r in result.records]
                data.write_many(records)
                details.write({"query_id": result.query_id, "kept": len(records), **result.detail})
                written += len(records)
            bar.update(len(batch))
    merged = out_dir / f"{output}.jsonl"
    if shard is not None and not finish_share(out_dir, output, shard,
                                              lambda: _merge_shards(out_dir, output, position), together=together):
        print(f"{method}: shard {shard[0]}/{shard[1]}: {written} records from {len(todo)} queries; "
              "another process merges the shards")
        return merged
    total = sum(1 for _ in read_jsonl(merged)) if merged.is_file() else 0
    print(f"{method}: {total} {'pairs' if output == 'pairs' else 'SFT examples'} from {len(queries)} queries "
          f"({written} new) -> {merged}")
    return merged


class _ResponseCounter:
    """``on_finished`` of the builders' engine calls: the responses generated so far and their rate,
    shown beside the bar of queries."""

    REDRAW_S = 0.5
    """At most one redraw per this many seconds (rows finish at every decode step)."""

    def __init__(self, bar: Any):
        self.bar = bar
        self.count = 0
        self.start = self.shown = time.perf_counter()

    def __call__(self, finished: int) -> None:
        self.count += finished
        now = time.perf_counter()
        if now - self.shown >= self.REDRAW_S:
            self.shown = now
            self.bar.set_postfix_str(f"{self.count} responses, {self.count / (now - self.start):.1f}/s")


class _ReportingEngine:
    """``engine`` whose generate calls report their finished sequences to ``on_finished`` (the
    builders' own calls, several per batch, pass none); everything else is the engine's."""

    def __init__(self, engine: Engine, on_finished: Callable[[int], None]):
        self._engine = engine
        self._on_finished = on_finished

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> Any:
        return self._engine.generate(prompts, dataclasses.replace(params, on_finished=self._on_finished))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _merge_shards(out_dir: Path, output: str, position: dict[str, int]) -> None:
    """<output>.jsonl and candidates.jsonl := the merged file and every shard's, in query order
    (a query's records keep their order), each query once."""
    for name in (output, Path(CANDIDATES).stem):
        files = [p for p in [out_dir / f"{name}.jsonl", *sorted(out_dir.glob(f"{name}.*-of-*.jsonl"))] if p.is_file()]
        by_query: dict[str, list[dict]] = {}
        for path in files:
            seen_here: dict[str, list[dict]] = {}
            for r in read_jsonl(path, repair=True):
                seen_here.setdefault(r["query_id"], []).append(r)
            for qid, records in seen_here.items():
                by_query.setdefault(qid, records)
        ordered = sorted(by_query, key=lambda q: position.get(q, len(position)))
        atomic_write_text(out_dir / f"{name}.jsonl", "".join(dumps(r) + "\n" for q in ordered for r in by_query[q]))
        for path in files[1:] if files and files[0].name == f"{name}.jsonl" else files:
            path.unlink()
