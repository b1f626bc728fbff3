"""What all baseline builders share: queries, chat prompts, generation, resumable output.

A builder turns a batch of queries into, per query, the training records it keeps (pairs or
SFT examples, in the schema of ``genius.schema``) and a *detail* record (every sample, score
and vote, for inspection). ``run_builder`` drives it over all queries with a progress bar,
writing ``<out>/pairs.jsonl`` or ``<out>/sft.jsonl`` and ``<out>/candidates.jsonl`` one batch
at a time; a rerun skips the queries whose detail record is already on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from genius.baselines.config import BaselineConfig
from genius.config import diff, to_dict
from genius.engines.base import Engine, SamplingParams
from genius.errors import UserError
from genius.io import JsonlAppender, atomic_write_text, dumps, iter_jsonl, read_jsonl, read_yaml, write_yaml
from genius.models import chat_prompt_ids
from genius.ranks import Shard, finish_share, owns, shard_suffix, start_share
from genius.schema import prompt_messages

CANDIDATES = "candidates.jsonl"
CONFIG_COPY = "baseline.yaml"


@dataclass(frozen=True)
class BaselineQuery:
    query_id: str
    messages: list[dict[str, str]]
    """The query as chat messages (system message included when configured)."""
    response: str | None = None
    """The corpus' own response (supervised baselines SFT and SPIN only)."""


@dataclass
class QueryResult:
    query_id: str
    records: list[dict]
    """Training records kept for this query (may be empty: no usable pair)."""
    detail: dict
    """Everything sampled and scored for this query (written to candidates.jsonl)."""


Process = Callable[[list[BaselineQuery], Engine | None, BaselineConfig, int], list[QueryResult]]


def _get(item: Any, *names: str) -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def as_query(item: Any, index: int, system_prompt: str | None = None, source: str = "queries") -> BaselineQuery:
    """A query record or object -> BaselineQuery.

    Accepted fields: id (``query_id`` or ``id``, else ``q<index>``); the query as ``messages`` /
    ``prompt`` (a string or chat messages) or ``instruction`` [+ ``input``, joined by a blank
    line]; the corpus response as ``response`` or ``output``.
    """
    qid = _get(item, "query_id", "id")
    prompt = _get(item, "messages", "prompt")
    if prompt is None:
        instruction = _get(item, "instruction")
        if instruction is None:
            raise UserError(f"{source}: item {index + 1}: expected a field 'prompt', 'messages' or 'instruction'")
        extra = _get(item, "input")
        prompt = f"{instruction}\n\n{extra}" if isinstance(extra, str) and extra.strip() else instruction
    messages = prompt_messages(prompt, source, index + 1)
    if system_prompt and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system_prompt}] + messages
    response = _get(item, "response", "output")
    if response is not None and not isinstance(response, str):
        raise UserError(f"{source}:{index + 1}: field 'response': expected a string")
    return BaselineQuery(str(qid) if qid is not None else f"q{index}", messages, response)


def as_queries(items: Iterable[Any], system_prompt: str | None = None, source: str = "queries") -> list[BaselineQuery]:
    queries = [as_query(item, i, system_prompt, source) for i, item in enumerate(items)]
    seen: set[str] = set()
    for q in queries:
        if q.query_id in seen:
            raise UserError(f"{source}: query id '{q.query_id}' appears twice (ids must be unique)")
        seen.add(q.query_id)
    return queries


def load_baseline_queries(source: str | Path, *, supervised: bool, limit: int | None = None,
                          field: str | None = None, system: str | None = None,
                          corpus: str | Path | None = None) -> list[BaselineQuery]:
    """Queries through genius.queries.load_queries (the same ids and text as Genius); for the
    supervised baselines each also gets its corpus response (``output`` or ``response``) from
    ``corpus`` (default: the query file itself), matched by query id."""
    from genius.queries import load_queries

    qset = load_queries(source, field=field, limit=limit, system=system)
    responses = corpus_responses(Path(corpus or source)) if supervised else {}
    return [BaselineQuery(q.id, q.messages, responses.get(q.id)) for q in qset]


def corpus_responses(path: Path) -> dict[str, str]:
    """query id -> corpus response of a JSONL corpus, ids as genius.queries gives them (the
    record's ``id``/``uuid``, else ``<file stem>-<line>``)."""
    if path.suffix.lower() not in (".jsonl", ".ndjson") or not path.is_file():
        raise UserError(f"{path}: the supervised baselines read the corpus responses from a JSONL file "
                        "with an 'output' (or 'response') field")
    responses = {}
    for lineno, record in iter_jsonl(path):
        qid = next((str(record[k]) for k in ("id", "uuid") if record.get(k) not in (None, "")), f"{path.stem}-{lineno}")
        value = record.get("output", record.get("response"))
        if isinstance(value, str):
            responses[qid] = value
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


def check_config_copy(out_dir: Path, method: str, cfg: BaselineConfig) -> None:
    """Write ``baseline.yaml``; refuse to resume into a folder built with other settings."""
    path = out_dir / CONFIG_COPY
    current = {"method": method, **to_dict(cfg)}
    if path.is_file():
        changed = diff(read_yaml(path) or {}, current, ignore=("batch_size",))
        if changed:
            raise UserError(f"{path}: this folder was built with other settings ({', '.join(changed)}); "
                            "use a new --out folder or the same settings to resume")
        return
    write_yaml(path, current)


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


def run_builder(method: str, output: str, process: Process, cfg: BaselineConfig, queries: Sequence[BaselineQuery],
                engine: Engine | None, out_dir: Path, *, shard: Shard | None = None, together: bool = False) -> Path:
    """Run ``process`` over the queries not yet done; return the data file (pairs/sft.jsonl).

    ``shard=(i, n)``: only the queries at positions i mod n, into ``<output>.<i>-of-<n>.jsonl``
    and ``candidates.<i>-of-<n>.jsonl``; once every shard is done they are merged, once, in
    query order (genius.ranks). The data file is complete only in the process that merged."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_config_copy(out_dir, method, cfg)
    start_share(out_dir, output, shard)
    suffix = shard_suffix(shard)
    data_path = out_dir / f"{output}{suffix}.jsonl"
    candidates_path = out_dir / f"{Path(CANDIDATES).stem}{suffix}.jsonl"
    done = _resume_state(data_path, candidates_path)
    if shard is not None and (out_dir / CANDIDATES).is_file():  # merged by an earlier launch
        done |= {r["query_id"] for r in read_jsonl(out_dir / CANDIDATES, repair=True)}
    position = {q.query_id: i for i, q in enumerate(queries)}
    mine = [q for q in queries if owns(shard, position[q.query_id])]
    todo = [q for q in mine if q.query_id not in done]
    written = 0
    with JsonlAppender(data_path) as data, JsonlAppender(candidates_path) as details, \
            tqdm(total=len(mine), initial=len(mine) - len(todo), desc=method, unit="query") as bar:
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start:start + cfg.batch_size]
            # The seed follows the batch's first query, so a resumed run samples as a fresh one would
            # wherever its batches line up.
            seed = cfg.seed * 1_000_003 + position[batch[0].query_id]
            for result in process(batch, engine, cfg, seed):
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
