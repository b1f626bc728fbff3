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
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genius.models import cache_root, resolve
from genius.training.data import BatchList, Example, collate, forward_logps

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
