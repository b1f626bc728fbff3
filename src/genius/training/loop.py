"""Training on HF accelerate: setup, one loop readable in one screen (``_train_loop``), finish.

``run_train(cfg, out_dir)`` is three parts. Setup reads pairs (or SFT examples), loads the
model, computes the reference log-probs once, records the config (only now that its inputs
have loaded) and restores the last checkpoint. The loop runs AdamW with linear warm-up/decay,
gradient accumulation and clipping, logs loss / reward margin / preference accuracy / ACO
weights and writes checkpoints. Finish saves the final model as a plain HF folder. Rerunning
the same command after a kill resumes from the last checkpoint with the same data order; a
resume may change only the fields TrainConfig marks ``may_change`` (``config.check_resume``).

Distribution is accelerate's, never hand-made: the same code runs on one CPU and under

    accelerate launch --config_file configs/accelerate/ddp.yaml -m genius.cli train --config C --out O
    accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml -m genius.cli train --config C --out O
    accelerate launch --config_file configs/accelerate/fsdp.yaml -m genius.cli train --config C --out O
    torchrun --nproc_per_node 2 -m genius.cli train --config C --out O --cpu     # 2 CPU processes, gloo

Data sharding: each epoch has a seeded list of micro-batches (genius.training.data.batch_order);
accelerate deals them out to the processes (process r gets batches r, r+N, ...), so N processes
with grad_accum k see the same pairs per optimizer step as 1 process with grad_accum N*k.
"""

from __future__ import annotations

import importlib.util
import math
import time
from datetime import timedelta
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genius import config as config_io
from genius.errors import UserError
from genius.io import JsonlAppender, atomic_write_text, dumps, read_jsonl
from genius.training import checkpoint as ckpt
from genius.training import reference as ref
from genius.training.config import TrainConfig
from genius.training.data import DataStats, Example, epoch_loader, forward_logps, load_examples
from genius.training.losses import LossOutput, LossSpec, PairLogps, get_loss

CONFIG_COPY = "train_config.yaml"
LOG = "train_log.jsonl"


