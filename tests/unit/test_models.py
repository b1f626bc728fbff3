"""Model specs, the embedded-model cache, chat prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius import model_checks, models
from genius.errors import UserError
from genius.tiny import byte_tokenizer


def test_unknown_spec_lists_accepted_forms() -> None:
    with pytest.raises(UserError, match="expected an embedded model name"):
        models.resolve("no such model!")


def test_file_is_not_a_model(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        models.resolve(str(f))


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs config.json"):
        models.resolve(str(tmp_path))


def test_hub_id_passes_through_resolution() -> None:
    assert models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_hub_id_offline_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="hub .*unreachable or offline.*local folder"):
        models.load_model("someone/not-in-the-local-cache-xyz")


def test_cache_root_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENIUS_CACHE", str(tmp_path / "g"))
    assert models.cache_root() == tmp_path / "g"
    monkeypatch.delenv("GENIUS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_root() == tmp_path / "xdg" / "genius"


def test_complete_marker_detects_partial_and_corrupt_folders(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    assert not models.is_complete_model_dir(tmp_path)  # no marker: a conversion was killed
    (tmp_path / models.COMPLETE_MARKER).write_text(json.dumps({"files": {"model.safetensors": 10}}))
    assert models.is_complete_model_dir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x" * 7)  # truncated weights
    assert not models.is_complete_model_dir(tmp_path)
    (tmp_path / models.COMPLETE_MARKER).write_text("{not json")
    assert not models.is_complete_model_dir(tmp_path)


def test_local_folder_loads(tiny_model_dir: Path) -> None:
    model, tok = models.load_model(str(tiny_model_dir), dtype="fp32", device="cpu")
    assert model.config.num_hidden_layers == 2
    assert tok.pad_token_id is not None
    assert not model.training


def test_unknown_dtype() -> None:
    with pytest.raises(UserError, match="unknown dtype"):
        models.pick_dtype("cpu", "fp8")


def test_chat_prompt_uses_template_and_prefix() -> None:
    tok = byte_tokenizer()
    ids = models.chat_prompt_ids(tok, [{"role": "user", "content": "2+2?"}], "The reasoning steps are:\n\n")
    text = tok.decode(ids)
    assert text == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\nThe reasoning steps are:\n\n"


def test_chat_prompt_fallback_without_template() -> None:
    tok = byte_tokenizer(chat_template=None)
    text = tok.decode(models.chat_prompt_ids(tok, [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]))
    assert text == "System: S\n\nUser: Q\n\nAssistant: "


class _BosTokenizer:
    """A stand-in with a template that writes BOS itself, like Llama-3's."""

    chat_template = "x"
    bos_token = "<s>"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return "<s>[U]" + messages[0]["content"] + "[A]"

    def __call__(self, text, add_special_tokens):
        ids = [0] if add_special_tokens else []  # a tokenizer that would prepend BOS
        return {"input_ids": ids + [ord(c) for c in text]}


def test_chat_prompt_has_no_double_bos() -> None:
    ids = models.chat_prompt_ids(_BosTokenizer(), [{"role": "user", "content": "q"}])
    assert ids[0] != 0 and "".join(map(chr, ids)).count("<s>") == 1


def test_embedded_models_are_listed() -> None:
    rows = models.list_models()
    assert [r["name"] for r in rows] == ["smollm2-135m"]


def test_hub_probe_goes_through_huggingface_hubs_session(monkeypatch):
    """The probe asks huggingface_hub's HTTP session (proxies, HF_ENDPOINT) and honours
    HF_HUB_OFFLINE before any request."""
    import huggingface_hub.utils

    from genius.models import hub_reachable

    asked: list[str] = []

    class Session:
        def __init__(self, fail: bool):
            self.fail = fail

        def head(self, url, timeout):
            asked.append(url)
            if self.fail:
                raise ConnectionError("no route")
            return object()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: Session(False))
    assert hub_reachable() is False and asked == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    assert hub_reachable() is True and asked == ["https://mirror.example"]
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: Session(True))
    assert hub_reachable() is False


def test_hub_ids_pinned_to_a_revision(monkeypatch, tmp_path):
    """owner/name@rev reaches from_pretrained as revision=rev (and load_dataset for queries);
    a local folder whose name holds an @ is still a folder."""
    from genius import models

    assert models.hub_revision("meta-llama/Llama-3.1-8B-Instruct@0e9e39f") == ("meta-llama/Llama-3.1-8B-Instruct",
                                                                               "0e9e39f")
    assert models.hub_revision("meta-llama/Llama-3.1-8B-Instruct") == ("meta-llama/Llama-3.1-8B-Instruct", None)
    folder = tmp_path / "a@b"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert models.hub_revision(str(folder)) == (str(folder), None)
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    assert models.pretrained_source("org/model@v1.2") == ("org/model", {"revision": "v1.2"})
    assert models.pretrained_source("org/model") == ("org/model", {})
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: False)
    assert models.pretrained_source("org/model@abc") == ("org/model", {"local_files_only": True, "revision": "abc"})


