"""The batched evaluation runner: tasks -> prompts -> engine.generate -> extraction -> metrics.

Output folder::

    out_dir/config.yaml              the EvalConfig of the run
    out_dir/<task>/samples.jsonl     one line per item: id, question, gold, response, extracted,
                                     correct, tokens (+ all samples, majority answer when samples > 1)
    out_dir/<task>/metrics.json      accuracy, 95% interval, n, n_no_answer, mean tokens, seconds
                                     (+ per group for a task with group_by, pass@k and the
                                     sandbox's isolation for code, the win rate for judged tasks)
    out_dir/<task>/judge_cache.jsonl a judged task's judge replies (genius.evaluation.judge)
    out_dir/results.md               markdown table over the tasks of the run

Items already in samples.jsonl are skipped, so a killed run resumes where it stopped; settings
that change the answers (model, preset, sampling) must match the folder's config.yaml.

Sharded (several processes, genius.ranks): shard i of n answers the items whose position is
i mod n into ``<task>/samples.<i>-of-<n>.jsonl``; once every shard is done they are merged,
once, into samples.jsonl in item order, and metrics.json and results.md are written from it.
Each item draws from its own seed, so a sharded run answers as a one-process run does.

Three kinds of task go further than extraction. A task with ``group_by`` (MMLU) also gets
metrics per group (per subject). A code task (``executes_code``: MBPP, HumanEval,
LiveCodeBench) is refused before any generation unless ``allow_code_execution``; its programs
run in the sandbox and its accuracy is pass@1. A judged task (Arena-Hard, AlpacaEval,
WildBench) is answered first, for every task of the run; then the evaluated model is closed
(unless it is the judge) and the judge scores each item against its reference answer (cached,
failures recorded and retried by a rerun): ``score`` 0..1, ``correct`` = the model won (score >
0.5), and the task's metric is the win rate with a bootstrap interval over items; ``accuracy``
holds it too, so tables show it. WildBench's are its own (genius.evaluation.wildbench): WB-Score
(each answer scored 1-10 against the task's checklist) and WB-Reward (against a reference
model's answer on a five-way scale), both in points.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from genius import config as config_io
from genius.engines.base import Completion, Engine, SamplingParams, derive_seed
from genius.errors import UserError
from genius.evaluation.compare import POINT_METRICS
from genius.evaluation.config import EvalConfig, refuse_code_execution
from genius.evaluation.judge import Chat, judge_records, make_chat, needs_judging
from genius.evaluation.metrics import task_metrics
from genius.evaluation.prompts import build_messages, get_preset
from genius.evaluation.report import results_table
from genius.evaluation.stats import majority_vote
from genius.evaluation.tasks import Item, Task, get_task
from genius.io import JsonlAppender, atomic_write_text, dumps, read_json, read_jsonl, write_json
from genius.models import chat_prompt_ids
from genius.ranks import Shard, finish_share, owns, shard_suffix, start_share

def run_eval(cfg: EvalConfig, out_dir: Path, engine: Engine | None = None, *, shard: Shard | None = None,
             together: bool = False, force: bool = False) -> dict[str, dict]:
    """Evaluate every task of ``cfg``; return task -> metrics (also written under ``out_dir``).

    ``shard=(i, n)``: answer this shard's items only; the process that merges a task's shards
    (genius.ranks; ``together`` for the processes of one launch) gets its metrics, the others
    get no entry for it. ``force``: go on in a folder started with other settings."""
    cfg.validate()
    out_dir = Path(out_dir)
    tasks = [get_task(name) for name in cfg.tasks]
    _check_resume(cfg, out_dir, force)
    # Load all data before the model so that a bad file fails in a second, not after the load.
    items = {t.name: _load_items(t, cfg) for t in tasks}
    from genius.engines import close_engine, make_engine

    own = engine is None
    if engine is None:
        engine = make_engine(cfg.model, engine=cfg.engine, options=cfg.engine_options, dtype=cfg.dtype,
                             device=cfg.device, trust_remote_code=cfg.trust_remote_code)
    # Recorded once the inputs (tasks, data, model) have loaded: a failed start leaves no copy
    # that would refuse the corrected rerun.
    out_dir.mkdir(parents=True, exist_ok=True)
    config_io.save(cfg, out_dir / "config.yaml")
    from genius.engines import engine_name

    label = engine_name(engine)
    results: dict[str, dict] = {}
    judged: list[Task] = []
    try:
        for task in tasks:
            task_dir = out_dir / task.name
            if not generate_task(task, items[task.name], engine, cfg, task_dir, shard=shard, together=together):
                continue  # another process merges this task's shards
            if task.judge:
                judged.append(task)  # judged once every task is answered
                continue
            results[task.name] = _summary(finish_task(task, items[task.name], cfg, task_dir, label, shard=shard))
        if judged:
            if own and cfg.judge_local != cfg.model:
                close_engine(engine)  # the judge's turn: free the evaluated model first
                own = False
            lent = engine if cfg.judge_local == cfg.model else None
            results.update(_judge_tasks(judged, items, cfg, out_dir, lent, label, shard))
    finally:
        if own:
            close_engine(engine)
    if results:
        done = {t.name: out_dir / t.name / "metrics.json" for t in tasks}
        if all(p.is_file() for p in done.values()):  # sharded: the last task merged may be another's
            table = {name: results.get(name) or read_json(p) for name, p in done.items()}
            atomic_write_text(out_dir / "results.md", results_table(table, title=f"{cfg.model} ({cfg.preset})"))
    return results


def _summary(m: dict) -> dict:
    """Print a task's one-line summary; return its metrics."""
    metric = m.get("metric", "accuracy")
    names = {"wb_score": "WB-Score", "wb_reward": "WB-Reward"}
    score, unit = names.get(metric, metric.replace("_", " ")), "" if metric in POINT_METRICS else "%"
    value = "-" if m["accuracy"] is None else f"{100 * m['accuracy']:.1f}{unit}"
    judged = f", {m['n_judge_failed']} not judged (judge failed)" if m.get("n_judge_failed") else ""
    print(f"{m['task']}: {score} {value} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}] over {m['n']} items, "
          f"{m['n_no_answer']} without an answer{judged}, {m['mean_tokens']:.0f} tokens mean, {m['seconds']:.1f}s")
    return m


