"""The Engine protocol: what sampling and evaluation need from a generation backend.

Prompts are token ids (build them with ``genius.models.chat_prompt_ids``). Every completion
carries its text, token ids, per-token log-probs and why it finished.

Log-probs are those of the model's own distribution, log softmax(logits) *before* temperature
and top-p: the foresight score of the method (mean token log-prob of a rollout) is a property of
the model, not of how we happened to sample, and this is what teacher-forced ``logprobs()``
returns for the same tokens, so the two agree.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

from genius.errors import UserError

FinishReason = Literal["stop", "eos", "length"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    """Samples per prompt (they share the prompt's prefill)."""
    temperature: float = 1.0
    """0 means greedy."""
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    """Generation of a sequence ends at the token that completes any of these strings."""
    seed: int | None = None
    """Same prompts, params and seed give the same outputs. Every (prompt index, sample index)
    has its own random stream drawn from the seed (``stream_key``), so a prompt's samples do not
    depend on the prompts after it, the batch size, or when other sequences finish."""
    seeds: tuple[int, ...] | None = None
    """One seed per prompt (overrides ``seed``): prompt i's sample j draws from the stream of
    (seeds[i], j), so what a prompt gets does not depend on where it sits in the call or which
    other prompts share it (sampling and evaluation key them by item, step and candidate)."""
    on_finished: Callable[[int], None] | None = field(default=None, compare=False, repr=False)
    """Called with how many sequences just finished, while the call runs (progress bars move with
    the work done, not once per call). The counts of a call add up to at most prompts * n; an
    engine that cannot tell reports less (callers count the rest done when generate returns)."""

    def validate(self) -> None:
        if self.n < 1:
            raise UserError(f"sampling: n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise UserError(f"sampling: temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"sampling: top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise UserError(f"sampling: max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if any(not s for s in self.stop):
            raise UserError("sampling: stop strings must be non-empty")

    def check_seeds(self, prompts: int) -> None:
        if self.seeds is not None and len(self.seeds) != prompts:
            raise ValueError(f"sampling: {len(self.seeds)} seeds for {prompts} prompts")


@dataclass
class Completion:
    text: str
    """Decoded ``token_ids`` without special tokens. When a stop string ends inside a token the
    text runs to the end of that token (it is exactly what the tokens say)."""
    token_ids: list[int]
    """Generated tokens, including the EOS token when finish_reason is "eos"."""
    logprobs: list[float]
    """log p(token) under the model (before temperature/top-p), one per token."""
    finish_reason: FinishReason
    stop_string: str | None = None
    """Which stop string ended it (finish_reason "stop")."""
    prompt_tokens: int = 0

    @property
    def mean_logprob(self) -> float:
        """Mean token log-prob; nan for a completion of no tokens (as sampling.scoring.mean: no
        tokens is no evidence, not a perfect score of 0)."""
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else math.nan


@dataclass
class EngineStats:
    prompt_tokens: int = 0
    reused_prompt_tokens: int = 0
    """Prompt tokens whose keys/values came from an earlier call instead of a prefill."""
    generated_tokens: int = 0
    forward_calls: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def check_prompts(prompts: Sequence[Sequence[int]], max_context: int, limit: str) -> None:
    """Every prompt non-empty and leaving room to generate; ``limit`` says where the context
    length comes from, for the error line."""
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise UserError(f"prompt {i} is empty")
        if len(p) >= max_context:
            raise UserError(f"prompt {i} has {len(p)} tokens; {limit} is {max_context} and leaves no room to generate")


def call_seed(params: SamplingParams) -> int:
    """The seed of a generate call: the given one, else a fresh random one."""
    return params.seed if params.seed is not None else int.from_bytes(os.urandom(8), "little")


def stream_key(params: SamplingParams, seed: int, prompt: int, sample: int) -> str:
    """The key of the random stream of (prompt, sample) in a call with seed ``seed``: both
    engines seed from it, so their streams are keyed alike."""
    if params.seeds is not None:
        return f"{params.seeds[prompt]}:{sample}"
    return f"{seed}:{prompt}:{sample}"


def derive_seed(seed: int, *key: object) -> int:
    """A 63-bit seed that depends only on its arguments (not on Python's per-process hash seed):
    the per-prompt seeds of items, steps and candidates."""
    text = "\x1f".join(str(k) for k in (seed, *key))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


@runtime_checkable
class Engine(Protocol):
    """A text generation backend (transformers today; vLLM can drop in)."""

    tokenizer: Any
    """An HF tokenizer (encode/decode, eos_token_id, chat template)."""

    @property
    def max_context(self) -> int:
        """Longest prompt + completion the model accepts, in tokens."""
        ...

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        """For every prompt, ``params.n`` completions (outer list in prompt order); sequences are
        reported through ``params.on_finished`` as they finish."""
        ...

    def logprobs(self, prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]]) -> list[list[float]]:
        """Teacher-forced log p(completion token | prompt, earlier tokens), one list per pair."""
        ...