def linear_warmup_decay(step: int, total: int, warmup: int) -> float:
    """LR multiplier: 0 -> 1 linearly over ``warmup`` steps, then 1 -> 0 linearly at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


@dataclass
class StepStats:
    """Metrics of the micro-batches of one optimizer step on this process."""

    losses: list[float] = field(default_factory=list)
    chosen: list[torch.Tensor] = field(default_factory=list)
    rejected: list[torch.Tensor] = field(default_factory=list)
    weights: list[torch.Tensor] = field(default_factory=list)

    def add(self, out: LossOutput) -> None:
        self.losses.append(out.loss.item())
        self.chosen.append(out.chosen_rewards)
        if out.rejected_rewards is not None:
            self.rejected.append(out.rejected_rewards)
        if out.aco_weights is not None:
            self.weights.append(out.aco_weights)

    def reduce(self, accelerator: Any) -> dict[str, float]:
        def gathered(parts: list[torch.Tensor]) -> torch.Tensor:
            t = torch.cat(parts).float().to(accelerator.device)
            t = accelerator.pad_across_processes(t, pad_index=float("nan"))
            t = accelerator.gather(t).cpu()
            return t[~torch.isnan(t)]

        loss = accelerator.gather(torch.tensor(self.losses, device=accelerator.device).mean().reshape(1))
        out = {"loss": loss.mean().item()}
        c = gathered(self.chosen)
        out["chosen_reward"] = c.mean().item()
        if self.rejected:
            r = gathered(self.rejected)
            out.update(rejected_reward=r.mean().item(), reward_margin=(c - r).mean().item(),
                       accuracy=(c > r).float().mean().item())
        if self.weights:
            w = gathered(self.weights)
            out.update(aco_w_mean=w.mean().item(), aco_w_min=w.min().item(), aco_w_max=w.max().item())
        return out


def _make_accelerator(cfg: TrainConfig, out_dir: Path) -> tuple[Any, int]:
    from accelerate import Accelerator, DistributedType, PartialState
    from accelerate.utils import InitProcessGroupKwargs
    from accelerate.state import AcceleratorState, GradientState

    # A second run in the same process (tests, pipelines) must not inherit the first one's settings.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    for name in cfg.trackers:
        if importlib.util.find_spec(name) is None:
            raise UserError(f"tracker '{name}' needs the package {name}: pip install {name}")
    # The process group starts with the first PartialState: its timeout is set there.
    timeout = timedelta(minutes=cfg.process_group_timeout_minutes)
    grad_accum = cfg.grad_accum_for(PartialState(cpu=cfg.cpu, timeout=timeout).num_processes)
    accelerator = Accelerator(gradient_accumulation_steps=grad_accum, mixed_precision=cfg.mixed_precision,
                              cpu=cfg.cpu, log_with=list(cfg.trackers) or None, project_dir=str(out_dir),
                              kwargs_handlers=[InitProcessGroupKwargs(timeout=timeout)])
    plugin = accelerator.state.deepspeed_plugin
    if plugin is not None:
        # The train config is the one source of the batch geometry: on a mismatch accelerate would
        # otherwise quietly take the DeepSpeed file's values and change the global batch.
        plugin.deepspeed_config.update(train_micro_batch_size_per_gpu=cfg.per_device_batch_size,
                                       gradient_accumulation_steps=grad_accum,
                                       gradient_clipping=cfg.max_grad_norm)
    sharded = (plugin is not None and plugin.zero_stage == 3) or accelerator.distributed_type == DistributedType.FSDP
    if cfg.lora is not None and sharded:
        # checkpoint.merged_lora_state_dict adds the adapters into the base weights held by this
        # process; under ZeRO-3/FSDP those are shards (ZeRO-3: empty placeholders), so the saved
        # folder would be wrong. A merge from a gathered state is not implemented.
        raise UserError("train config: LoRA with ZeRO-3/FSDP sharding is not supported: the saved model "
                        "folders merge the adapters into the base weights on one process, which under "
                        "sharding holds only a shard of them; use configs/accelerate/ddp.yaml or a full "
                        "fine-tune")
    return accelerator, grad_accum


@dataclass
class _Run:
    """What setup builds for the loop and the finish: the prepared model and optimizer, the data,
    the reference log-probs (precomputed) or model (online), the open log."""

    cfg: TrainConfig
    out_dir: Path
    loss: LossSpec
    accelerator: Any
    model: Any
    optimizer: Any
    scheduler: Any
    tokenizer: Any
    examples: list[Example]
    data: DataStats
    total_steps: int
    precomputed: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
    """Reference log-probs of chosen and rejected per example (precompute mode)."""
    online_ref: Any = None
    """The reference model of online mode (None: the policy with its adapters off)."""
    log: JsonlAppender | None = None
    """train_log.jsonl, on the main process only."""


@dataclass
class _Position:
    """Where the run stands; saved in each checkpoint's trainer_state.json and restored from it."""

    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    """Micro-batches of the current epoch already trained on (by each process)."""
    pairs_seen: int = 0
    elapsed: float = 0.0
    """Seconds trained before this launch (earlier launches of a resumed run)."""
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.started

    def trainer_state(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batches_done": self.batches_done,
                "pairs_seen": self.pairs_seen, "seconds": self.seconds()}


def run_train(cfg: TrainConfig, out_dir: Path, *, resume: bool = True, force: bool = False) -> Path:
    """Train; return the final HF checkpoint folder (out_dir/final). ``resume``: go on from the
    last checkpoint in ``out_dir`` (else a used folder is refused); ``force``: even when it was
    started with other settings."""
    out_dir = Path(out_dir)
    cfg.validate()
    start = _check_run_dir(cfg, out_dir, resume, force)
    if (out_dir / "final").is_dir():
        print(f"genius train: {out_dir / 'final'} exists; nothing to do")
        return out_dir / "final"
    run, at = _setup(cfg, out_dir, start)
    history = _train_loop(run, at)
    return _finish(run, at, history)


# ---- setup ------------------------------------------------------------------------------------

def _check_run_dir(cfg: TrainConfig, out_dir: Path, resume: bool, force: bool) -> tuple[Path, dict] | None:
    """The checkpoint to resume from (if any), refusing a changed config or a silent restart."""
    found = ckpt.checkpoints(out_dir)
    if (found or (out_dir / "final").is_dir()) and not resume:
        raise UserError(f"{out_dir}: holds checkpoints of an earlier run; resume it (--resume) or pick a new --out")
    if resume:
        config_io.check_resume(out_dir / CONFIG_COPY, cfg, force=force)
    if not found:
        return None
    path = found[-1][1]
    return path, ckpt.read_trainer_state(path)


