"""Reference log-probs: computed once before training, cached on disk, reused on rerun.

The DPO family compares the policy with the frozen starting model. The reference's summed
response log-probs do not change during training, so they are computed once (eval mode, no
grad, batched, each process on its share of the batches, then gathered) and the reference
model need not stay in memory. The cache file is keyed by a hash of the reference model's
identity, the bytes of the data files and the tokenization settings: a rerun on the same
inputs loads it in milliseconds, other data or settings compute afresh.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genius.errors import UserError
from genius.models import cache_root, resolve
from genius.training.data import BatchList, Example, collate, forward_logps

if TYPE_CHECKING:
    from genius.training.config import TrainConfig

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return cache_root() / "reference-logps"


def model_identity(spec: str) -> dict[str, Any]:
    """What makes a model's outputs what they are: for a folder, its config and weight files
    (name, size, mtime: cheap, and any rewrite changes it); for a hub id, the id."""
    source = resolve(spec)
    folder = Path(source)
    if not folder.is_dir():
        return {"hub_id": source}
    files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns]
             for p in sorted(folder.iterdir()) if p.suffix in (".safetensors", ".bin", ".json")}
    return {"folder": str(folder.resolve()), "files": files}


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(identity: dict[str, Any], data_files: list[Path], settings: dict[str, Any]) -> str:
    """Hash of (reference identity, data content, tokenization/precision settings)."""
    blob = json.dumps({"version": CACHE_VERSION, "model": identity,
                       "data": [file_digest(p) for p in data_files], "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def load_cached(path: Path, n_examples: int) -> tuple[Tensor, Tensor | None] | None:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt cache file is recomputed, never trusted
        return None
    if saved.get("chosen") is None or len(saved["chosen"]) != n_examples:
        return None
    return saved["chosen"], saved.get("rejected")


def save_cached(path: Path, chosen: Tensor, rejected: Tensor | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"chosen": chosen, "rejected": rejected}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hidden_size(model_config: Any) -> int | None:
    """The width DeepSpeed's ZeRO-3 buckets are sized by (accelerate's and TRL's rule)."""
    sizes = getattr(model_config, "hidden_sizes", None)
    return max(sizes) if sizes else getattr(model_config, "hidden_size", None)


def reference_deepspeed_config(train_config: dict[str, Any], width: int | None) -> dict[str, Any]:
    """DeepSpeed config for a frozen reference, derived from the (already prepared) training one
    as TRL's prepare_deepspeed does. No optimizer or scheduler: nothing of it is trained, and
    DeepSpeed would build them. Batch keys stay: deepspeed.initialize checks them. ZeRO-3 shards
    the reference like the policy (it was created inside zero.Init), with TRL's bucket sizes for
    ``width``; any other stage becomes 0, a full copy per process: stages 1-2 only partition
    optimizer state and gradients, which a frozen model has none of."""
    config = copy.deepcopy(train_config)
    config.pop("optimizer", None)
    config.pop("scheduler", None)
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage") != 3:
        zero["stage"] = 0
    elif width is not None:
        # Nested keys: TRL writes these as top-level dotted keys, which deepspeed.initialize ignores.
        zero.update(reduce_bucket_size=width * width, stage3_param_persistence_threshold=10 * width,
                    stage3_prefetch_bucket_size=int(0.9 * width * width))
    return config


def prepare_reference(accelerator: Any, model: Any) -> Any:
    """A separately loaded frozen reference made usable for forward passes under the run's
    distribution: under DeepSpeed a DeepSpeed engine (under ZeRO-3 the model was created
    sharded inside zero.Init and cannot run without one), under FSDP an FSDP wrap with the
    accelerator's plugin settings, else the model on the accelerator's device. Call it after
    the policy's ``accelerator.prepare``: the DeepSpeed config's "auto" values are filled there.
    The result is never registered with the accelerator, so save_state/load_state skip it."""
    from accelerate import DistributedType

    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return _deepspeed_reference(accelerator, model)
    if accelerator.distributed_type == DistributedType.FSDP:
        return _fsdp_reference(accelerator, model)
    return model.to(accelerator.device).eval()