def _judge_tasks(tasks: list[Task], items: dict[str, list[Item]], cfg: EvalConfig, out_dir: Path,
                 engine: Engine | None, label: str, shard: Shard | None) -> dict[str, dict]:
    """Judge the answered items of the judged tasks and write their metrics. A local judge runs
    on ``engine`` when it is the evaluated model (lent, not closed here), else on its own."""
    from genius.engines import close_engine, make_engine

    judge_cfg = cfg.judge_config()
    made: list[Engine] = []

    def local_engine(spec: str) -> Engine:
        if engine is not None:
            return engine
        if not made:
            made.append(make_engine(spec, engine=cfg.engine, options=cfg.engine_options, dtype=cfg.dtype,
                                    device=cfg.device, trust_remote_code=cfg.trust_remote_code))
        return made[0]

    results = {}
    try:
        for task in tasks:
            results[task.name] = _summary(finish_task(
                task, items[task.name], cfg, out_dir / task.name, label, shard=shard,
                judge=lambda task_dir: make_chat(judge_cfg, task_dir / "judge_cache.jsonl", local_engine)))
    finally:
        for e in made:
            close_engine(e)
    return results


def _check_resume(cfg: EvalConfig, out_dir: Path, force: bool = False) -> None:
    """Refuse to resume a folder whose config.yaml answered with other settings (unless ``force``)."""
    config_io.check_resume(out_dir / "config.yaml", cfg, force=force)


def _load_items(task: Task, cfg: EvalConfig) -> list[Item]:
    source = Path(cfg.data_dir) / task.data_folder if cfg.data_dir is not None else None
    items = task.load(source, limit=cfg.limit, seed=cfg.seed, options={k: getattr(cfg, k) for k in task.options})
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"task {task.name}: item id {dup!r} appears twice; ids must be unique to resume")
    return items


def _sample_files(task_dir: Path) -> list[Path]:
    """samples.jsonl and every shard's file, of this or an earlier launch."""
    return [p for p in [task_dir / "samples.jsonl", *sorted(task_dir.glob("samples.*-of-*.jsonl"))] if p.is_file()]