def _setup(cfg: TrainConfig, out_dir: Path, start: tuple[Path, dict] | None) -> tuple[_Run, _Position]:
    """Data, model, optimizer, schedule and reference ready; the config recorded; the last
    checkpoint (``start``) restored; the log opened."""
    from accelerate.utils import set_seed

    loss = get_loss(cfg.loss)
    accelerator, grad_accum = _make_accelerator(cfg, out_dir)
    set_seed(cfg.seed)
    tokenizer, examples, data = load_examples(cfg, loss)
    accelerator.print(f"data: {data.summary()}")
    model = ckpt.load_policy(cfg, accelerator.device.type)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    batches_per_process = math.ceil(math.ceil(len(examples) / cfg.per_device_batch_size) / accelerator.num_processes)
    total_steps = cfg.max_steps or math.ceil(batches_per_process / grad_accum) * cfg.epochs
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_warmup_decay(s, total_steps, warmup))
    model, optimizer = accelerator.prepare(model, optimizer)
    # Stepped by hand once per optimizer step: a prepared scheduler steps num_processes times.
    accelerator.register_for_checkpointing(scheduler)
    run = _Run(cfg, out_dir, loss, accelerator, model, optimizer, scheduler, tokenizer, examples, data, total_steps)
    if loss.needs_reference and cfg.reference_mode == "precompute":
        run.precomputed = ref.precomputed_logps(cfg, accelerator, model, examples, tokenizer.pad_token_id,
                                           loss.needs_rejected)
    elif loss.needs_reference:
        run.online_ref = ref.online_reference(cfg, accelerator, model)
    if accelerator.is_main_process:
        # Recorded only now that the data, the model and the reference have loaded: a run that
        # failed on its inputs leaves no copy that would refuse the corrected rerun.
        out_dir.mkdir(parents=True, exist_ok=True)
        config_io.save(cfg, out_dir / CONFIG_COPY)
    at = _restore(run, start)
    run.log = JsonlAppender(out_dir / LOG) if accelerator.is_main_process else None
    accelerator.init_trackers("genius-train", config={k: v for k, v in config_io.to_dict(cfg).items()
                                                      if isinstance(v, (int, float, str, bool))})
    return run, at


def _restore(run: _Run, start: tuple[Path, dict] | None) -> _Position:
    """The position of the checkpoint ``start`` with its optimizer/scheduler/RNG state loaded
    (a fresh position without one); log lines written after that checkpoint are dropped."""
    at = _Position()
    if start is not None:
        path, state = start
        run.accelerator.load_state(str(path / "state"))
        at = _Position(state["step"], state["epoch"], state["batches_done"], state["pairs_seen"], state["seconds"])
        run.accelerator.print(f"resuming from {path} (step {at.step}/{run.total_steps})")
    log_path = run.out_dir / LOG
    if run.accelerator.is_main_process and log_path.is_file():
        # Lines logged after the checkpoint will be logged again; drop them.
        kept = [r for r in read_jsonl(log_path, repair=True) if r.get("step", 0) <= at.step]
        atomic_write_text(log_path, "".join(dumps(r) + "\n" for r in kept))
    return at


def _batch_loss(run: _Run, batch: dict) -> LossOutput:
    """Policy forward on chosen + rejected, reference log-probs looked up (or computed), the loss."""
    with run.accelerator.autocast():
        logps, counts = forward_logps(run.model, batch)
    b, two = len(batch["weight"]), run.loss.needs_rejected
    x = PairLogps(policy_chosen=logps[:b], chosen_tokens=counts[:b].float(),
                  policy_rejected=logps[b:] if two else None, rejected_tokens=counts[b:].float() if two else None,
                  adv_chosen=batch["adv_chosen"], adv_rejected=batch["adv_rejected"], weight=batch["weight"])
    ref_chosen, ref_rejected = run.precomputed
    if ref_chosen is not None:
        index = batch["index"].cpu()
        x.ref_chosen = ref_chosen[index].to(logps.device)
        x.ref_rejected = ref_rejected[index].to(logps.device) if ref_rejected is not None else None
    elif run.loss.needs_reference:
        x.ref_chosen, x.ref_rejected = ref.online_logps(run.accelerator, run.model, run.online_ref, batch)
    return run.loss.fn(x, run.cfg.loss_params())


# ---- the loop ---------------------------------------------------------------------------------