def _deepspeed_reference(accelerator: Any, model: Any) -> Any:
    import deepspeed  # optional: installed only where DeepSpeed runs

    config = reference_deepspeed_config(accelerator.state.deepspeed_plugin.deepspeed_config,
                                        hidden_size(model.config))
    engine, *_ = deepspeed.initialize(model=model, config=config)
    engine.eval()  # DeepSpeedEngine.eval returns None, not the engine
    return engine


def _fsdp_reference(accelerator: Any, model: Any) -> Any:
    """FSDP1 wrap as accelerate's prepare_model does for training (TRL's prepare_fsdp), minus
    the optimizer-facing parts: nothing is trained, so no upcast of frozen flat parameters."""
    from accelerate.utils.fsdp_utils import ensure_weights_retied
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    plugin = accelerator.state.fsdp_plugin
    if plugin.fsdp_version != 1:
        raise UserError("train: a separate reference_model (or reference_mode: online) under FSDP2 is not "
                        "supported; use fsdp_version: 1 (configs/accelerate/fsdp.yaml) or ZeRO-3")
    # After the policy's prepare the plugin's wrap policy already names the decoder-layer
    # classes; this call is then a no-op, and a reference of the same architecture is
    # wrapped layer by layer like the policy.
    plugin.set_auto_wrap_policy(model)
    # Tied weights (embeddings / lm_head) come apart when param_init_fn re-allocates the meta
    # tensors of the non-zero ranks; accelerate re-ties them this way for the policy.
    init_fn = ensure_weights_retied(plugin.param_init_fn, model, accelerator.device)
    wrapped = FSDP(model, sharding_strategy=plugin.sharding_strategy or plugin.reshard_after_forward,
                   cpu_offload=plugin.cpu_offload, auto_wrap_policy=plugin.auto_wrap_policy,
                   mixed_precision=plugin.mixed_precision_policy, sync_module_states=plugin.sync_module_states,
                   backward_prefetch=plugin.backward_prefetch, forward_prefetch=plugin.forward_prefetch,
                   use_orig_params=plugin.use_orig_params, param_init_fn=init_fn,
                   ignored_modules=_ignored_modules(plugin.ignored_modules, model, accelerator.device),
                   limit_all_gathers=plugin.limit_all_gathers, device_id=accelerator.device)
    return wrapped.eval()


def _ignored_modules(setting: Any, model: Any, device: Any) -> Any:
    """accelerate allows fsdp_ignored_modules as a regex over module names; FSDP wants modules.
    FSDP leaves the ones it ignores where they are, so they go to the device here (as in
    accelerate's prepare_model)."""
    if not isinstance(setting, str):
        return setting
    import re

    pattern = re.compile(setting)
    return [module.to(device) for name, module in model.named_modules() if pattern.fullmatch(name)]


def length_sorted_batches(examples: list[Example], batch_size: int) -> list[list[int]]:
    """Fixed order, longest first: similar lengths per batch means little padding."""
    order = sorted(range(len(examples)), key=lambda i: -examples[i].length)
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


