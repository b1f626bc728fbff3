"""``engine`` and ``engine_options`` through every command that generates: a YAML value survives
when ``--engine`` is not given, the flag beats the YAML, and the pipeline hands its engine
settings to every stage. The engine factory is replaced by one that records its arguments and
stops the command (a UserError: exit 2), so no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius.cli import main
from genius.errors import UserError


@pytest.fixture
def calls(monkeypatch):
    seen: list[dict] = []

    def fake_make_engine(spec, **kwargs):
        seen.append({"spec": spec, **kwargs})
        raise UserError("stopped by the test")

    monkeypatch.setattr("genius.engines.make_engine", fake_make_engine)
    return seen


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "instruction": f"What is {i} + 1?"}) + "\n" for i in range(3)))
    return path


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


OPTIONS_YAML = "engine: vllm\nengine_options:\n  max_model_len: 2048\n  gpu_memory_utilization: 0.5\n"


def _check(calls: list[dict], engine: str) -> None:
    assert len(calls) == 1
    assert calls[0]["engine"] == engine
    assert calls[0]["options"].max_model_len == 2048 and calls[0]["options"].gpu_memory_utilization == 0.5


@pytest.mark.parametrize("flag, expected", [([], "vllm"), (["--engine", "hf"], "hf")])
def test_sample(calls, queries, tmp_path, flag, expected):
    cfg = _yaml(tmp_path, OPTIONS_YAML)
    assert main(["sample", str(queries), "--out", str(tmp_path / "s"), "--config", str(cfg), *flag]) == 2
    _check(calls, expected)


@pytest.mark.parametrize("flag, expected", [([], "vllm"), (["--engine", "hf"], "hf")])
def test_eval(calls, tmp_path, flag, expected):
    cfg = _yaml(tmp_path, OPTIONS_YAML)
    assert main(["eval", "--tasks", "synthetic", "--limit", "2", "--out", str(tmp_path / "e"), "--config", str(cfg),
                 *flag]) == 2
    _check(calls, expected)


@pytest.mark.parametrize("flag, expected", [([], "vllm"), (["--engine", "hf"], "hf")])
def test_baseline(calls, queries, tmp_path, flag, expected):
    cfg = _yaml(tmp_path, OPTIONS_YAML)
    assert main(["baseline", "star", "--queries", str(queries), "--out", str(tmp_path / "b"), "--config", str(cfg),
                 *flag]) == 2
    _check(calls, expected)


@pytest.mark.parametrize("flag, expected", [([], "vllm"), (["--engine", "hf"], "hf")])
def test_run_hands_its_engine_to_the_stages(calls, tmp_path, flag, expected):
    cfg = _yaml(tmp_path, OPTIONS_YAML + f"run_dir: {tmp_path / 'r'}\nqueries:\n  count: 2\ndevice: cpu\n")
    assert main(["run", str(cfg), *flag]) == 2
    _check(calls, expected)
    from genius import pipeline

    cfg = pipeline.load_config(str(cfg), {"engine": expected})
    for stage in (pipeline.sample_config(cfg, 1), pipeline.eval_config(cfg, cfg.model)):
        assert stage.engine == expected and stage.engine_options.max_model_len == 2048


def test_run_refuses_an_engine_inside_a_stage_section(calls, tmp_path, capsys):
    cfg = _yaml(tmp_path, f"run_dir: {tmp_path / 'r'}\nsample:\n  engine: vllm\n")
    assert main(["run", str(cfg)]) == 2
    assert "sample.engine' is set by the pipeline" in capsys.readouterr().err
    assert not calls


def test_a_changed_engine_resumes_a_run(tmp_path):
    """engine and engine_options change speed, not the method: a resumed run may change them."""
    from genius import config as configlib
    from genius.pipeline import PipelineConfig, _check_saved_config

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    configlib.save(PipelineConfig(engine="hf"), run_dir / "config.yaml")
    _check_saved_config(configlib.from_dict(PipelineConfig, {"engine": "vllm", "engine_options": {"max_model_len": 8}}),
                        run_dir, force=False)
    with pytest.raises(UserError, match=r"other settings \(seed: 0 -> 3\)"):
        _check_saved_config(PipelineConfig(seed=3), run_dir, force=False)
