"""``genius run``: queries -> sample -> pairs -> train -> evaluate base and trained, in one run dir.

The layout of a run directory (every arrow of the design is a file there) is
``genius.layout.RunLayout``, documented in that module; the stages write through it and the
report reads through it.

A config with ``compare:`` (run name -> overrides) is a comparison: each entry is a run of its
own in run_dir/NAME, all on the same queries and sharing the first run's base evaluation;
run_dir/config.yaml and run_dir/report.md (one table of all runs) sit above them.

Every stage writes ``DONE.json`` into its folder when it has finished; a rerun skips stages
that have one and resumes the others (each stage resumes on its own: sampling appends, training
continues from its last checkpoint, evaluation skips done items). Round r samples with the model
trained in round r-1; which model it trains from and against which reference is one rule,
``genius.run_config.round_models`` (``genius baseline --train`` runs through here too).

Under torchrun / accelerate launch (genius.ranks) the same command runs on every process: the
generation stages (sampling, evaluation) split their items over the processes (``parallel:
rank``) or the nodes (``parallel: node``) and are merged once by rank 0, training uses every
process, rank 0 writes queries, DONE.json, config and report, and the others wait for its
DONE.json. The files are those of a one-process run.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genius import config as cfgmod
from genius.errors import UserError
from genius.io import atomic_write_text, dumps, read_json, write_json
from genius.layout import DONE, RoundLayout, RunLayout
from genius.methods import MethodContext, _baseline, methods
from genius.ranks import ParallelMode, Ranks, wait_for
from genius.run_config import (PipelineConfig, QueriesConfig, comparison_runs, eval_config, evaluates, load_config,
                               round_models, sample_config, train_config)

__all__ = ["PipelineConfig", "QueriesConfig", "Stage", "comparison_runs", "eval_config", "is_done", "load_config",
           "make_queries", "plan", "run_comparison", "run_pipeline", "run_stage", "sample_config", "train_config"]


@dataclass
class Stage:
    """One resumable unit of work; ``run`` returns what later stages need (JSON-able)."""

    name: str
    dir: Path
    run: Callable[[], dict[str, Any]]
    needs: tuple[tuple[Path, str], ...] = ()
    """(input file, the stage that makes it): checked before the stage starts."""
    runs_on: Literal["main", "generators", "all"] = "main"
    """Under a launcher, which processes run it: rank 0 alone, those that generate (each its
    share; genius.ranks), or all (training). Rank 0 always does and marks it done."""


def is_done(stage_dir: Path) -> bool:
    return (stage_dir / DONE).is_file()


def run_stage(stage: Stage, log: Callable[[str], None] = print, ranks: Ranks = Ranks(),
              mode: ParallelMode = "rank") -> dict[str, Any]:
    """Skip a finished stage (returning what it recorded), else run it and mark it done; under a
    launcher the processes that do not mark it wait for rank 0's mark."""
    marker = stage.dir / DONE
    if marker.is_file():
        done = read_json(marker)
        log(f"[{stage.name}] done already ({done.get('seconds', 0):.0f}s), skipped")
        return done.get("result", {})
    for path, maker in stage.needs:
        if not path.exists():
            raise UserError(f"stage '{stage.name}' needs {path}, which is missing: run stage '{maker}' first "
                            "(genius run with the same config runs the stages in order)")
    stage.dir.mkdir(parents=True, exist_ok=True)
    takes_part = ranks.is_main or stage.runs_on == "all" or (stage.runs_on == "generators" and ranks.generates(mode))
    if takes_part:
        log(f"[{stage.name}] starting")
        t0, c0 = time.perf_counter(), time.process_time()
        result = stage.run()
    if not ranks.is_main:
        wait_for(marker.is_file, f"rank 0 to finish stage {stage.name} ({marker})", log)
        return read_json(marker).get("result", {})
    seconds = time.perf_counter() - t0
    # CPU seconds beside wall seconds: on a shared machine they tell the stage's own cost.
    write_json(marker, {"stage": stage.name, "seconds": seconds, "cpu_seconds": time.process_time() - c0,
                        "finished_at": time.time(), "result": result})
    log(f"[{stage.name}] finished in {seconds:.0f}s")
    return result


# --- the run ---------------------------------------------------------------------------------