def _merge_samples(task_dir: Path, items: list[Item]) -> None:
    """samples.jsonl := every record of every samples file, each item once, in item order."""
    by_id: dict[str, dict] = {}
    shards = _sample_files(task_dir)
    for path in shards:
        for r in read_jsonl(path, repair=True):
            by_id.setdefault(r["id"], r)
    order = {it.id: k for k, it in enumerate(items)}
    records = sorted(by_id.values(), key=lambda r: order.get(r["id"], len(order)))
    atomic_write_text(task_dir / "samples.jsonl", "".join(dumps(r) + "\n" for r in records))
    for path in shards:
        if path.name != "samples.jsonl":
            path.unlink()


def evaluate_task(task: Task, items: list[Item], engine: Engine, cfg: EvalConfig, task_dir: Path, *,
                  shard: Shard | None = None, together: bool = False,
                  judge: Callable[[Path], Chat] | None = None) -> dict | None:
    """Generate for this shard's items not yet answered, then (in the process that merges the
    shards) judge them if the task is judged (``judge``: task folder -> the judge's chat), write
    metrics.json and return the metrics; None in the others."""
    from genius.engines import engine_name

    if not generate_task(task, items, engine, cfg, task_dir, shard=shard, together=together):
        return None
    return finish_task(task, items, cfg, task_dir, engine_name(engine), shard=shard, judge=judge)


def generate_task(task: Task, items: list[Item], engine: Engine, cfg: EvalConfig, task_dir: Path, *,
                  shard: Shard | None = None, together: bool = False) -> bool:
    """Answer (and score) this shard's items not yet answered; once every shard is done, merge
    them into samples.jsonl. Returns whether this process merged (and so finishes the task)."""
    refuse_code_execution(task, cfg)
    preset = get_preset(cfg.preset)
    task_dir.mkdir(parents=True, exist_ok=True)
    start_share(task_dir, "samples", shard)
    samples_path = task_dir / f"samples{shard_suffix(shard)}.jsonl"
    # Its own file and the merged one only: another shard's file may be mid-line right now.
    done = {r["id"] for path in {task_dir / "samples.jsonl", samples_path} if path.is_file()
            for r in read_jsonl(path, repair=True)}
    mine = [it for k, it in enumerate(items) if owns(shard, k)]
    todo = [it for it in mine if it.id not in done]
    params = SamplingParams(n=cfg.samples, temperature=cfg.sampling_temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    # The bar counts responses (items x samples) and moves as the engine finishes each one.
    bar = tqdm(total=len(mine) * cfg.samples, initial=(len(mine) - len(todo)) * cfg.samples, unit="response",
               desc=task.name, disable=os.environ.get("GENIUS_NO_PROGRESS") == "1", dynamic_ncols=True)
    with JsonlAppender(samples_path) as out, bar:
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start:start + cfg.batch_size]
            prompts = [chat_prompt_ids(engine.tokenizer, build_messages(task, it, preset)) for it in chunk]
            # A prompt that fills the context leaves no room for an answer: it is scored as
            # unanswered (and counted) instead of stopping the run.
            fits = [k for k, p in enumerate(prompts) if len(p) < engine.max_context]
            outputs: list[list[Completion]] = [[_too_long(len(p))] * cfg.samples for p in prompts]
            bar.update((len(chunk) - len(fits)) * cfg.samples)
            t0 = time.perf_counter()
            if fits:
                # Each item draws from its own seed: its samples do not depend on the batch or shard.
                reported = _Reported(bar)
                keyed = dataclasses.replace(params, seeds=tuple(derive_seed(cfg.seed, task.name, chunk[k].id)
                                                                for k in fits), on_finished=reported)
                for k, comps in zip(fits, engine.generate([prompts[k] for k in fits], keyed)):
                    outputs[k] = comps
                bar.update(max(0, len(fits) * cfg.samples - reported.count))  # what the engine did not report
            share = (time.perf_counter() - t0) / len(chunk)
            out.write_many(score_item(task, it, comps, share) for it, comps in zip(chunk, outputs))
    return finish_share(task_dir, "samples", shard, lambda: _merge_samples(task_dir, items), together=together)


