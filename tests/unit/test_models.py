"""Model specs, the embedded-model cache, chat prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius import models
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
