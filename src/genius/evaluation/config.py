"""EvalConfig: every setting of an evaluation (``genius eval``, the evaluation stages of
``genius run``), typed, with a docstring under each field, and the checks it needs before any
model loads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from genius.config import may_change, path_field
from genius.engines.base import SamplingParams
from genius.engines.options import EngineName, EngineOptions
from genius.errors import UserError
from genius.evaluation.judge import JudgeConfig
from genius.evaluation.prompts import get_preset
from genius.evaluation.tasks import Task, get_task
from genius.evaluation.tasks.livecodebench import parse_dates, release_files
from genius.models import DEFAULT_MODEL


@dataclass
class EvalConfig:
    """Fields that change what the model answers must match the folder's config.yaml on resume;
    the others (which items, where and how fast) are marked ``may_change``: a resumed run may
    add tasks or items and change the engine, device or batch."""

    model: str = path_field(DEFAULT_MODEL)
    """Model spec: embedded name, local HF folder or hub id."""
    tasks: list[str] = may_change(default_factory=lambda: ["gsm8k"])
    """Task names (see ``genius eval --help`` for the list)."""
    limit: int | None = may_change(None)
    """Evaluate only the first N items of each task (None: all)."""
    samples: int = 1
    """Responses per item. 1: greedy accuracy; n > 1: sampled accuracy, maj@n and pass@n."""
    temperature: float | None = None
    """Sampling temperature; None: 0 (greedy) for samples = 1, else 0.6 (the paper's)."""
    top_p: float = 1.0
    """Nucleus mass of sampling (1.0: the whole distribution)."""
    max_new_tokens: int = 1024
    """Token budget of each response; a response cut here usually has no answer."""
    preset: str = "paper"
    """Prompt protocol: paper, code (the reference code's shots) or zero-shot."""
    data_dir: Path | None = may_change(None)
    """Folder with one subfolder per task in the official formats (like shared/data/bench); None:
    load each task from its hub id (online only)."""
    seed: int = 0
    """Seed of sampling and of generated tasks."""
    batch_size: int = may_change(64)
    """Items per engine.generate call."""
    dtype: str = may_change("auto")
    """Weights dtype: auto (bf16 where the hardware runs it fast, else fp32), bf16, fp16 or fp32."""
    device: str = may_change("auto")
    """cpu, cuda, cuda:1, ... (auto: cuda when available)."""
    engine: EngineName = may_change("auto")
    """Generation backend: hf (transformers), vllm, or auto (vllm where it is installed and a
    GPU is there, else hf). Each engine draws its own random numbers: same settings, other samples."""
    engine_options: EngineOptions = may_change(default_factory=EngineOptions)
    """Engine settings: max_model_len, gpu_memory_utilization, tensor_parallel_size, enforce_eager
    (genius.engines.options)."""
    trust_remote_code: bool = may_change(False)
    """Allow model code from the model folder / hub (it runs foreign code)."""
    allow_code_execution: bool = may_change(False)
    """Run the model's programs to score code tasks (mbpp, humaneval, livecodebench), each in the
    sandbox of genius.evaluation.sandbox; without it those tasks are refused."""
    livecodebench_release: str = "release_latest"
    """LiveCodeBench release: release_latest (every file), release_vN (test.jsonl..testN.jsonl),
    vN (testN.jsonl only) or vN_vM."""
    livecodebench_dates: str | None = None
    """LiveCodeBench contest dates START..END (YYYY-MM-DD, inclusive, either end open): only
    problems published after a model's training cutoff, say 2024-08-01..; None: all."""
    wildbench_reference: str = "claude-3-haiku-20240307"
    """The reference model of wildbench_reward (WB-Reward): its answers in allenai/WildBench-V2-Model-Outputs
    (gpt-4-turbo-2024-04-09, claude-3-haiku-20240307 and Llama-2-70b-chat-hf are the leaderboard's)."""
    judge_url: str | None = None
    """OpenAI-compatible API (".../v1") of the judge of judged tasks (arena_hard, alpaca_eval,
    wildbench): a hosted one, or a local ``vllm serve`` at http://127.0.0.1:8000/v1."""
    judge_model: str | None = None
    """The judge model's name at judge_url (None: gpt-4-1106-preview, the judge of Arena-Hard v0.1
    and AlpacaEval 2.0; WildBench's WB-Score was judged by gpt-4o-2024-05-13)."""
    judge_local: str | None = None
    """Judge with this model through genius's own engine instead of a URL (embedded name or HF
    folder; the evaluated model itself may judge)."""
    judge_max_tokens: int | None = None
    """Longest judgement (None: Arena-Hard's 4096 for a judge at a URL, max_new_tokens for a local
    judge, which may not stop by itself); AlpacaEval's judge writes one token."""
    judge_api_key_env: str = may_change("OPENAI_API_KEY")
    """Environment variable holding the judge API's key (sent as a bearer token; never stored)."""

    def validate(self) -> None:
        if not self.tasks:
            raise UserError("eval: no tasks given")
        for name in self.tasks:
            get_task(name)
        get_preset(self.preset)
        if self.limit is not None and self.limit < 1:
            raise UserError(f"eval: limit must be >= 1, got {self.limit}")
        if self.samples < 1:
            raise UserError(f"eval: samples must be >= 1, got {self.samples}")
        if self.batch_size < 1:
            raise UserError(f"eval: batch_size must be >= 1, got {self.batch_size}")
        for task in map(get_task, self.tasks):
            refuse_code_execution(task, self)
        if self.judge_url and self.judge_local:
            raise UserError("eval: judge_url and judge_local both given: a judged task has one judge, give one")
        judged = [name for name in self.tasks if get_task(name).judge]
        if judged and not (self.judge_url or self.judge_local):
            raise UserError(f"eval: task(s) {', '.join(judged)} are scored by an LLM judge: pass --judge-url URL (an "
                            "OpenAI-compatible API, with --judge-model) or --judge-local MODEL")
        release_files(self.livecodebench_release, ())
        parse_dates(self.livecodebench_dates)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.wildbench_reference):
            raise UserError(f"eval: wildbench_reference {self.wildbench_reference!r}: expected a model name of "
                            "WildBench-V2-Model-Outputs (letters, digits, '.', '_', '-'), e.g. claude-3-haiku-20240307")
        if self.judge_max_tokens is not None and self.judge_max_tokens < 1:
            raise UserError(f"eval: judge_max_tokens must be >= 1, got {self.judge_max_tokens}")
        SamplingParams(n=self.samples, temperature=self.sampling_temperature, top_p=self.top_p,
                       max_new_tokens=self.max_new_tokens).validate()

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 0.6

    def judge_config(self) -> JudgeConfig:
        """The judge of the judged tasks, from the judge_* fields."""
        tokens = self.judge_max_tokens or (self.max_new_tokens if self.judge_local and not self.judge_url
                                           else JudgeConfig.max_tokens)
        return JudgeConfig(url=self.judge_url, model=self.judge_model or JudgeConfig.model,
                           api_key_env=self.judge_api_key_env, local=self.judge_local, max_tokens=tokens)


def refuse_code_execution(task: Task, cfg: EvalConfig) -> None:
    """A task that runs model-written code, without the user's leave: one line saying why."""
    if task.executes_code and not cfg.allow_code_execution:
        raise UserError(f"eval: task {task.name} is scored by running the model's programs; pass "
                        "--allow-code-execution to allow it (each runs in a sandbox: a subprocess with time, memory "
                        "and CPU limits, no network where the OS allows; see genius.evaluation.sandbox)")
