"""`genius run` end to end on the tiny random model: files, counts, report, resume, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from genius.cli import main
from genius.io import read_json, read_jsonl

QUERIES, EVAL_ITEMS = 3, 4


def _config(tmp: Path, model: Path, **extra) -> Path:
    cfg = {
        "model": str(model), "run_dir": str(tmp / "run"), "dtype": "fp32", "device": "cpu", "rounds": 2,
        "queries": {"source": "synthetic", "count": QUERIES},
        "sample": {"beams": 2, "candidates": 2, "steps": 2, "max_step_tokens": 6, "max_rollout_tokens": 8,
                   "batch_sequences": 16},
        "train": {"loss": "aco", "lr": 1e-3, "max_steps": 2, "per_device_batch_size": 2, "max_length": 256},
        "eval": {"tasks": ["synthetic"], "limit": EVAL_ITEMS, "max_new_tokens": 8, "batch_size": 8, "eval_every": 1},
        **extra,
    }
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def finished_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A 2-round run that is interrupted (Ctrl-C) in round 2's training, then resumed to the end."""
    import genius.training

    tmp = tmp_path_factory.mktemp("pipeline")
    cfg = _config(tmp, tiny_model_dir)
    real_train = genius.training.run_train

    def interrupted(tcfg, out_dir, **kw):
        if "round2" in str(out_dir):
            raise KeyboardInterrupt
        return real_train(tcfg, out_dir, **kw)

    genius.training.run_train = interrupted
    try:
        assert main(["run", str(cfg)]) == 130
    finally:
        genius.training.run_train = real_train
    run = tmp / "run"
    assert (run / "round1" / "eval" / "DONE.json").is_file()
    assert not (run / "round2" / "train" / "DONE.json").exists()
    assert main(["run", str(cfg)]) == 0
    return cfg, run, (run / "report.md").read_text()


def test_files_hold_the_right_counts(finished_run):
    _, run, _ = finished_run
    assert len(read_jsonl(run / "queries" / "queries.jsonl")) == QUERIES
    for r in (1, 2):
        sample = run / f"round{r}" / "sample"
        assert len(read_jsonl(sample / "trees.jsonl")) == QUERIES
        stats = read_json(sample / "stats.json")
        assert stats["pairs"] == len(read_jsonl(sample / "pairs.jsonl")) > 0
        assert [x["step"] for x in read_jsonl(run / f"round{r}" / "train" / "train_log.jsonl")] == [1, 2]
        assert (run / f"round{r}" / "train" / "final" / "config.json").is_file()
        for folder in ("eval", "eval-step1"):
            assert len(read_jsonl(run / f"round{r}" / folder / "synthetic" / "samples.jsonl")) == EVAL_ITEMS
    assert len(read_jsonl(run / "eval" / "base" / "synthetic" / "samples.jsonl")) == EVAL_ITEMS


def test_round_two_starts_from_round_one(finished_run):
    _, run, _ = finished_run
    saved = yaml.safe_load((run / "round2" / "train" / "train_config.yaml").read_text())
    assert saved["model"] == str(run / "round1" / "train" / "final")
    assert saved["reference_model"] == yaml.safe_load((run / "config.yaml").read_text())["model"]


def test_report_and_plots(finished_run):
    _, run, text = finished_run
    assert f"| synthetic | {EVAL_ITEMS} |" in text
    for r in (1, 2):
        assert f"## Sampling, round {r}" in text and f"## Training, round {r}" in text
        assert (run / "plots" / f"advantages_round{r}.png").stat().st_size > 0
        assert (run / "plots" / f"training_round{r}.png").stat().st_size > 0
    # scaling curve: base (step 0), round 1 step 1 and final (2), round 2 step 1 (3) and final (4)
    assert "| task | step 0 | step 1 | step 2 | step 3 | step 4 |" in text
    assert (run / "plots" / "scaling.png").stat().st_size > 0


def test_rerun_skips_every_finished_stage(finished_run, capsys):
    cfg, run, _ = finished_run
    before = (run / "round1" / "train" / "DONE.json").read_text()
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "starting" not in out
    assert out.count("skipped") == 10  # queries, eval-base, 2 x (sample, train, eval-steps, eval)
    assert (run / "round1" / "train" / "DONE.json").read_text() == before


def test_half_finished_eval_resumes(finished_run, capsys):
    cfg, run, _ = finished_run
    samples = run / "round2" / "eval" / "synthetic" / "samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(lines[:2]) + lines[2][:10])  # two items kept, a torn third line
    (run / "round2" / "eval" / "DONE.json").unlink()
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.count("starting") == 1 and "[round2-eval] starting" in out
    assert len(read_jsonl(samples)) == EVAL_ITEMS


def test_changed_config_is_refused(finished_run, capsys):
    cfg, _, _ = finished_run
    assert main(["run", str(cfg), "--set", "seed=1"]) == 2
    assert "changed: seed" in capsys.readouterr().err


def test_missing_input_names_the_stage_to_run(tiny_model_dir, tmp_path, capsys):
    cfg = _config(tmp_path, tiny_model_dir)
    assert main(["run", str(cfg), "--only", "round1-train"]) == 2
    err = capsys.readouterr().err
    assert "round1-sample" in err and "run stage" in err


@pytest.mark.parametrize("override, message", [
    ("sample.beems=2", "unknown key 'sample.beems'"),
    ("train.lr=fast", "key 'train.lr': expected float"),
    ("rounds=two", "key 'rounds': expected int"),
    ("reference=latest", "key 'reference': expected one of 'initial', 'previous'"),
    ("method=magic", "unknown method 'magic'"),
    ("sample.seed=3", "key 'sample.seed' is set by the pipeline"),
])
def test_bad_config_fails_before_any_work(tiny_model_dir, tmp_path, capsys, override, message):
    cfg = _config(tmp_path, tiny_model_dir)
    assert main(["run", str(cfg), "--set", override]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_packaged_demo_matches_configs_demo():
    root = Path(__file__).resolve().parents[2]
    assert (root / "configs" / "demo.yaml").read_text() == (root / "src" / "genius" / "configs" / "demo.yaml").read_text()


def test_every_shipped_config_validates(tmp_path):
    from genius.pipeline import load_config

    root = Path(__file__).resolve().parents[2]
    paths = [p for p in sorted((root / "configs").glob("*.yaml")) if not p.name.startswith("train_")]
    assert len(paths) >= 10
    for path in paths:
        load_config(path)


def test_run_dir_copy_is_independent(finished_run, tmp_path):
    """Everything a report needs sits inside the run dir: a copy reports the same table."""
    from genius.report import build_report

    _, run, text = finished_run
    copy = shutil.copytree(run, tmp_path / "copy")
    assert build_report(copy).split("## Config")[0].replace("copy", "run") == text.split("## Config")[0]
