"""The training loop: one readable function on HF accelerate.

``run_train(cfg, out_dir)`` reads pairs (or SFT examples), computes the reference log-probs
once, then runs AdamW with linear warm-up/decay, gradient accumulation and clipping, logs
loss / reward margin / preference accuracy / ACO weights, writes checkpoints, and saves the
final model as a plain HF folder. Rerunning the same command after a kill resumes from the
last checkpoint with the same data order.

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
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genius import config as config_io
from genius.errors import UserError
from genius.io import JsonlAppender, atomic_write_text, dumps, read_jsonl, read_yaml
from genius.models import load_tokenizer
from genius.training import checkpoint as ckpt
from genius.training import reference as ref
from genius.training.config import TrainConfig
from genius.training.data import BatchList, Example, batch_order, collate, forward_logps, read_records, tokenize
from genius.training.losses import LossOutput, LossParams, LossSpec, PairLogps, get_loss

# Settings a resumed run may change: they do not alter what is computed.
RESUME_MAY_CHANGE = ("save_every", "keep_checkpoints", "log_every", "trackers", "reference_cache_dir", "cpu",
                     "save_dtype", "process_group_timeout_minutes")


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


def _check_run_dir(cfg: TrainConfig, out_dir: Path, resume: bool) -> tuple[Path, dict] | None:
    """The checkpoint to resume from (if any), refusing a changed config or a silent restart."""
    found = ckpt.checkpoints(out_dir)
    if (found or (out_dir / "final").is_dir()) and not resume:
        raise UserError(f"{out_dir}: holds checkpoints of an earlier run; resume it (--resume) or pick a new --out")
    saved = out_dir / "train_config.yaml"
    if resume and saved.is_file():
        changed = config_io.diff(read_yaml(saved) or {}, config_io.to_dict(cfg), ignore=RESUME_MAY_CHANGE)
        if changed:
            raise UserError(f"{saved}: the run was started with other settings ({', '.join(changed)}); "
                            "use the same config to resume, or a new --out")
    if not found:
        return None
    path = found[-1][1]
    return path, ckpt.read_trainer_state(path)


def _reference_logps(cfg: TrainConfig, accelerator: Any, model: Any, examples: list[Example],
                     pad_id: int, with_rejected: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Precomputed reference log-probs, from the disk cache when the same inputs were seen before."""
    from accelerate.utils import broadcast_object_list

    spec = cfg.reference_model or cfg.model
    settings = {k: getattr(cfg, k) for k in ("max_length", "length_policy", "data_format", "dtype", "mixed_precision")}
    settings.update(tokenizer_of=str(cfg.model), with_rejected=with_rejected, lora=cfg.lora is not None)
    key = ref.cache_key(ref.model_identity(spec), cfg.data_files(), settings)
    path = (cfg.reference_cache_dir or ref.default_cache_dir()) / f"{key}.pt"
    # One decision for all processes, so that none waits in a collective the others skip.
    [cached] = broadcast_object_list([ref.load_cached(path, len(examples)) if accelerator.is_main_process else None])
    if cached is not None:
        accelerator.print(f"reference log-probs: loaded from cache {path}")
        return cached
    separate = cfg.reference_model is not None and cfg.reference_model != cfg.model
    net = _separate_reference(spec, cfg, accelerator) if separate else model
    chosen, rejected = ref.compute_reference_logps(
        net, examples, accelerator=accelerator, batch_size=cfg.per_device_batch_size, pad_id=pad_id,
        with_rejected=with_rejected, disable_adapter=cfg.lora is not None and not separate)
    if accelerator.is_main_process:
        ref.save_cached(path, chosen, rejected)
    return chosen, rejected


def _online_reference(cfg: TrainConfig, accelerator: Any, model: Any) -> Any:
    """The model the reference forward pass runs on every step (online mode)."""
    if cfg.lora is not None and cfg.reference_model in (None, cfg.model):
        return None  # the policy itself with its adapters switched off
    return _separate_reference(cfg.reference_model or cfg.model, cfg, accelerator)


def _separate_reference(spec: str, cfg: TrainConfig, accelerator: Any) -> Any:
    """A second, frozen model, placed or sharded like the policy (DeepSpeed engine, FSDP wrap)."""
    return ref.prepare_reference(accelerator, ckpt.load_frozen(spec, cfg, accelerator.device.type))