def finish_task(task: Task, items: list[Item], cfg: EvalConfig, task_dir: Path, engine_label: str, *,
                shard: Shard | None = None, judge: Callable[[Path], Chat] | None = None) -> dict:
    """metrics.json of a task whose samples.jsonl holds every item (judged first, if the task
    is, with ``judge``: task folder -> the judge's chat)."""
    wanted = {it.id for it in items}
    if task.judge:
        _judge_samples(task, wanted, cfg, task_dir, judge)
    records = [r for r in read_jsonl(task_dir / "samples.jsonl") if r["id"] in wanted]
    metrics = {"task": task.name, **task_metrics(records, cfg.samples, task), "engine": engine_label,
               "shards": shard[1] if shard else 1}
    if task.executes_code:
        from genius.evaluation.sandbox import isolation

        metrics["isolation"] = list(isolation())
    if task.judge:
        metrics.update(judge=cfg.judge_config().identity(), judge_protocol=task.judge)
    write_json(task_dir / "metrics.json", metrics)
    return metrics


def _judge_samples(task: Task, wanted: set[str], cfg: EvalConfig, task_dir: Path,
                   judge: Callable[[Path], Chat] | None) -> None:
    """Judge the records of ``wanted`` not judged yet (or whose judge failed) and write them
    back into samples.jsonl; the judge's replies stay in its cache if this is interrupted."""
    path = task_dir / "samples.jsonl"
    every = read_jsonl(path)
    todo = [k for k, r in enumerate(every) if r["id"] in wanted and needs_judging(r)]
    if not todo:
        return
    if judge is None:
        raise UserError(f"eval: task {task.name} is scored by an LLM judge and no judge was given")
    chat = judge(task_dir)
    jc = cfg.judge_config()
    bar = tqdm(total=len(todo), unit="item", desc=f"{task.name} (judge)", dynamic_ncols=True,
               disable=os.environ.get("GENIUS_NO_PROGRESS") == "1")
    with bar:
        judged = judge_records(task.judge, chat, [every[k] for k in todo], max_tokens=jc.max_tokens,
                               parallel=jc.parallel if jc.url else 1,
                               progress=lambda judged: _moving(bar, judged))
    for k, record in zip(todo, judged):
        every[k] = record
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in every))
    failed = sum("judge_error" in r for r in judged)
    print(f"{task.name}: judge {jc.identity()}: {len(todo) - failed} of {len(todo)} items judged"
          f"{f', {failed} failed (a rerun asks again)' if failed else ''}; {getattr(chat, 'calls', '?')} judge calls, "
          f"the rest from {task_dir / 'judge_cache.jsonl'}")


def _moving(bar: tqdm, records: Any) -> Any:
    for record in records:
        bar.update(1)
        yield record


class _Reported:
    """The ``on_finished`` of one engine call: moves the bar by the responses the engine finished,
    and keeps their count so that the rest is counted when the call returns."""

    def __init__(self, bar: tqdm):
        self.bar = bar
        self.count = 0

    def __call__(self, finished: int) -> None:
        self.count += finished
        self.bar.update(finished)


def _too_long(prompt_tokens: int) -> Completion:
    return Completion(text="", token_ids=[], logprobs=[], finish_reason="length", stop_string="prompt_too_long",
                      prompt_tokens=prompt_tokens)


def score_item(task: Task, item: Item, completions: list[Completion], seconds: float) -> dict[str, Any]:
    """One samples.jsonl record: the first response at the top level, all of them under
    ``samples`` (with the majority answer) when there are several."""
    scored = []
    for c in completions:
        extracted = task.extract(c.text, item)
        # A judged answer has no correctness until the judge has seen it (genius.evaluation.judge).
        correct = None if task.judge else bool(task.check(extracted, item))
        scored.append({"response": c.text, "extracted": extracted, "correct": correct, "tokens": len(c.token_ids),
                       "finish_reason": "prompt_too_long" if c.stop_string == "prompt_too_long" else c.finish_reason})
    record: dict[str, Any] = {"id": item.id, "question": item.question, "gold": item.gold, **scored[0],
                              "seconds": seconds}
    if item.meta:
        record["meta"] = dict(item.meta)
    if len(scored) > 1 and task.judge:
        record["samples"] = scored  # the judge scores the first response only
    elif len(scored) > 1:
        rep = majority_vote([s["extracted"] for s in scored], task.same)
        record["samples"] = scored
        record["majority"] = scored[rep]["extracted"] if rep is not None else None
        record["majority_correct"] = scored[rep]["correct"] if rep is not None else False
        record["n_correct"] = sum(s["correct"] for s in scored)
    return record