def _train_loop(run: _Run, at: _Position) -> list[dict[str, Any]]:
    """Optimizer steps from ``at`` to total_steps, epoch after epoch, logging every log_every
    steps and checkpointing every save_every; returns the logged records."""
    cfg, accelerator = run.cfg, run.accelerator
    bar = tqdm(total=run.total_steps, initial=at.step, desc=f"train {cfg.loss}",
               disable=not accelerator.is_local_main_process)
    history: list[dict[str, Any]] = []
    window: list[dict[str, float]] = []
    stats = StepStats()
    at.started = time.perf_counter()
    run.model.train()
    while at.step < run.total_steps:
        for batch in _epoch_batches(run, at):
            out, grad_norm = _micro_step(run, batch)
            at.batches_done += 1
            at.pairs_seen += len(batch["weight"]) * accelerator.num_processes
            stats.add(out)
            if not accelerator.sync_gradients:
                continue
            lr = run.scheduler.get_last_lr()[0]
            run.scheduler.step()
            at.step += 1
            window.append({**stats.reduce(accelerator), "lr": lr,
                           **({"grad_norm": float(grad_norm)} if grad_norm is not None else {})})
            stats = StepStats()
            bar.update(1)
            if at.step % cfg.log_every == 0 or at.step == run.total_steps:
                record = _log_window(run, at, window, lr)
                history.append(record)
                window = []
                bar.set_postfix({k: f"{record[k]:.3g}" for k in ("loss", "reward_margin", "accuracy") if k in record})
            if cfg.save_every and at.step % cfg.save_every == 0 and at.step < run.total_steps:
                ckpt.save_checkpoint(accelerator, run.model, run.tokenizer, run.out_dir, at.step, at.trainer_state(),
                                     cfg.keep_checkpoints, ckpt.save_dtype(cfg))
            if at.step >= run.total_steps:
                break
        if at.step < run.total_steps:  # the epoch's batches ran out
            at.epoch, at.batches_done = at.epoch + 1, 0
    bar.close()
    return history


def _epoch_batches(run: _Run, at: _Position) -> Any:
    """This process's micro-batches of epoch ``at.epoch``, the first ``at.batches_done`` skipped."""
    cfg = run.cfg
    loader = run.accelerator.prepare_data_loader(epoch_loader(
        run.examples, run.tokenizer.pad_token_id, with_rejected=run.loss.needs_rejected,
        batch_size=cfg.per_device_batch_size, seed=cfg.seed, epoch=at.epoch, group_by_length=cfg.group_by_length))
    return run.accelerator.skip_first_batches(loader, at.batches_done) if at.batches_done else loader


def _micro_step(run: _Run, batch: dict) -> tuple[LossOutput, Any]:
    """Forward and backward of one micro-batch; on the last of an accumulation, clipping and the
    optimizer step. Returns the loss and the gradient norm (None when not clipped this call)."""
    accelerator, cfg = run.accelerator, run.cfg
    with accelerator.accumulate(run.model):
        out = _batch_loss(run, batch)
        accelerator.backward(out.loss)
        grad_norm = None
        if accelerator.sync_gradients and cfg.max_grad_norm > 0:
            grad_norm = accelerator.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad()
    return out, grad_norm


def _log_window(run: _Run, at: _Position, window: list[dict[str, float]], lr: float) -> dict[str, Any]:
    """The record of the steps since the last one: metric means, the latest lr; logged to the
    trackers and train_log.jsonl."""
    record = {"step": at.step, **{k: sum(m[k] for m in window) / len(window) for k in window[-1]},
              "pairs_seen": at.pairs_seen, "seconds": round(at.seconds(), 3)}
    record["lr"] = lr
    run.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=at.step)
    if run.log is not None:
        run.log.write(record)
    return record


# ---- finish -----------------------------------------------------------------------------------

def _finish(run: _Run, at: _Position, history: list[dict[str, Any]]) -> Path:
    """Save the final model folder with its summary, close the log and the trackers."""
    summary = _summary(run.cfg, history, run.data.summary(), at.step, at.pairs_seen, at.seconds())
    final = ckpt.save_final(run.accelerator, run.model, run.tokenizer, run.out_dir,
                            {"summary": summary, "data": vars(run.data), "steps": at.step, "pairs_seen": at.pairs_seen},
                            ckpt.save_dtype(run.cfg))
    if run.log is not None:
        run.log.close()
    run.accelerator.end_training()
    run.accelerator.print(f"genius train: {summary}; final model: {final}")
    return final


def _summary(cfg: TrainConfig, history: list[dict], data: str, steps: int, pairs: int, seconds: float) -> str:
    text = f"{cfg.loss}: {steps} steps, {pairs} pairs in {seconds:.0f}s ({pairs / max(seconds, 1e-9):.2f} pairs/s)"
    if history:
        first, last = history[0], history[-1]
        for key in ("loss", "reward_margin", "accuracy"):
            if key in first and key in last:
                text += f", {key} {first[key]:.4f} -> {last[key]:.4f}"
    return f"{text}; data: {data}"
