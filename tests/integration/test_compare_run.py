"""`compare` in a run config: Genius and the six baselines on the same queries, one report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genius.cli import main
from genius.io import read_json, read_jsonl

# The methods whose data the tiny random model can build (STaR, ScPO and Self-Rewarding need
# agreeing final answers or parsable judge scores, which random weights never write: they are
# checked by the builders' unit tests and by the embedded model's run of configs/table1_micro.yaml).
METHODS = ["genius", "sft", "spin", "coh"]


def _config(tmp: Path, model: Path, compare: dict) -> Path:
    cfg = {
        "model": str(model), "run_dir": str(tmp / "cmp"), "dtype": "fp32", "device": "cpu",
        "queries": {"source": "synthetic", "count": 2},
        "sample": {"beams": 2, "candidates": 2, "steps": 2, "max_step_tokens": 6, "max_rollout_tokens": 8,
                   "unfinished": "keep"},
        "baseline": {"k": 6, "max_new_tokens": 6, "temperature": 1.0, "judge_samples": 1,
                     "judge_max_new_tokens": 4, "vote_threshold": 0.3},
        "train": {"lr": 1e-3, "max_steps": 1, "per_device_batch_size": 2, "max_length": 256},
        "eval": {"tasks": ["synthetic"], "limit": 3, "max_new_tokens": 6, "batch_size": 8},
        "compare": compare,
    }
    path = tmp / "cmp.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # the order of `compare` is the run order
    return path


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from genius.tiny import byte_tokenizer, tiny_llama

    tmp = tmp_path_factory.mktemp("compare")
    model = tmp / "model"
    tok = byte_tokenizer()
    tiny_llama(eos_token_id=tok.eos_token_id, max_positions=4096).save_pretrained(model)  # the judge prompt is long
    tok.save_pretrained(model)
    # SPIN's greedy own response is blank with random weights (EOS first): sample it instead.
    cfg = _config(tmp, model, {m: {"baseline.spin_greedy": False} if m == "spin" else {} for m in METHODS})
    code = main(["run", str(cfg)])
    return cfg, tmp / "cmp", code


def test_every_method_runs_and_trains_with_its_loss(comparison):
    _, run, code = comparison
    assert code == 0
    losses = {"genius": "aco", "sft": "sft", "spin": "dpo", "coh": "dpo"}
    for method in METHODS:
        member = run / method
        assert yaml.safe_load((member / "config.yaml").read_text())["method"] == method
        assert (member / "round1" / "eval" / "DONE.json").is_file(), method
        assert yaml.safe_load((member / "round1" / "train" / "train_config.yaml").read_text())["loss"] == losses[method]


def test_queries_are_shared_and_only_the_supervised_runs_see_solutions(comparison):
    _, run, _ = comparison
    texts = {m: [q["instruction"] for q in read_jsonl(run / m / "queries" / "queries.jsonl")] for m in METHODS}
    assert all(t == texts["genius"] for t in texts.values())
    for method in METHODS:
        has_output = ["output" in q for q in read_jsonl(run / method / "queries" / "queries.jsonl")]
        assert has_output == [method in ("sft", "spin")] * 2, method
    sft = read_jsonl(run / "sft" / "round1" / "sample" / "sft.jsonl")
    assert all(r["response"].endswith(".") and "The answer is" in r["response"] for r in sft)


def test_base_evaluation_is_done_once_and_copied(comparison):
    _, run, _ = comparison
    first = read_jsonl(run / "genius" / "eval" / "base" / "synthetic" / "samples.jsonl")
    for method in METHODS[1:]:
        done = read_json(run / method / "eval" / "base" / "DONE.json")
        assert done["result"]["copied_from"] == str(run / "genius" / "eval" / "base")
        assert read_jsonl(run / method / "eval" / "base" / "synthetic" / "samples.jsonl") == first


def test_one_report_holds_every_run(comparison, capsys):
    _, run, _ = comparison
    text = (run / "report.md").read_text()
    for method in METHODS:
        assert f"| {method} (" in text  # the accuracy table
        assert f"[{method}]({method}/report.md)" in text
    assert (run / "plots" / "comparison.png").stat().st_size > 0
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert all(f"| {m} (" in out for m in METHODS) and "base: " in out


def test_rerun_skips_everything(comparison, capsys):
    cfg, _, _ = comparison
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "starting" not in out and out.count("done already") == 5 * len(METHODS)


def test_a_method_without_data_is_reported_and_the_others_finish(tmp_path, comparison, capsys):
    """STaR, whose votes cannot agree here, builds no data: a one-line error names the stage, the
    other run still finishes and is in the report, exit code 2."""
    _, run, _ = comparison
    model = Path(yaml.safe_load((run / "genius" / "config.yaml").read_text())["model"])
    cfg = _config(tmp_path, model, {"sft": {}, "star": {}})
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "stage 'round1-sample': method 'star' built no training data" in err
    assert (tmp_path / "cmp" / "sft" / "round1" / "eval" / "DONE.json").is_file()
    assert "| sft (" in (tmp_path / "cmp" / "report.md").read_text()


def test_bad_compare_entry_fails_before_any_work(tmp_path, comparison, capsys):
    _, run, _ = comparison
    model = Path(yaml.safe_load((run / "genius" / "config.yaml").read_text())["model"])
    cfg = _config(tmp_path, model, {"genius": {}, "nonsense": {}})
    assert main(["run", str(cfg)]) == 2
    assert "unknown method 'nonsense'" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()
