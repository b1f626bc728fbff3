"""`genius eval` end to end on the tiny random model: files written, resume, compare, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genius.cli import main


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    rows = [{"question": f"Tom has {i} apples and buys 2 more. How many?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}
            for i in range(3)]
    folder = tmp_path / "data" / "gsm8k"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "data"


def _eval(model: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["eval", "--model", str(model), "--tasks", "synthetic,gsm8k", "--limit", "3", "--max-new-tokens", "6",
                 "--preset", "zero-shot", "--data-dir", str(data), "--out", str(out), "--dtype", "fp32",
                 "--device", "cpu", *extra])


def test_eval_writes_results_resumes_and_compares(tiny_model_dir: Path, data_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    assert _eval(tiny_model_dir, data_dir, run_a) == 0
    for task in ("synthetic", "gsm8k"):
        lines = (run_a / task / "samples.jsonl").read_text().splitlines()
        assert len(lines) == 3
        metrics = json.loads((run_a / task / "metrics.json").read_text())
        assert metrics["n"] == 3 and 0 <= metrics["accuracy"] <= 1 and len(metrics["ci95"]) == 2
    table = (run_a / "results.md").read_text()
    assert "| synthetic | 3 |" in table and "| gsm8k | 3 |" in table
    assert "| synthetic | 3 |" in capsys.readouterr().out

    before = (run_a / "gsm8k" / "samples.jsonl").read_text()
    assert _eval(tiny_model_dir, data_dir, run_a) == 0  # everything done: nothing appended
    assert (run_a / "gsm8k" / "samples.jsonl").read_text() == before

    assert _eval(tiny_model_dir, data_dir, run_b, "--samples", "2") == 0
    assert "maj@2" in (run_b / "results.md").read_text()
    capsys.readouterr()
    assert main(["eval", "compare", str(run_a), str(run_b), "--out", str(tmp_path / "cmp.md")]) == 0
    printed = capsys.readouterr().out
    assert "McNemar p" in printed and "| gsm8k | 3 |" in printed and "| synthetic | 3 |" in printed
    assert (tmp_path / "cmp.md").read_text().splitlines()[0] == f"A = {run_a}"


def test_unknown_task_and_missing_data_exit_2(tiny_model_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", str(tiny_model_dir), "--tasks", "gsm8k,nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown task 'nope': known tasks are" in capsys.readouterr().err
    assert main(["eval", "--model", str(tiny_model_dir), "--tasks", "reclor", "--data-dir", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'reclor'} not found" in err and "val.json" in err
    assert main(["eval", "compare", str(tmp_path / "x")]) == 2
    assert main(["eval", "compare", str(tmp_path / "x"), str(tmp_path / "y")]) == 2
    assert "no such run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_model_answers_in_the_instructed_form(embedded_model_dir: Path, tmp_path: Path) -> None:
    """SmolLM2-135M, zero-shot, 4 synthetic problems: the responses are real text and most end in
    an extractable answer (a random model would give none)."""
    from genius.evaluation import EvalConfig, run_eval

    cfg = EvalConfig(model="smollm2-135m", tasks=["synthetic"], limit=4, max_new_tokens=96, preset="zero-shot",
                     dtype="fp32", device="cpu")
    metrics = run_eval(cfg, tmp_path)["synthetic"]
    records = [json.loads(line) for line in (tmp_path / "synthetic" / "samples.jsonl").read_text().splitlines()]
    assert metrics["n"] == 4 and all(r["response"].strip() for r in records)
    assert metrics["n_no_answer"] <= 2


def test_the_config_file_holds_unless_a_flag_is_given(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A YAML value survives when its flag is not given (max_new_tokens 5, preset zero-shot, the
    model and dtype), and a flag beats the YAML (--max-new-tokens 3)."""
    import yaml

    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"model": str(tiny_model_dir), "tasks": ["synthetic"], "limit": 2,
                                   "max_new_tokens": 5, "preset": "zero-shot", "dtype": "fp32", "device": "cpu"}))
    assert main(["eval", "--config", str(cfg), "--out", str(tmp_path / "a")]) == 0
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert (saved["max_new_tokens"], saved["preset"], saved["model"], saved["dtype"]) == (
        5, "zero-shot", str(tiny_model_dir), "fp32")
    assert main(["eval", "--config", str(cfg), "--max-new-tokens", "3", "--out", str(tmp_path / "b")]) == 0
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["max_new_tokens"] == 3