def test_a_pinned_hub_dataset_is_loaded_at_its_revision(monkeypatch):
    import datasets

    from genius import models
    from genius.queries import load_queries

    seen = {}

    def fake_load(name, split, revision):
        seen.update(name=name, split=split, revision=revision)
        return [{"instruction": "What is 1 + 1?"}]

    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    qs = load_queries("org/queries@5d2f1a0")
    assert seen == {"name": "org/queries", "split": "train", "revision": "5d2f1a0"} and len(qs.queries) == 1


# --- the one check of a model folder, and the one device check ---

def _copy(tiny_model_dir: Path, tmp_path: Path, name: str) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_model_dir, tmp_path / name))


def _edit_config(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_broken_config_json_is_named_not_taken_for_missing_tokenizer_files(tiny_model_dir: Path,
                                                                              tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path, "m")
    (folder / "config.json").write_text('{"model_type": "llama",\n oops}')
    for load in (models.load_tokenizer, models.resolve, models.model_config):
        with pytest.raises(UserError, match=rf"^{folder / 'config.json'}:2: not valid JSON \(Expecting property name"):
            load(str(folder))
    (folder / "config.json").write_bytes(b'{"model_type": "\xfe"}')
    with pytest.raises(UserError, match=r"config.json:1: not UTF-8 text \(byte 0xfe at byte offset 16"):
        models.load_tokenizer(str(folder))


def test_weights_only_in_pickle_files_are_refused_by_the_one_check(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path, "m")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    # resolve is what every loader (training's too) goes through
    for load in (models.resolve, models.load_tokenizer, lambda spec: models.load_model(spec, device="cpu")):
        with pytest.raises(UserError, match=r"the weights are pickle files only \(pytorch_model\.bin\)"):
            load(str(folder))
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(UserError, match=r"no weights \(\*\.safetensors\)"):
        models.resolve(str(folder))


def test_a_truncated_or_damaged_safetensors_file_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path, "m")
    weights = folder / "model.safetensors"
    assert model_checks.safetensors_problem(weights) is None
    data = weights.read_bytes()
    weights.write_bytes(data[:-100])
    with pytest.raises(UserError, match=rf"^{weights}: damaged safetensors file \({len(data) - 100} bytes, cut short: "
                                        rf"its tensors end at byte {len(data)}\)"):
        models.load_model(str(folder), device="cpu")
    weights.write_bytes(data[:20])
    assert "cut short inside its header" in model_checks.safetensors_problem(weights)
    weights.write_bytes((4).to_bytes(8, "little") + b"\xff{}}" + data[12:])
    assert model_checks.safetensors_problem(weights) == "its header is not JSON"


def test_custom_model_code_needs_the_flag(tiny_model_dir: Path, tmp_path: Path) -> None:
    custom = _copy(tiny_model_dir, tmp_path, "custom")
    _edit_config(custom, model_type="zorblat", auto_map={"AutoModelForCausalLM": "modeling_zorblat.Zorblat"})
    with pytest.raises(UserError, match=rf"^{custom}: model type 'zorblat' comes with its own code .*--trust-remote"):
        models.load_tokenizer(str(custom))
    with pytest.raises(UserError, match="--trust-remote-code"):
        models.load_model(str(custom), device="cpu")
    unknown = _copy(tiny_model_dir, tmp_path, "unknown")
    _edit_config(unknown, model_type="zorblat")
    with pytest.raises(UserError, match=r"unknown to transformers .* \(no auto_map\)"):
        models.model_config(str(unknown))
    model_checks.check_model_code(str(tiny_model_dir), trust_remote_code=False)  # a known type needs no flag


def test_device_values_are_checked_against_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    assert models.pick_device("cpu") == "cpu"
    with pytest.raises(UserError, match=r"^device 'foo': not a device; set --device .* one of: cpu"):
        models.pick_device("foo")
    with pytest.raises(UserError, match="genius runs on cpu, cuda or mps, not xla"):
        models.pick_device("xla")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(UserError, match=r"^device 'cuda': this torch is built without CUDA; .*one of: cpu$"):
        models.pick_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    with pytest.raises(UserError, match="device 'cuda:0': no CUDA GPU is visible"):
        models.pick_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert models.pick_device("cuda:1") == "cuda:1" and models.pick_device("auto") == "cuda"
    with pytest.raises(UserError, match=r"device 'cuda:7': this machine has 2 GPU\(s\); .*cpu, cuda, cuda:0, cuda:1$"):
        models.pick_device("cuda:7")


def test_make_engine_refuses_a_missing_device_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    import genius.engines.hf as hf
    from genius.engines import make_engine

    def must_not_load(*args, **kwargs):
        raise AssertionError("loaded a model for a device that is not there")

    monkeypatch.setattr(hf.HFEngine, "from_spec", must_not_load)
    with pytest.raises(UserError, match="device 'cuda:9'"):
        make_engine("any", engine="hf", device="cuda:9")
