"""The CLI's foundation commands: models, generate, and the one-line error contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from genius.cli import main


def test_unknown_model_spec_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "hi", "--model", "not/a/model/spec"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model spec" in err[0]


def test_generate_on_a_local_folder(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["generate", "hello", "--model", str(tiny_model_dir), "--n", "2", "--temperature", "0.8",
               "--max-new-tokens", "8", "--show-logprobs"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.count("--- sample") == 2 and out.count("mean log-prob") == 2


def test_models_resolve_no_load(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "resolve", str(tiny_model_dir), "--no-load"]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_model_dir)


def test_models_convert_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "convert", "gpt-5"]) == 2
    assert "unknown embedded model 'gpt-5'" in capsys.readouterr().err
