"""The one config of every baseline data builder (``method:`` in a run config).

Fields marked ``may_change`` (batch size, engine) set how fast a build goes: a resumed build may
change them; every other field must match the folder's baseline.yaml (genius.config.check_resume)."""

from __future__ import annotations

from dataclasses import dataclass

from genius.config import may_change
from genius.engines.options import EngineName, EngineOptions
from genius.errors import UserError


@dataclass
class BaselineConfig:
    k: int = 4
    """Samples per query: STaR rationales, Self-Rewarding candidates, ScPO voters."""
    temperature: float = 0.7
    """Sampling temperature of every generated response (Self-Rewarding used 0.7)."""
    top_p: float = 0.9
    """Nucleus sampling of every generated response (Self-Rewarding used 0.9)."""
    max_new_tokens: int = 256
    """Longest generated response, in tokens."""
    system_prompt: str | None = None
    """Optional system message put before every query (kept in the records' prompt)."""
    assistant_prefix: str = "The reasoning steps are:\n\n"
    """Text the generated responses start with (the same as Genius, so the methods differ only
    in their data). SFT and SPIN ignore it: their chosen response is the corpus text, and a
    prefix on the rejected side only would be a give-away."""
    batch_size: int = may_change(8)
    """Queries per engine call; every finished batch is on disk (a killed run resumes)."""
    engine: EngineName = may_change("auto")
    """Generation backend: hf (transformers), vllm, or auto (vllm where it is installed and a
    GPU is there, else hf). Each engine draws its own random numbers: same settings, other samples."""
    engine_options: EngineOptions = may_change(default_factory=EngineOptions)
    """Engine settings: max_model_len, gpu_memory_utilization, tensor_parallel_size, enforce_eager
    (genius.engines.options)."""
    seed: int = 0
    """Seed of all sampling (set by genius run: round r samples with the run's seed + r, as Genius does)."""
    spin_greedy: bool = True
    """SPIN: the model's own (rejected) response is greedy; false samples it at `temperature`."""
    judge_samples: int = 3
    """Self-Rewarding: judge samples per candidate; the score is their mean (paper: 3)."""
    judge_temperature: float = 0.7
    """Self-Rewarding: temperature of the judge samples."""
    judge_max_new_tokens: int = 256
    """Self-Rewarding: longest judgement (a short justification and "Score: X")."""
    judge_prefix: str = ""
    """Self-Rewarding: text the judgement starts with. "" is the paper (justify, then conclude
    with "Score: X"); "Score: " makes a small model state its score first, with a few tokens
    (judge_max_new_tokens 4), for micro-scale runs where it never reaches the conclusion."""
    vote_threshold: float = 0.5
    """STaR and ScPO: two answers agree when the Jaccard similarity of their token sets is at
    least this (1.0 = exact match of the normalised answers); see genius.baselines.voting."""
    star_min_votes: int = 2
    """STaR: the majority answer must hold at least this many of the k samples."""
    scpo_min_votes: int = 2
    """ScPO: the most-voted answer must hold at least this many votes (the paper's threshold)."""

    def validate(self) -> None:
        checks = [
            (self.k >= 2, f"k must be >= 2 (votes and best-vs-worst need two samples), got {self.k}"),
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.judge_samples >= 1, f"judge_samples must be >= 1, got {self.judge_samples}"),
            (self.judge_temperature >= 0, f"judge_temperature must be >= 0, got {self.judge_temperature}"),
            (self.judge_max_new_tokens >= 1, f"judge_max_new_tokens must be >= 1, got {self.judge_max_new_tokens}"),
            (0 < self.vote_threshold <= 1, f"vote_threshold must be in (0, 1], got {self.vote_threshold}"),
            (self.star_min_votes >= 1, f"star_min_votes must be >= 1, got {self.star_min_votes}"),
            (self.scpo_min_votes >= 1, f"scpo_min_votes must be >= 1, got {self.scpo_min_votes}"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"baseline config: {message}")