class _Engines:
    """One loaded model at a time: sampling and evaluation of the same model share it."""

    def __init__(self, cfg: PipelineConfig, ranks: Ranks = Ranks()):
        self.cfg, self.ranks, self.spec, self.engine = cfg, ranks, None, None

    def get(self, spec: str) -> Any:
        if spec != self.spec:
            from genius.engines import make_engine

            tp = self.cfg.engine_options.tensor_parallel_size
            if self.ranks.launched and self.cfg.parallel == "rank" and tp > 1:
                raise UserError(f"engine_options.tensor_parallel_size {tp} under a launch of {self.ranks.world} "
                                "processes needs parallel: node (in rank mode every process drives its own GPU)")

            self.release()
            # Engine chunks as large as the sampler's calls (evaluation's are no larger by default).
            rows = sample_config(self.cfg, 0).batch_sequences
            self.engine = make_engine(spec, engine=self.cfg.engine, options=self.cfg.engine_options,
                                      dtype=self.cfg.dtype, device=self.ranks.device(self.cfg.device, self.cfg.parallel),
                                      max_batch_size=rows)
            self.spec = spec
        return self.engine

    def release(self) -> None:
        """Drop the engine and free its memory (vLLM's engine process too): training comes next."""
        import gc

        from genius.engines import close_engine

        close_engine(self.engine)
        self.engine, self.spec = None, None
        gc.collect()


def _check_saved_config(cfg: PipelineConfig, run_dir: Path, force: bool) -> None:
    """Refuse a run_dir started with other settings (genius.config.check_resume), unless ``force``."""
    cfgmod.check_resume(RunLayout(run_dir).config, cfg, force=force)


def make_queries(cfg: PipelineConfig, out: Path) -> dict[str, Any]:
    """Write the run's unlabeled queries: synthetic problems (training split) or a loaded source;
    when they have gold answers, the answer key beside them (diagnostics only)."""
    from genius import synthetic
    from genius.evaluation.tasks import Item, get_task
    from genius.sampling.signal import write_answer_key

    answers = RunLayout(cfg.run_dir).answers
    out.parent.mkdir(parents=True, exist_ok=True)
    if cfg.queries.source == "synthetic":
        problems = synthetic.generate(cfg.queries.count, seed=cfg.seed, split="train", kinds=cfg.queries.kinds)
        # The supervised baselines (SFT, SPIN) train on a labelled corpus: the worked solutions.
        builder = _baseline(cfg)
        shown = [dataclasses.replace(p, question=_with_instruction(p.question, cfg)) for p in problems]
        synthetic.write_queries(out, shown, solutions=builder is not None and builder.supervised)
        write_answer_key(answers, [Item(id=p.id, question=p.question, gold=p.answer,
                                        meta={"kind": p.kind, "choices": list(p.choices)})
                                   for p in problems], "synthetic")
        return {"queries": str(out), "count": len(problems), "answers": str(answers)}
    if cfg.queries.task is not None:
        items = get_task(cfg.queries.task).load(Path(cfg.queries.source), limit=cfg.queries.count, seed=cfg.seed)
        atomic_write_text(out, "".join(dumps({"id": it.id, "instruction": _with_instruction(it.question, cfg)}) + "\n"
                                       for it in items))
        write_answer_key(answers, items, cfg.queries.task)
        return {"queries": str(out), "count": len(items), "answers": str(answers)}
    from genius.queries import load_queries

    qs = load_queries(cfg.queries.source, field=cfg.queries.field, limit=cfg.queries.count)
    atomic_write_text(out, "".join(dumps({"id": q.id, "instruction": _with_instruction(q.text, cfg)}) + "\n"
                                   for q in qs))
    return {"queries": str(out), "count": len(qs), "input": dict(qs.counts)}


def _with_instruction(text: str, cfg: PipelineConfig) -> str:
    return f"{text}\n\n{cfg.queries.instruction}" if cfg.queries.instruction else text


def plan(cfg: PipelineConfig, engines: _Engines, results: dict[str, dict[str, Any]],
         force: bool = False) -> list[Stage]:
    """Every stage of the run, in order. Later stages read what earlier ones recorded in
    ``results`` (stage name -> what its run returned, or its DONE.json when it was skipped).
    ``force`` goes down to every stage (each checks its own folder's config copy)."""
    layout = RunLayout(cfg.run_dir)
    queries = layout.queries
    shard = engines.ranks.shard(cfg.parallel)

    def evaluate(model: str, out: Path) -> Callable[[], dict[str, Any]]:
        from genius.evaluation.evaluate import run_eval

        return lambda: {"metrics": run_eval(eval_config(cfg, model), out, engine=engines.get(model), shard=shard,
                                            together=True, force=force)}

    base_dir = layout.base_eval
    base_eval = (Stage("eval-base", base_dir, evaluate(cfg.model, base_dir), runs_on="generators")
                 if cfg.base_eval_from is None
                 else Stage("eval-base", base_dir, lambda: _reuse_base_eval(cfg, Path(cfg.base_eval_from), base_dir)))
    stages = [Stage("queries", queries.parent, lambda: make_queries(cfg, queries))]
    if evaluates(cfg):
        stages.append(base_eval)
    for r in range(1, cfg.rounds + 1):
        stages += _round_stages(cfg, r, layout.round(r), queries, engines, results, evaluate, force)
    return stages


