"""The config of ``genius run`` (PipelineConfig, from YAML, ``--set`` and ``compare:``
entries) and the stage configs derived from it: one place for the seed rule (round r samples
with seed + r, methods and baselines alike; training uses seed) and the model rule of a round
(``round_models``).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genius import config as cfgmod
from genius.config import may_change, path_field
from genius.engines.options import EngineName, EngineOptions
from genius.errors import UserError
from genius.layout import RunLayout
from genius.ranks import ParallelMode


@dataclass
class QueriesConfig:
    source: str = "synthetic"
    """'synthetic' (built-in problems, see genius.synthetic), a local JSONL/JSON/CSV file, or a
    hub dataset id (online only)."""
    count: int | None = 64
    """How many queries every round trains on (null: every query of a file or hub source)."""
    kinds: list[str] = field(default_factory=lambda: ["arith1", "arith2", "arith3", "order"])
    """Synthetic problem kinds, in turn (source 'synthetic' only)."""
    field: str | None = None
    """Which field holds the query text when a file has several candidates (file/hub sources)."""
    instruction: str | None = None
    """Appended to every query after a blank line, e.g. the answer format ('End your response with
    "The answer is: X"...'): measured on the embedded model, its synthetic-problem pairs carry
    signal with it and none without (README, "Does the self-reward carry signal?")."""
    task: str | None = None
    """Read ``source`` (a file or folder in this evaluation task's format, e.g. a GSM8K train.jsonl)
    as the queries: the model sees the questions only, their gold answers go to
    queries/answers.jsonl for the signal diagnostics (genius.sampling.signal), which sampling and
    training never read. The synthetic source keeps its answers there too."""


@dataclass
class PipelineConfig:
    model: str = path_field("smollm2-135m")
    """The starting model: embedded name, local HF folder or hub id."""
    run_dir: str = path_field("runs/demo")
    """Where every file of the run goes; rerunning with the same run_dir resumes."""
    seed: int = 0
    """Seeds query drawing, sampling (seed + round) and training."""
    rounds: int = 1
    """Self-training rounds: round r samples with the model trained in round r-1."""
    reference: Literal["method", "initial", "previous"] = "method"
    """DPO reference of each round's training (``round_models``): the starting model (initial), the
    model the round starts from (previous), or the method's own rule (method: Genius initial; SPIN,
    Self-Rewarding, ScPO and CoH previous, as their papers iterate; STaR and SFT train without one)."""
    method: str = "genius"
    """Who builds the training data from the queries (see METHODS)."""
    dtype: str = "auto"
    """Weights dtype for sampling and evaluation (auto = fp32 on CPUs without fast bf16)."""
    device: str = "auto"
    """cpu, cuda, cuda:1, ... (auto: cuda when available)."""
    engine: EngineName = may_change("auto")
    """Generation backend of sampling and evaluation: hf (transformers), vllm, or auto (vllm where it is installed and a
    GPU is there, else hf). Each engine draws its own random numbers: same settings, other samples."""
    engine_options: EngineOptions = may_change(default_factory=EngineOptions)
    """Engine settings: max_model_len, gpu_memory_utilization, tensor_parallel_size, enforce_eager
    (genius.engines.options)."""
    parallel: ParallelMode = may_change("rank")
    """Under torchrun / accelerate launch, how sampling and evaluation use the processes: rank =
    every process generates its share of the items on its own GPU; node = the first process of
    each node generates the node's share with an engine over all its GPUs (set
    engine_options.tensor_parallel_size), the others wait. Training always uses every process."""
    data_from: str | None = path_field(None)
    """Another run_dir whose round-1 training data this run trains on instead of sampling its own
    (paper Table 4: every loss on the same pairs). Needs rounds: 1."""
    base_eval_from: str | None = path_field(None)
    """Another run_dir whose finished base evaluation this run copies instead of evaluating the
    same model again (it must have the same model and eval settings; checked)."""
    compare: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Run several methods side by side on the same queries (paper Table 1): run name -> dotted
    overrides of this config for that run, e.g. ``{genius: {}, star: {baseline.k: 8}}``. Each runs
    in run_dir/NAME (method: NAME unless the overrides set it), all but the first copy the first
    one's base evaluation, and run_dir/report.md puts them in one table."""
    queries: QueriesConfig = field(default_factory=QueriesConfig)
    """Where the unlabeled queries come from."""
    sample: dict[str, Any] = field(default_factory=dict)
    """SampleConfig fields (genius.sampling); model, queries and output are set by the pipeline."""
    train: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields (genius.training); model, reference, data and output are set by the pipeline."""
    baseline: dict[str, Any] = field(default_factory=dict)
    """BaselineConfig fields (genius.baselines) when ``method`` is a baseline (seed is set by the pipeline)."""
    eval: dict[str, Any] = field(default_factory=dict)
    """EvalConfig fields (genius.evaluation), plus ``eval_every: S`` to also evaluate every S
    training steps (the post-training scaling curve); model and output are set by the pipeline."""

    def validate(self) -> None:
        if self.rounds < 1:
            raise UserError(f"key 'rounds': expected an integer >= 1, got {self.rounds}")
        if self.queries.task is not None and self.queries.source == "synthetic":
            raise UserError("key 'queries.task': the synthetic source has its own answers; set queries.source to "
                            f"a file or folder in the format of task {self.queries.task}")
        if self.queries.count is None and self.queries.source == "synthetic":
            raise UserError("key 'queries.count': the synthetic source needs a count (null reads a whole file)")
        if self.queries.count is not None and self.queries.count < 1:
            raise UserError(f"key 'queries.count': expected an integer >= 1 or null, got {self.queries.count}")
        from genius.methods import methods

        if self.method not in methods():
            raise UserError(f"key 'method': unknown method '{self.method}'; expected one of {', '.join(methods())}")
        from genius.baselines import BUILDERS

        if self.method in BUILDERS and not BUILDERS[self.method].uses_engine and self.rounds > 1:
            raise UserError(f"key 'rounds': {self.method} trains on fixed corpus data, so a second round would train "
                            f"on the same data again; expected rounds: 1, got {self.rounds}")
        if self.data_from is not None and self.rounds != 1:
            raise UserError(f"key 'data_from': reusing another run's data needs rounds: 1, got rounds: {self.rounds}")
        for name, overrides in self.compare.items():
            if not isinstance(overrides, dict):
                raise UserError(f"key 'compare.{name}': expected a mapping of dotted overrides (or {{}}), "
                                f"got {overrides!r}")
        every = self.eval.get("eval_every")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise UserError(f"key 'eval.eval_every': expected an integer >= 1 or null, got {every!r}")


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """The pipeline config (the packaged demo preset when ``path`` is None), overrides applied
    with dotted keys (``queries.count``), every stage config validated before any work."""
    if path is None:
        path = demo_config_path()
    data = cfgmod.read_mapping(path)
    cfg = cfgmod.from_dict(PipelineConfig, _apply_overrides(data, overrides or {}, "override"), source=str(path))
    if cfg.compare:
        comparison_runs(cfg, source=str(path))  # validates every run's stages
    else:
        validate_stages(cfg, source=str(path))
    return cfg


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any], what: str) -> dict[str, Any]:
    """``data`` with ``overrides`` laid over it: keys dotted (``queries.count``, as in ``compare:``
    entries) or nested (``{'queries': {'count': 8}}``, as ``--set`` gives them); sections merge
    key by key (genius.config.nest and merge_sets, the one way for every command)."""
    return cfgmod.merge_sets(data, cfgmod.nest(overrides, what))


def demo_config_path() -> Path:
    return Path(__file__).parent / "configs" / "demo.yaml"


# --- stage configs ---------------------------------------------------------------------------

def _stage_config(cls: type, user: dict[str, Any], owned: dict[str, Any], section: str, source: str) -> Any:
    """Build a stage's dataclass from the user's section plus the fields the pipeline sets."""
    for key in user:
        if key in owned:
            raise UserError(f"{source}: key '{section}.{key}' is set by the pipeline; remove it")
    names = {f.name for f in dataclasses.fields(cls)}
    return cfgmod.from_dict(cls, {**user, **{k: v for k, v in owned.items() if k in names}},
                            source=source, prefix=f"{section}.")


def sample_config(cfg: PipelineConfig, round_: int, source: str = "config") -> Any:
    from genius.sampling import SampleConfig

    return _stage_config(SampleConfig, cfg.sample, {"seed": cfg.seed + round_, **_engine_fields(cfg)}, "sample", source)


def train_config(cfg: PipelineConfig, *, policy: str, reference: str | None, data: Path,
                 source: str = "config") -> Any:
    from genius.training import TrainConfig

    owned: dict[str, Any] = {"model": policy, "reference_model": reference, "data": str(data), "seed": cfg.seed}
    from genius.baselines import default_loss

    user = {"loss": default_loss(cfg.method), **cfg.train}
    if cfg.eval.get("eval_every"):
        # Intermediate models for the scaling curve: a checkpoint every S steps, all kept.
        owned.update(save_every=cfg.eval["eval_every"], keep_checkpoints=0)
    return _stage_config(TrainConfig, user, owned, "train", source)


def eval_config(cfg: PipelineConfig, model: str, source: str = "config") -> Any:
    from genius.evaluation.evaluate import EvalConfig

    user = {k: v for k, v in cfg.eval.items() if k != "eval_every"}
    owned = {"model": model, "dtype": cfg.dtype, "device": cfg.device, **_engine_fields(cfg)}
    return _stage_config(EvalConfig, user, owned, "eval", source)


def _engine_fields(cfg: PipelineConfig) -> dict[str, Any]:
    """The run's engine settings, which its sampling and evaluation (and their records) share."""
    return {"engine": cfg.engine, "engine_options": cfg.engine_options}