@torch.no_grad()
def compute_reference_logps(model: Any, examples: list[Example], *, accelerator: Any, batch_size: int,
                            pad_id: int, with_rejected: bool, disable_adapter: bool = False,
                            desc: str = "reference log-probs") -> tuple[Tensor, Tensor | None]:
    """Summed response log-probs of every example under ``model`` in eval mode.

    ``model`` is the accelerate-prepared model (so ZeRO-3/FSDP shards take part); with
    ``disable_adapter`` the LoRA adapters are switched off, which makes the policy its own
    reference without a second copy. Batches are spread over the processes and gathered back,
    so every process returns the full tensors (in example order).
    """
    from torch.utils.data import DataLoader

    loader = DataLoader(
        list(range(len(examples))), batch_sampler=BatchList(length_sorted_batches(examples, batch_size), batch_size),
        collate_fn=lambda idx: {**collate([examples[i] for i in idx], pad_id, with_rejected=with_rejected),
                                "index": torch.tensor(idx)},
    )
    loader = accelerator.prepare_data_loader(loader)
    n = len(examples)
    chosen = torch.zeros(n, dtype=torch.float32)
    rejected = torch.zeros(n, dtype=torch.float32) if with_rejected else None
    was_training = model.training
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    adapter_off = unwrapped.disable_adapter() if disable_adapter else contextlib.nullcontext()
    with adapter_off:
        for batch in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process):
            with accelerator.autocast():
                logps, _ = forward_logps(model, batch)
            b = len(batch["index"])
            # Processes may hold batches of different sizes: pad, gather, drop the padding.
            # Batches that even out the processes repeat real indices with the same values,
            # so scattering by index makes duplicates harmless.
            parts = [batch["index"], logps[:b].float()] + ([logps[b:].float()] if rejected is not None else [])
            parts = [accelerator.gather(accelerator.pad_across_processes(t, pad_index=-1)).cpu() for t in parts]
            keep = parts[0] >= 0
            chosen[parts[0][keep]] = parts[1][keep]
            if rejected is not None:
                rejected[parts[0][keep]] = parts[2][keep]
    model.train(was_training)
    return chosen, rejected


# --- the reference of a training run (genius.training.loop) ------------------------------------

def precomputed_logps(cfg: TrainConfig, accelerator: Any, model: Any, examples: list[Example],
                     pad_id: int, with_rejected: bool) -> tuple[Tensor, Tensor | None]:
    """Precomputed reference log-probs, from the disk cache when the same inputs were seen before."""
    from accelerate.utils import broadcast_object_list

    spec = cfg.reference_model or cfg.model
    settings = {k: getattr(cfg, k) for k in ("max_length", "length_policy", "data_format", "dtype", "mixed_precision")}
    settings.update(tokenizer_of=str(cfg.model), with_rejected=with_rejected, lora=cfg.lora is not None)
    key = cache_key(model_identity(spec), cfg.data_files(), settings)
    path = (cfg.reference_cache_dir or default_cache_dir()) / f"{key}.pt"
    # One decision for all processes, so that none waits in a collective the others skip.
    [cached] = broadcast_object_list([load_cached(path, len(examples)) if accelerator.is_main_process else None])
    if cached is not None:
        accelerator.print(f"reference log-probs: loaded from cache {path}")
        return cached
    separate = cfg.reference_model is not None and cfg.reference_model != cfg.model
    net = separate_reference(spec, cfg, accelerator) if separate else model
    chosen, rejected = compute_reference_logps(
        net, examples, accelerator=accelerator, batch_size=cfg.per_device_batch_size, pad_id=pad_id,
        with_rejected=with_rejected, disable_adapter=cfg.lora is not None and not separate)
    if accelerator.is_main_process:
        save_cached(path, chosen, rejected)
    return chosen, rejected


def online_reference(cfg: TrainConfig, accelerator: Any, model: Any) -> Any:
    """The model the reference forward pass runs on every step (online mode)."""
    if cfg.lora is not None and cfg.reference_model in (None, cfg.model):
        return None  # the policy itself with its adapters switched off
    return separate_reference(cfg.reference_model or cfg.model, cfg, accelerator)


def separate_reference(spec: str, cfg: TrainConfig, accelerator: Any) -> Any:
    """A second, frozen model, placed or sharded like the policy (DeepSpeed engine, FSDP wrap)."""
    from genius.training.checkpoint import load_frozen

    return prepare_reference(accelerator, load_frozen(spec, cfg, accelerator.device.type))


@torch.no_grad()
def online_logps(accelerator: Any, model: Any, online_ref: Any, batch: dict) -> tuple[Tensor, Tensor]:
    """Reference forward pass on the current batch (online mode)."""
    if online_ref is None:
        with accelerator.unwrap_model(model).disable_adapter(), accelerator.autocast():
            logps, _ = forward_logps(model, batch)
    else:
        with accelerator.autocast():
            logps, _ = forward_logps(online_ref, batch)
    b = len(batch["weight"])
    return logps[:b], logps[b:]