def _round_stages(cfg: PipelineConfig, r: int, rnd: RoundLayout, queries: Path, engines: _Engines,
                  results: dict[str, dict[str, Any]], evaluate: Callable, force: bool) -> list[Stage]:
    def policy() -> str:
        return cfg.model if r == 1 else results[f"round{r - 1}-train"]["model"]

    def build() -> dict[str, Any]:
        if cfg.data_from is not None:
            return _reuse_data(RunLayout(cfg.data_from).round(1).sample, rnd.sample)
        ctx = MethodContext(cfg, r, rnd.sample, queries, engines.get(policy()), engines.ranks.shard(cfg.parallel),
                            force)
        data = methods()[cfg.method](ctx)
        merged_here = ctx.shard is None or ctx.shard[0] == 0  # shard 0 merges; the others' data is not in yet
        if not merged_here:
            return {"data": str(data)}
        result = {"data": str(data)}
        answers = RunLayout(cfg.run_dir).answers
        if answers.is_file() and rnd.trees.is_file():
            from genius.sampling.signal import write_signal

            result["signal"] = write_signal(rnd.sample, answers)["headline"]
            print(result["signal"])
        if not _has_records(data):
            raise UserError(f"stage 'round{r}-sample': method '{cfg.method}' built no training data from the "
                            f"queries ({data} is empty; see {data.parent / 'stats.json'}): try more queries, "
                            "more samples per query (baseline.k), longer budgets (sample.max_rollout_tokens: "
                            "pairs with a cut response are dropped) or sample.unfinished: keep")
        return result

    def train() -> dict[str, Any]:
        from genius.training import run_train

        engines.release()  # the trainer loads its own copy
        start, reference = round_models(cfg, r, policy())
        tcfg = train_config(cfg, policy=start, reference=reference, data=Path(results[f"round{r}-sample"]["data"]))
        final = run_train(tcfg, rnd.train, resume=True, force=force)
        # While a DeepSpeed config is registered, transformers creates every model inside ZeRO-3's
        # zero.Init: the next stage's engine must load a whole model.
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
        return {"model": str(final), "steps": rnd.last_train_step() or 0, "started_from": start,
                "reference": reference}

    def intermediate() -> dict[str, Any]:
        from genius.training.checkpoint import checkpoints

        done = {}
        for step, path in checkpoints(rnd.train):
            out = rnd.eval_step(step)
            run_stage(Stage(f"round{r}-eval-step{step}", out, evaluate(str(path / "model"), out), runs_on="generators"),
                      ranks=engines.ranks, mode=cfg.parallel)
            done[step] = str(out)
        return {"evaluated": done}

    stages = [
        Stage(f"round{r}-sample", rnd.sample, build, needs=((queries, "queries"),),
              runs_on="main" if cfg.data_from is not None else "generators"),
        Stage(f"round{r}-train", rnd.train, train,
              needs=((rnd.sample / DONE, f"round{r}-sample"),), runs_on="all"),
    ]
    if not evaluates(cfg):
        return stages
    if cfg.eval.get("eval_every"):
        stages.append(Stage(f"round{r}-eval-steps", rnd.eval_steps, intermediate,
                            needs=((rnd.train / DONE, f"round{r}-train"),), runs_on="all"))
    stages.append(Stage(f"round{r}-eval", rnd.eval, lambda: evaluate(results[f"round{r}-train"]["model"], rnd.eval)(),
                        needs=((rnd.train / DONE, f"round{r}-train"),), runs_on="generators"))
    return stages


def _reuse_data(source: Path, out: Path) -> dict[str, Any]:
    """Copy another run's finished training data (and its sampling stats, for the report)."""
    if not is_done(source):
        raise UserError(f"data_from: {source} holds no finished sample stage; run that run first")
    data = Path(read_json(source / DONE)["result"]["data"])
    if not data.is_file():
        raise UserError(f"data_from: {data} (the data of {source}) is missing")
    out.mkdir(parents=True, exist_ok=True)
    for name in (data.name, "stats.json"):
        if (data.parent / name).is_file():
            shutil.copyfile(data.parent / name, out / name)
    return {"data": str(out / data.name), "copied_from": str(data)}