def validate_stages(cfg: PipelineConfig, source: str = "config") -> None:
    """Build every stage config once so that a bad key fails before any work."""
    sample_config(cfg, 1, source)
    train_config(cfg, policy=cfg.model, reference=None, data=Path(cfg.run_dir) / "data.jsonl", source=source)
    if evaluates(cfg):
        eval_config(cfg, cfg.model, source)
    from genius.baselines import BaselineConfig

    _stage_config(BaselineConfig, cfg.baseline, {"seed": cfg.seed + 1, **_engine_fields(cfg)}, "baseline", source)


def comparison_runs(cfg: PipelineConfig, source: str = "config") -> list[PipelineConfig]:
    """The runs of a ``compare`` config, in order: each is the config with the entry's overrides,
    method NAME (unless overridden), run_dir/NAME, and the first run's base evaluation."""
    base = {k: v for k, v in cfgmod.to_dict(cfg).items() if k != "compare"}
    runs: list[PipelineConfig] = []
    for name, overrides in cfg.compare.items():
        data = _apply_overrides(copy.deepcopy(base), {"method": name, **overrides}, f"compare.{name}")
        data["run_dir"] = str(RunLayout(cfg.run_dir).member(name).root)
        if runs and data.get("base_eval_from") is None:
            data["base_eval_from"] = runs[0].run_dir
        run = cfgmod.from_dict(PipelineConfig, data, source=f"{source}: compare.{name}")
        validate_stages(run, source=f"{source}: compare.{name}")
        runs.append(run)
    return runs


def evaluates(cfg: PipelineConfig) -> bool:
    """Whether the run evaluates its models: ``eval: {tasks: []}`` trains only (genius baseline --train)."""
    return cfg.eval.get("tasks") != []


def round_models(cfg: PipelineConfig, r: int, previous: str) -> tuple[str, str | None]:
    """The one rule of which model round ``r`` trains from and which is its frozen reference,
    for every method and entry point (``previous``: the model round r - 1 ended with, or the
    starting model in round 1). A method that restarts from the base (STaR) trains the starting
    model afresh; the others go on from ``previous``. The reference (``cfg.reference``, the
    method's own by default: genius.baselines.default_reference) is the starting model or
    ``previous``; None means the model training starts from, and SFT losses have none."""
    from genius.baselines import BUILDERS, default_reference

    builder = BUILDERS.get(cfg.method)
    start = cfg.model if builder is not None and builder.restart_from_base else previous
    rule = default_reference(cfg.method) if cfg.reference == "method" else cfg.reference
    if rule is None:
        return start, None
    reference = cfg.model if rule == "initial" else previous
    return start, None if reference == start else reference
