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
        # The random tiny model seldom ends within 8 tokens: cut pairs are kept (trained without EOS).
        "sample": {"beams": 2, "candidates": 2, "steps": 2, "max_step_tokens": 6, "max_rollout_tokens": 8,
                   "unfinished": "keep", "batch_sequences": 16},
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


def test_answers_are_kept_aside_and_the_signal_is_reported(finished_run):
    """The synthetic queries' answers go to queries/answers.jsonl (the queries file has none);
    every round's stats.json has the signal diagnostics and the report shows them."""
    _, run, text = finished_run
    queries = read_jsonl(run / "queries" / "queries.jsonl")
    answers = read_jsonl(run / "queries" / "answers.jsonl")
    assert [a["id"] for a in answers] == [q["id"] for q in queries] and all(set(q) == {"id", "instruction"}
                                                                            for q in queries)
    assert all(a["task"] == "synthetic" and a["gold"] for a in answers)
    for r in (1, 2):
        sample = run / f"round{r}" / "sample"
        signal = read_json(sample / "stats.json")["signal"]
        pairs = read_jsonl(sample / "pairs.jsonl")
        assert signal["queries"] == QUERIES and signal["pairs"] == len(pairs)
        assert signal["rollouts"] > 0 and 0 <= signal["rollouts_cut_share"] <= 1
        assert {p["chosen_finish"] for p in pairs} <= {"eos", "stop", "length"}
        assert f"### Signal of the self-reward, round {r}" in text
    assert (run / "plots" / "signal_round1.png").is_file()


def test_an_evaluation_task_file_as_query_source_keeps_its_answers_aside(tmp_path):
    """queries.task: gsm8k reads a GSM8K-format file: the model gets the questions, the gold
    numbers go to the answer key."""
    import json

    from genius import pipeline

    source = tmp_path / "train.jsonl"
    source.write_text("".join(json.dumps({"question": f"What is {i} + {i}?", "answer": f"{i} + {i}\n#### {2 * i}"}) + "\n"
                              for i in range(5)))
    cfg = pipeline.load_config(None, {"queries.source": str(source), "queries.task": "gsm8k", "queries.count": 3,
                                      "queries.instruction": None, "run_dir": str(tmp_path / "run")})
    out = tmp_path / "run" / "queries" / "queries.jsonl"
    result = pipeline.make_queries(cfg, out)
    assert result["count"] == 3
    assert read_jsonl(out) == [{"id": f"gsm8k-{i}", "instruction": f"What is {i} + {i}?"} for i in range(3)]
    assert [(a["id"], a["gold"], a["task"]) for a in read_jsonl(out.parent / "answers.jsonl")] == [
        (f"gsm8k-{i}", str(2 * i), "gsm8k") for i in range(3)]
    with pytest.raises(Exception, match="queries.task"):
        pipeline.load_config(None, {"queries.task": "gsm8k"})
    # queries.instruction is appended to what the model sees, never to the answer key
    cfg = pipeline.load_config(None, {"queries.instruction": "End with the answer.", "queries.count": 2,
                                      "run_dir": str(tmp_path / "run2")})
    out = tmp_path / "run2" / "queries" / "queries.jsonl"
    pipeline.make_queries(cfg, out)
    assert all(q["instruction"].endswith("?\n\nEnd with the answer.") for q in read_jsonl(out))
    assert len(read_jsonl(out.parent / "answers.jsonl")) == 2


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
    assert "other settings (seed: 0 -> 1)" in capsys.readouterr().err


def test_missing_input_names_the_stage_to_run(tiny_model_dir, tmp_path, capsys):
    cfg = _config(tmp_path, tiny_model_dir)
    assert main(["run", str(cfg), "--only", "round1-train"]) == 2
    err = capsys.readouterr().err
    assert "round1-sample" in err and "run stage" in err


@pytest.mark.parametrize("override, message", [
    ("sample.beems=2", "unknown key 'sample.beems'"),
    ("train.lr=fast", "key 'train.lr': expected float"),
    ("rounds=two", "key 'rounds': expected int"),
    ("reference=latest", "key 'reference': expected one of 'method', 'initial', 'previous'"),
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