def _has_records(path: Path) -> bool:
    from genius.io import iter_jsonl

    return path.is_file() and next(iter_jsonl(path), None) is not None


def _reuse_base_eval(cfg: PipelineConfig, source_run: Path, out: Path) -> dict[str, Any]:
    """Copy another run's finished base evaluation, after checking it evaluated the same thing."""
    source = RunLayout(source_run).base_eval
    if not is_done(source):
        raise UserError(f"base_eval_from: {source} holds no finished base evaluation; run {source_run} first")
    theirs = cfgmod.read_yaml(RunLayout(source_run).config) or {}
    mine = cfgmod.to_dict(cfg)
    differ = [k for k in ("model", "dtype", "device", "seed", "eval") if theirs.get(k) != mine.get(k)]
    if differ:
        raise UserError(f"base_eval_from: {source_run} evaluated with other settings ({', '.join(differ)}); "
                        "remove base_eval_from to evaluate the base model here")
    shutil.copytree(source, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(DONE))
    return {**read_json(source / DONE).get("result", {}), "copied_from": str(source)}


def run_comparison(cfg: PipelineConfig, *, force: bool = False, only: list[str] | None = None,
                   log: Callable[[str], None] = print) -> Path:
    """Run (or resume) every run of a ``compare`` config, then write run_dir/report.md with all
    of them in one table; return the run directory."""
    from genius import report

    run_dir = Path(cfg.run_dir)
    runs = comparison_runs(cfg)
    _check_saved_config(cfg, run_dir, force)
    run_dir.mkdir(parents=True, exist_ok=True)
    if Ranks.from_env().is_main:
        cfgmod.save(cfg, RunLayout(run_dir).config)
    failed: list[str] = []
    for i, run in enumerate(runs, 1):
        name = Path(run.run_dir).name
        log(f"=== compare {i}/{len(runs)}: {name} (method {run.method})")
        try:
            run_pipeline(run, force=force, only=only, log=log)
        except UserError as e:
            if i == 1:  # the others copy its base evaluation
                raise
            # One method that cannot finish (e.g. no training data at this size) should not
            # cost the others: it is reported and the comparison goes on.
            log(f"=== compare: {name} stopped: {e}")
            failed.append(f"{name} ({e})")
    if Ranks.from_env().is_main:
        report.build_comparison_report(run_dir, [Path(r.run_dir) for r in runs])
    if failed:
        raise UserError(f"compare: {len(failed)} of {len(runs)} runs did not finish: " + "; ".join(failed))
    return run_dir


def _rank_log(ranks: Ranks, log: Callable[[str], None]) -> Callable[[str], None]:
    return lambda message: log(f"[rank {ranks.rank}] {message}")


def run_pipeline(cfg: PipelineConfig, *, force: bool = False, only: list[str] | None = None,
                 log: Callable[[str], None] = print) -> Path:
    """Run (or resume) every stage of ``cfg``; write report.md; return the run directory."""
    from genius import report

    if cfg.compare:
        return run_comparison(cfg, force=force, only=only, log=log)
    run_dir = Path(cfg.run_dir)
    ranks = Ranks.from_env()
    if not ranks.is_main:
        log = _rank_log(ranks, log)
    _check_saved_config(cfg, run_dir, force)
    run_dir.mkdir(parents=True, exist_ok=True)
    if ranks.is_main:
        cfgmod.save(cfg, RunLayout(run_dir).config)
    engines = _Engines(cfg, ranks)
    results: dict[str, dict[str, Any]] = {}
    stages = plan(cfg, engines, results, force)
    names = [s.name for s in stages]
    for name in only or []:
        if name not in names:
            raise UserError(f"unknown stage '{name}': expected one of {', '.join(names)}")
    t0 = time.perf_counter()
    for stage in stages:
        if only and stage.name not in only:
            if is_done(stage.dir):
                results[stage.name] = read_json(stage.dir / DONE).get("result", {})
            continue
        results[stage.name] = run_stage(stage, log, ranks, cfg.parallel)
    engines.release()
    if ranks.is_main:
        report.build_report(run_dir)
    log(f"genius run: {run_dir} in {time.perf_counter() - t0:.0f}s; report: {RunLayout(run_dir).report}")
    return run_dir