def _batch_loss(accelerator: Any, model: Any, batch: dict, loss: LossSpec, lp: LossParams,
                precomputed: tuple[torch.Tensor | None, torch.Tensor | None], online_ref: Any) -> LossOutput:
    """Policy forward on chosen + rejected, reference log-probs looked up (or computed), the loss."""
    with accelerator.autocast():
        logps, counts = forward_logps(model, batch)
    b, two = len(batch["weight"]), loss.needs_rejected
    x = PairLogps(policy_chosen=logps[:b], chosen_tokens=counts[:b].float(),
                  policy_rejected=logps[b:] if two else None, rejected_tokens=counts[b:].float() if two else None,
                  adv_chosen=batch["adv_chosen"], adv_rejected=batch["adv_rejected"], weight=batch["weight"])
    ref_chosen, ref_rejected = precomputed
    if ref_chosen is not None:
        index = batch["index"].cpu()
        x.ref_chosen = ref_chosen[index].to(logps.device)
        x.ref_rejected = ref_rejected[index].to(logps.device) if ref_rejected is not None else None
    elif loss.needs_reference:
        x.ref_chosen, x.ref_rejected = _online_logps(accelerator, model, online_ref, batch)
    return loss.fn(x, lp)


def run_train(cfg: TrainConfig, out_dir: Path, *, resume: bool = True) -> Path:
    """Train; return the final HF checkpoint folder (out_dir/final)."""
    out_dir = Path(out_dir)
    cfg.validate()
    loss = get_loss(cfg.loss)
    start = _check_run_dir(cfg, out_dir, resume)
    if (out_dir / "final").is_dir():
        print(f"genius train: {out_dir / 'final'} exists; nothing to do")
        return out_dir / "final"
    accelerator, grad_accum = _make_accelerator(cfg, out_dir)
    from accelerate.utils import set_seed

    set_seed(cfg.seed)
    if accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        config_io.save(cfg, out_dir / "train_config.yaml")

    # ---- data
    tokenizer = load_tokenizer(cfg.model, trust_remote_code=cfg.trust_remote_code)
    records = read_records(cfg.data_files(), cfg.data_format, need_advantages=loss.needs_advantages,
                           drop_invalid=cfg.drop_invalid)
    if loss.needs_rejected and records.kind != "pairs":
        raise UserError(f"loss '{cfg.loss}' needs preference pairs (chosen, rejected); the data holds SFT examples")
    examples, stats = tokenize(records, tokenizer, max_length=cfg.max_length, length_policy=cfg.length_policy,
                               with_rejected=loss.needs_rejected)
    accelerator.print(f"data: {stats.summary()}")
    if not examples:
        raise UserError("train: no usable examples left after the length policy and the invalid-record filter")
    pad_id = tokenizer.pad_token_id
    lengths = [e.length for e in examples]

    # ---- model, optimizer, schedule
    model = ckpt.load_policy(cfg, accelerator.device.type)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    batches_per_process = math.ceil(math.ceil(len(examples) / cfg.per_device_batch_size) / accelerator.num_processes)
    steps_per_epoch = math.ceil(batches_per_process / grad_accum)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_warmup_decay(s, total_steps, warmup))
    model, optimizer = accelerator.prepare(model, optimizer)
    # Stepped by hand once per optimizer step: a prepared scheduler steps num_processes times.
    accelerator.register_for_checkpointing(scheduler)

    ref_chosen = ref_rejected = None
    online_ref = None
    if loss.needs_reference and cfg.reference_mode == "precompute":
        ref_chosen, ref_rejected = _reference_logps(cfg, accelerator, model, examples, pad_id, loss.needs_rejected)
    elif loss.needs_reference:
        online_ref = _online_reference(cfg, accelerator, model)

    # ---- resume
    step, epoch, batches_done, pairs_seen, elapsed = 0, 0, 0, 0, 0.0
    if start is not None:
        path, state = start
        accelerator.load_state(str(path / "state"))
        step, epoch, batches_done = state["step"], state["epoch"], state["batches_done"]
        pairs_seen, elapsed = state["pairs_seen"], state["seconds"]
        accelerator.print(f"resuming from {path} (step {step}/{total_steps})")
    log_path = out_dir / "train_log.jsonl"
    if accelerator.is_main_process and log_path.is_file():
        # Lines logged after the checkpoint will be logged again; drop them.
        kept = [r for r in read_jsonl(log_path, repair=True) if r.get("step", 0) <= step]
        atomic_write_text(log_path, "".join(dumps(r) + "\n" for r in kept))
    log = JsonlAppender(log_path) if accelerator.is_main_process else None
    accelerator.init_trackers("genius-train", config={k: v for k, v in config_io.to_dict(cfg).items()
                                                      if isinstance(v, (int, float, str, bool))})

    # ---- train
    lp = cfg.loss_params()
    bar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.loss}", disable=not accelerator.is_local_main_process)
    window: list[dict[str, float]] = []
    history: list[dict[str, Any]] = []
    stats_now, t0 = StepStats(), time.perf_counter() - elapsed
    model.train()
    while step < total_steps:
        order = BatchList(batch_order(lengths, cfg.per_device_batch_size, seed=cfg.seed, epoch=epoch,
                                      group_by_length=cfg.group_by_length), cfg.per_device_batch_size)
        loader = DataLoader(range(len(examples)), batch_sampler=order, collate_fn=lambda idx: {
            **collate([examples[i] for i in idx], pad_id, with_rejected=loss.needs_rejected), "index": torch.tensor(idx)})
        loader = accelerator.prepare_data_loader(loader)
        if batches_done:
            loader = accelerator.skip_first_batches(loader, batches_done)
        for batch in loader:
            with accelerator.accumulate(model):
                out = _batch_loss(accelerator, model, batch, loss, lp, (ref_chosen, ref_rejected), online_ref)
                accelerator.backward(out.loss)
                grad_norm = None
                if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            batches_done += 1
            stats_now.losses.append(out.loss.item())
            stats_now.chosen.append(out.chosen_rewards)
            if out.rejected_rewards is not None:
                stats_now.rejected.append(out.rejected_rewards)
            if out.aco_weights is not None:
                stats_now.weights.append(out.aco_weights)
            pairs_seen += len(batch["weight"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            step += 1
            metrics = stats_now.reduce(accelerator)
            metrics.update(lr=lr, **({"grad_norm": float(grad_norm)} if grad_norm is not None else {}))
            stats_now = StepStats()
            window.append(metrics)
            bar.update(1)
            if step % cfg.log_every == 0 or step == total_steps:
                record = {"step": step, **{k: sum(m[k] for m in window) / len(window) for k in window[-1]},
                          "pairs_seen": pairs_seen, "seconds": round(time.perf_counter() - t0, 3)}
                record["lr"] = lr
                history.append(record)
                window = []
                accelerator.log({k: v for k, v in record.items() if k != "step"}, step=step)
                if log is not None:
                    log.write(record)
                bar.set_postfix({k: f"{record[k]:.3g}" for k in ("loss", "reward_margin", "accuracy") if k in record})
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                ckpt.save_checkpoint(accelerator, model, tokenizer, out_dir, step, {
                    "step": step, "epoch": epoch, "batches_done": batches_done, "pairs_seen": pairs_seen,
                    "seconds": time.perf_counter() - t0}, cfg.keep_checkpoints, ckpt.save_dtype(cfg))
            if step >= total_steps:
                break
        if step < total_steps:  # the epoch's batches ran out
            epoch, batches_done = epoch + 1, 0
    bar.close()
    seconds = time.perf_counter() - t0
    summary = _summary(cfg, history, stats.summary(), step, pairs_seen, seconds)
    final = ckpt.save_final(accelerator, model, tokenizer, out_dir, {"summary": summary, "data": vars(stats),
                                                                      "steps": step, "pairs_seen": pairs_seen},
                            ckpt.save_dtype(cfg))
    if log is not None:
        log.close()
    accelerator.end_training()
    accelerator.print(f"genius train: {summary}; final model: {final}")
    return final


@torch.no_grad()
def _online_logps(accelerator: Any, model: Any, online_ref: Any, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference forward pass on the current batch (online mode)."""
    if online_ref is None:
        with accelerator.unwrap_model(model).disable_adapter(), accelerator.autocast():
            logps, _ = forward_logps(model, batch)
    else:
        with accelerator.autocast():
            logps, _ = forward_logps(online_ref, batch)
    b = len(batch["weight"])
    return logps[:b], logps[b:]


def _summary(cfg: TrainConfig, history: list[dict], data: str, steps: int, pairs: int, seconds: float) -> str:
    text = f"{cfg.loss}: {steps} steps, {pairs} pairs in {seconds:.0f}s ({pairs / max(seconds, 1e-9):.2f} pairs/s)"
    if history:
        first, last = history[0], history[-1]
        for key in ("loss", "reward_margin", "accuracy"):
            if key in first and key in last:
                text += f", {key} {first[key]:.4f} -> {last[key]:.4f}"
    return f"{text}; data: {data}"
