"""One resume rule in every command (genius.config.check_resume): a folder started with other
settings is refused in one line naming the change, --force goes on with the new settings, a
field marked may_change (batch size, engine) may change, and a start whose inputs fail records
no config copy, so the corrected rerun is accepted. Runs on the tiny random model (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from genius.cli import main


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"What is {i} plus {i}?", "input": "",
                                        "output": f"{i} plus {i} is {2 * i}."}) + "\n" for i in range(2)))
    return path


def _last_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command printed."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _ok(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must succeed; return (and clear) what it printed."""
    assert main(argv) == 0
    return capsys.readouterr().out


def test_eval_records_its_config_only_once_the_model_loaded_and_force_goes_on(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "e"
    argv = ["eval", "--tasks", "synthetic", "--limit", "2", "--max-new-tokens", "2", "--preset", "zero-shot",
            "--dtype", "fp32", "--device", "cpu", "--out", str(out)]
    assert main([*argv, "--model", str(tmp_path / "no-such-model")]) == 2
    assert "unknown model spec" in _last_error(capsys)
    assert not (out / "config.yaml").exists()
    _ok(capsys, [*argv, "--model", str(tiny_model_dir)])  # the corrected rerun is no changed config
    assert main([*argv, "--model", str(tiny_model_dir), "--seed", "1"]) == 2
    assert "other settings (seed: 0 -> 1)" in _last_error(capsys)
    _ok(capsys, [*argv, "--model", str(tiny_model_dir), "--batch-size", "1", "--limit", "3"])  # may change
    _ok(capsys, [*argv, "--model", str(tiny_model_dir), "--seed", "1", "--force"])
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 1
    _ok(capsys, [*argv, "--model", f"{tiny_model_dir}/", "--seed", "1"])  # a trailing / is the same model folder


def test_sample_refuses_a_changed_config_before_loading_the_model(tiny_model_dir, corpus, tmp_path, capsys,
                                                                    monkeypatch):
    out = tmp_path / "s"
    argv = ["sample", str(corpus), "--out", str(out), "--model", str(tiny_model_dir), "--beams", "1", "--candidates",
            "2", "--steps", "1", "--max-step-tokens", "2", "--max-rollout-tokens", "2", "--no-progress", "--dtype",
            "fp32", "--device", "cpu"]
    _ok(capsys, argv)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded for a refused resume")

    with monkeypatch.context() as m:
        m.setattr("genius.engines.make_engine", no_model)
        assert main([*argv, "--tau", "0.2"]) == 2
    assert "other settings (tau: 0.1 -> 0.2)" in _last_error(capsys)
    _ok(capsys, [*argv, "--batch-sequences", "4"])  # may change
    _ok(capsys, [*argv, "--tau", "0.2", "--force"])
    assert yaml.safe_load((out / "sample_config.yaml").read_text())["tau"] == 0.2


def test_baseline_refuses_another_method_or_seed_and_force_goes_on(corpus, tmp_path, capsys, monkeypatch):
    out = tmp_path / "b"
    argv = ["baseline", "sft", "--queries", str(corpus), "--out", str(out), "--dtype", "fp32", "--device", "cpu"]
    _ok(capsys, argv)
    assert main([*argv, "--seed", "1"]) == 2
    assert "other settings (seed: 0 -> 1)" in _last_error(capsys)
    _ok(capsys, [*argv, "--batch-size", "1", "--engine", "hf"])  # may change
    monkeypatch.setattr("genius.engines.make_engine", lambda spec, **kw: object())
    assert main(["baseline", "spin", *argv[2:]]) == 2
    assert "method: 'sft' -> 'spin'" in _last_error(capsys)
    _ok(capsys, [*argv, "--seed", "1", "--force"])
    saved = yaml.safe_load((out / "baseline.yaml").read_text())
    assert (saved["method"], saved["seed"]) == ("sft", 1)
    _ok(capsys, [*argv, "--seed", "1"])  # the forced settings are the folder's now


def test_a_failed_train_records_no_config_and_force_goes_on(tiny_model_dir, tmp_path, capsys):
    """A train whose data file is invalid fails (exit 2) before recording train_config.yaml, so the
    corrected rerun into the same --out is accepted; a changed lr is refused, --force goes on."""
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "q", "rejected": "b"}) + "\n")
    out = tmp_path / "t"
    argv = ["train", "--model", str(tiny_model_dir), "--data", str(data), "--out", str(out), "--cpu", "--max-steps",
            "1", "--set", "save_every=0", "--set", "max_length=64", "--set", f"reference_cache_dir={tmp_path / 'rc'}"]
    assert main(argv) == 2
    assert "field 'chosen': missing" in _last_error(capsys)
    assert not (out / "train_config.yaml").exists()
    data.write_text("".join(json.dumps({"prompt": f"{i} + 1?", "chosen": f"{i + 1}", "rejected": f"{i + 2}",
                                        "A_w": 0.1, "A_l": -0.1}) + "\n" for i in range(4)))
    _ok(capsys, argv)
    assert (out / "train_config.yaml").is_file() and (out / "final").is_dir()
    assert main([*argv, "--lr", "1e-3"]) == 2
    assert "other settings (lr: " in _last_error(capsys)
    assert "nothing to do" in _ok(capsys, [*argv, "--lr", "1e-3", "--force"])


def test_run_reads_a_trailing_slash_as_the_same_run_dir(tmp_path):
    from genius import config, pipeline

    saved = tmp_path / "config.yaml"
    cfg = pipeline.load_config(None, {"run_dir": f"{tmp_path / 'r'}/"})
    assert cfg.run_dir == str(tmp_path / "r")
    data = config.to_dict(cfg)
    saved.write_text(yaml.safe_dump({**data, "run_dir": f"{tmp_path / 'r'}/"}))  # as written before normalising
    pipeline._check_saved_config(pipeline.load_config(None, {"run_dir": str(tmp_path / "r")}), tmp_path, force=False)
    changed = pipeline.load_config(None, {"run_dir": str(tmp_path / "r"), "rounds": 2})
    with pytest.raises(Exception, match=r"other settings \(rounds: 1 -> 2\)"):
        pipeline._check_saved_config(changed, tmp_path, force=False)
    pipeline._check_saved_config(changed, tmp_path, force=True)


def test_run_compare_entries_keep_their_dotted_overrides(tmp_path):
    from genius import pipeline

    cfg = pipeline.load_config(None, {"run_dir": str(tmp_path / "c"), "compare": {
        "genius": {}, "star": {"baseline.k": 8, "queries.count": 4}}})
    runs = pipeline.comparison_runs(cfg)
    assert [(r.method, r.baseline, r.queries.count, r.run_dir) for r in runs] == [
        ("genius", {}, cfg.queries.count, str(tmp_path / "c" / "genius")),
        ("star", {"k": 8}, 4, str(tmp_path / "c" / "star"))]
