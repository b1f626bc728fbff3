"""TrainConfig: every setting of ``genius train``, typed, with a docstring under each field.

The loss hyper-parameters (beta, alpha, aco_clip, simpo_*, ropo_*, nll_weight) are the fields
of ``genius.training.losses.LossParams``, inherited. Fields marked ``may_change`` are those a
resumed training may change (how fast, where and how it is logged, not what it computes).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from genius.config import may_change, path_field
from genius.errors import UserError
from genius.training.losses import DEFAULT_LOSS, LossParams, get_loss


@dataclass
class LoraSettings:
    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])
    """Module names that get adapters (Llama/Qwen/SmolLM names by default)."""


@dataclass
class TrainConfig(LossParams):
    model: str = path_field("smollm2-135m")
    """Starting policy: embedded name, local HF folder or hub id."""
    data: Path | list[Path] | None = None
    """pairs.jsonl (chosen/rejected) or sft.jsonl (response) file(s); several are concatenated."""
    data_format: Literal["auto", "pairs", "sft"] = "auto"
    """auto: pairs when the first record has 'chosen', sft when it has 'response'."""
    loss: str = DEFAULT_LOSS
    """aco, dpo, ipo, simpo, ropo, sft or dpo_nll (see genius.training.losses); its settings
    are the LossParams fields."""
    reference_model: str | None = path_field(None)
    """Frozen reference; default: the starting model (with LoRA: the adapter-disabled policy)."""
    reference_mode: Literal["precompute", "online"] = "precompute"
    """precompute: reference log-probs once before training, cached on disk (no second model in
    memory during training); online: a reference forward pass every step (for comparison)."""
    reference_cache_dir: Path | None = may_change(None)
    """Where precomputed reference log-probs are cached (default: <genius cache>/reference-logps)."""
    lr: float = 5e-7
    warmup_ratio: float = 0.1
    """Fraction of the optimizer steps with linear warm-up; linear decay to 0 after."""
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0 = off)."""
    epochs: int = 1
    max_steps: int | None = None
    """Optimizer steps to run (overrides epochs; the schedule spans max_steps)."""
    per_device_batch_size: int = 1
    """Pairs per micro-batch on each process."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (ignored when global_batch_size is set)."""
    global_batch_size: int | None = None
    """Pairs per optimizer step over all processes; grad_accum is derived from it and must come
    out a whole number (it is never rounded silently)."""
    max_length: int = 1300
    """Longest prompt + response in tokens."""
    length_policy: Literal["drop", "truncate"] = "drop"
    """drop: pairs with a longer sequence are dropped; truncate: the response end is cut. Counted either way."""
    group_by_length: bool = True
    """Batch sequences of similar length together (within shuffled windows) to cut padding."""
    drop_invalid: bool = True
    """Pairs with NaN/inf advantages or an empty response are dropped and counted; false: error."""
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"
    """Weights dtype. Keep fp32 with mixed_precision bf16 for small learning rates: pure bf16
    weights round updates of ~lr*1e-3 relative size away. auto = genius.models.pick_dtype."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """accelerate autocast for the forward pass."""
    gradient_checkpointing: bool = False
    save_dtype: Literal["auto", "bf16", "fp16", "fp32"] = may_change("auto")
    """dtype of the saved model folders (checkpoint-*/model, final): auto = bf16 when the weights
    or mixed_precision are bf16 (an 8B model is 16 GB instead of 32, and vLLM would serve an fp32
    folder in fp16), else the weights' dtype. The resume state keeps full precision."""
    process_group_timeout_minutes: int = may_change(180)
    """How long processes wait for each other in a collective (torch's default is 10 minutes; a
    reference pass over 25K pairs on rank 0's share alone can take longer)."""
    lora: LoraSettings | None = None
    """LoRA through peft; omit for a full fine-tune."""
    save_every: int = may_change(100)
    """Write checkpoint-<step>/ every this many optimizer steps (0 = only the final model)."""
    keep_checkpoints: int = may_change(2)
    """Keep this many latest checkpoint-<step>/ folders (0 = all)."""
    log_every: int = may_change(1)
    """Print and log the mean metrics of every this many optimizer steps."""
    trackers: list[str] = may_change(default_factory=list)
    """accelerate trackers: tensorboard, wandb, trackio (their packages must be installed)."""
    seed: int = 0
    """Data order, LoRA init and dropout."""
    cpu: bool = may_change(False)
    """Force CPU even when a GPU is visible."""
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        # One spelling for one file, so that a resume compares configs by content.
        if isinstance(self.data, (str, Path)):
            self.data = [Path(self.data)]

    def data_files(self) -> list[Path]:
        return [Path(p) for p in self.data or []]

    def loss_params(self) -> LossParams:
        """The loss hyper-parameters alone (what a loss function is given)."""
        return LossParams(**{f.name: getattr(self, f.name) for f in fields(LossParams)})

    def validate(self) -> None:
        get_loss(self.loss)
        positive = {"beta": self.beta, "alpha": self.alpha, "simpo_beta": self.simpo_beta, "lr": self.lr,
                    "per_device_batch_size": self.per_device_batch_size, "grad_accum": self.grad_accum,
                    "max_length": self.max_length, "epochs": self.epochs, "log_every": self.log_every,
                    "process_group_timeout_minutes": self.process_group_timeout_minutes}
        for key, value in positive.items():
            if not value > 0:
                raise UserError(f"train config: '{key}' must be > 0, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise UserError(f"train config: 'warmup_ratio' must be in [0, 1), got {self.warmup_ratio}")
        for key in ("max_steps", "global_batch_size"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise UserError(f"train config: '{key}' must be > 0, got {value}")
        if self.save_every < 0 or self.keep_checkpoints < 0:
            raise UserError("train config: 'save_every' and 'keep_checkpoints' must be >= 0")
        unknown = sorted(set(self.trackers) - {"tensorboard", "wandb", "trackio"})
        if unknown:
            raise UserError(f"train config: unknown tracker(s) {', '.join(unknown)}: expected tensorboard, wandb or trackio")

    def grad_accum_for(self, num_processes: int) -> int:
        """Micro-batches per optimizer step on each process."""
        if self.global_batch_size is None:
            return self.grad_accum
        per_step = self.per_device_batch_size * num_processes
        if self.global_batch_size % per_step:
            raise UserError(
                f"train config: global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size} x {num_processes} process(es)")
        return self.global_batch_size // per_step
