"""Settings of stepwise foresight re-sampling (METHOD.md sections 2, 3 and 6).

Fields marked ``may_change`` set how fast a run goes, not what it samples: a resumed run may
change them (genius.config.check_resume)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from genius.config import may_change
from genius.engines.options import EngineName, EngineOptions
from genius.errors import UserError


@dataclass
class SampleConfig:
    beams: int = 2
    """M: beams kept per step."""
    candidates: int = 4
    """N: candidate steps sampled per beam (M*N from the root at the first step)."""
    steps: int = 4
    """K: foresight steps; each yields at most one preference pair."""
    tau: float = 0.1
    """Temperature of the re-sampling distribution softmax(score / tau) (paper Eqs. 2-5)."""
    step_temperature: float = 0.6
    """Sampling temperature of candidate steps."""
    rollout_temperature: float = 0.6
    """Sampling temperature of foresight rollouts: 0.6 in the paper, 1.0 in the reference code."""
    top_p: float = 1.0
    """Nucleus mass for steps and rollouts."""
    delimiter: str = "\n"
    """A step ends at the token that completes this string. Steps that hold nothing but whitespace
    (a bare blank line) are merged into the following text instead of counting as a step."""
    assistant_prefix: str = "The reasoning steps are:\n\n"
    """Text the assistant turn starts with; part of every chosen/rejected response."""
    end_markers: list[str] = field(default_factory=list)
    """Strings that end a response like EOS does (e.g. "<end_of_reasoning>"); empty = EOS only."""
    max_step_tokens: int = 256
    """Longest candidate step in tokens (a longer one is cut and still counts as a step)."""
    max_rollout_tokens: int = 1024
    """Token budget of a foresight rollout."""
    score: Literal["foresight", "step_logprob"] = "foresight"
    """foresight: f = mean log-prob of the rollout (paper Eq. 1); step_logprob: candidates are
    scored by their own mean step log-prob (paper Table 3, w/o foresight). The rollouts are made
    either way: they complete the chosen and rejected responses, so the ablation differs from
    Genius only in how steps are scored."""
    selection: Literal["sample", "greedy"] = "sample"
    """sample: draw M distinct beams from softmax(score / tau) (paper); greedy: keep the top M
    (paper Table 3, w/o sampling)."""
    negatives: Literal["auto", "categorical", "uniform", "lowest"] = "auto"
    """The rejected response of a pair among the candidates left after the chosen (highest score)
    one: categorical from softmax(score / tau) (paper Eq. 5), uniform (reference code), lowest
    score. auto = categorical with selection sample, lowest with selection greedy (the paper's
    w/o sampling ablation)."""
    unfinished: Literal["drop", "keep"] = "drop"
    """A pair whose chosen or rejected response was cut by a token budget (its rollout, or the
    context, ran out before EOS or an end marker): drop it (counted in stats.json), or keep it
    (training then appends no EOS to the cut side, so the model is not taught to stop mid-answer)."""
    seed: int = 0
    """Seeds the engine calls and, with the query id and step, every beam and negative draw."""
    batch_sequences: int = may_change(128)
    """Sequences per engine call: queries advance in lockstep until their candidates fill this.
    ``genius sample`` and ``genius run`` also make it the engine's batch. On the 2-core dev CPU a
    decode step costs 3.9 ms per row at 128 rows, 5.8 at 64 and no less at 256 (200-token
    contexts: past 128 rows the rows' keys/values outweigh the weights); GPUs want more (the vLLM
    engine takes the whole call at once: thousands of sequences)."""
    engine: EngineName = may_change("auto")
    """Generation backend: hf (transformers), vllm, or auto (vllm where it is installed and a
    GPU is there, else hf). Each engine draws its own random numbers: same settings, other samples."""
    engine_options: EngineOptions = may_change(default_factory=EngineOptions)
    """Engine settings: max_model_len, gpu_memory_utilization, tensor_parallel_size, enforce_eager
    (genius.engines.options)."""

    @property
    def negative_rule(self) -> str:
        if self.negatives != "auto":
            return self.negatives
        return "lowest" if self.selection == "greedy" else "categorical"

    @property
    def first_step_candidates(self) -> int:
        return self.beams * self.candidates

    def validate(self) -> None:
        for name in ("beams", "candidates", "steps", "max_step_tokens", "max_rollout_tokens"):
            if getattr(self, name) < 1:
                raise UserError(f"sample config: {name} must be >= 1, got {getattr(self, name)}")
        if self.beams * self.candidates < 2:
            raise UserError(f"sample config: beams * candidates = {self.beams * self.candidates}: "
                            "a step needs at least 2 candidates to make a pair")
        if not self.tau > 0:
            raise UserError(f"sample config: tau must be > 0, got {self.tau}")
        for name in ("step_temperature", "rollout_temperature"):
            if getattr(self, name) < 0:
                raise UserError(f"sample config: {name} must be >= 0 (0 = greedy), got {getattr(self, name)}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"sample config: top_p must be in (0, 1], got {self.top_p}")
        if not self.delimiter:
            raise UserError("sample config: delimiter must be a non-empty string such as \"\\n\"")
        if any(not m for m in self.end_markers):
            raise UserError("sample config: end_markers must be non-empty strings")
        if self.unfinished not in ("drop", "keep"):
            raise UserError(f"sample config: unfinished must be drop or keep, got {self.unfinished!r}")
        if self.batch_sequences < self.first_step_candidates:
            raise UserError(f"sample config: batch_sequences ({self.batch_sequences}) must hold at least one "
                            f"query's candidates (beams * candidates = {self.first_step_candidates})")
