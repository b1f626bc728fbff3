"""Checks of a local model folder before anything loads it, so that every command refuses the
same folders with the same one line: config.json, safetensors weights (whole, not pickle),
shards named by the index, and model code that needs ``--trust-remote-code``."""

from __future__ import annotations

import json
from pathlib import Path

from genius.errors import UserError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_model_folder(folder: Path) -> None:
    """The one check of a local model folder, before anything loads it, so that every command
    (train too) refuses the same folders with the same line: config.json missing or not JSON,
    weights only in pickle files (which can run code when loaded), a safetensors file cut short
    or damaged, a shard the index names but the folder lacks."""
    config = folder / "config.json"
    if not config.exists():  # one that is a folder is read_json's line
        raise UserError(f"{folder}: a model folder needs config.json (and safetensors weights)")
    from genius.io import read_json

    if not isinstance(read_json(config), dict):
        raise UserError(f"{config}: expected a JSON object of model settings")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise UserError(f"{folder}: the weights are pickle files only ({', '.join(pickles[:3])}), which genius "
                            "does not load (loading a pickle can run code); save the model with safetensors "
                            "(model.save_pretrained(folder, safe_serialization=True)) and pass that folder")
        raise UserError(f"{folder}: no weights (*.safetensors) in the model folder")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        listed = read_json(index)
        weight_map = listed.get("weight_map") if isinstance(listed, dict) else None
        if not isinstance(weight_map, dict):
            raise UserError(f"{index}: expected a JSON object with a weight_map of tensor -> file")
        missing = sorted({name for name in weight_map.values() if not (folder / str(name)).is_file()})
        if missing:
            raise UserError(f"{index}: names {missing[0]}, which the folder lacks"
                            f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; copy the whole model")
    for path in weights:
        problem = safetensors_problem(path)
        if problem:
            raise UserError(f"{path}: damaged safetensors file ({problem}); download or copy it again")


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file (None: whole), read from its header alone: an 8-byte
    length, that many bytes of JSON, then the tensors up to the largest end offset it names."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than a header"
            length = int.from_bytes(head, "little")
            if length > size - 8:
                return f"{size} bytes, cut short inside its header of {length} bytes"
            header = json.loads(f.read(length))
    except (ValueError, UnicodeDecodeError):
        return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    try:
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (KeyError, TypeError, ValueError, IndexError):
        return "its header lists a tensor without data_offsets"
    if 8 + length + end > size:
        return f"{size} bytes, cut short: its tensors end at byte {8 + length + end}"
    return None


def check_model_code(source: str, *, trust_remote_code: bool) -> None:
    """A local folder whose architecture transformers does not know needs code of its own:
    refused without --trust-remote-code (it runs that code), one line naming the folder."""
    folder = Path(source)
    if not folder.is_dir():
        return
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from genius.io import read_json

    config = read_json(folder / "config.json")
    model_type = config.get("model_type")
    if model_type is None and not config.get("auto_map"):
        raise UserError(f"{folder / 'config.json'}: no model_type; expected an HF model config")
    if model_type in CONFIG_MAPPING or trust_remote_code:
        return
    if config.get("auto_map"):
        raise UserError(f"{folder}: model type '{model_type}' comes with its own code (auto_map in config.json); "
                        "pass --trust-remote-code (or trust_remote_code: true in the config) if you trust that code")
    import transformers

    raise UserError(f"{folder}: model type '{model_type}' is unknown to transformers {transformers.__version__} and "
                    "the folder brings no code for it (no auto_map); upgrade transformers or use another model")
