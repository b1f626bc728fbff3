"""One comparison: `genius eval compare` and the reports give the same numbers for the same folders."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from genius.cli import main
from genius.evaluation.compare import RESAMPLES, SEED, compare_runs, load_eval_dir, paired_difference
from genius.evaluation.stats import paired_bootstrap
from genius.io import write_json, write_yaml
from genius.report import build_comparison_report, build_report


def _eval(folder: Path, task: str, correct: dict[str, bool]) -> None:
    k, n = sum(correct.values()), len(correct)
    write_json(folder / task / "metrics.json", {"task": task, "accuracy": k / n, "n": n, "ci95": [0.1, 0.9]})
    (folder / task / "samples.jsonl").write_text("".join(json.dumps({"id": i, "correct": c}) + "\n"
                                                         for i, c in correct.items()))


def _answers(seed: int, n: int, p: float) -> dict[str, bool]:
    rng = random.Random(seed)
    return {f"item{i}": rng.random() < p for i in range(n)}


def _make_run(run: Path, tasks: dict[str, tuple[dict[str, bool], dict[str, bool]]]) -> Path:
    """A run whose base and round-1 model answered ``tasks``: task -> (base, trained)."""
    write_yaml(run / "config.yaml", {"model": "tiny", "method": "genius"})
    for task, (base, trained) in tasks.items():
        _eval(run / "eval" / "base", task, base)
        _eval(run / "round1" / "eval", task, trained)
    return run


def _compare_rows(printed: str) -> dict[str, tuple[str, str, str, str, str]]:
    """task -> (B - A, low, high, only A / only B, McNemar p) from the table `genius eval compare` prints."""
    rows = {}
    for line in printed.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 9 and cells[0] not in ("task", "---"):
            low, high = cells[5].split(" to ")
            rows[cells[0]] = (cells[4], low, high, f"{cells[6]} / {cells[7]}", cells[8])
    return rows


def _report_cells(text: str, first: str) -> tuple[str, str, str, str, str]:
    """(diff, low, high, only base / only trained, McNemar p) of the report row starting with ``first``."""
    line = next(x for x in text.splitlines() if x.startswith(f"| {first} |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    diff, low, high = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cells[-3]).groups()
    return diff, low, high, cells[-2], cells[-1]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    # 60 and 45 items with a real difference: intervals of several points, a p-value below 1
    return _make_run(tmp_path / "run", {
        "arith": (_answers(1, 60, 0.3), _answers(2, 60, 0.55)),
        "order": (_answers(3, 45, 0.5), _answers(4, 45, 0.4)),
    })


def test_eval_compare_and_the_run_report_print_the_same_numbers(run: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["eval", "compare", str(run / "eval" / "base"), str(run / "round1" / "eval")]) == 0
    printed = _compare_rows(capsys.readouterr().out)
    text = build_report(run)
    assert set(printed) == {"arith", "order"}
    for task, cells in printed.items():
        assert _report_cells(text, task) == cells, task
    diff, low, high, _, p = printed["arith"]
    assert float(low) < float(diff) < float(high) and float(p) < 1  # not a degenerate pair


def test_comparison_report_pools_like_eval_compare_on_one_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """With one task, the comparison report's pooled difference is the per-task one of eval compare."""
    root = tmp_path / "cmp"
    member = _make_run(root / "genius", {"arith": (_answers(1, 60, 0.3), _answers(2, 60, 0.55))})
    write_yaml(root / "config.yaml", {"compare": {"genius": {}}})
    text = build_comparison_report(root, [member])
    assert main(["eval", "compare", str(member / "eval" / "base"), str(member / "round1" / "eval")]) == 0
    assert _report_cells(text, "genius") == _compare_rows(capsys.readouterr().out)["arith"]


def test_paired_difference_is_the_bootstrap_with_the_one_seed_and_count():
    a, b = _answers(5, 50, 0.4), _answers(6, 50, 0.6)
    ids = sorted(a)
    expected = paired_bootstrap([float(a[i]) for i in ids], [float(b[i]) for i in ids],
                                rng=random.Random(SEED), resamples=RESAMPLES)
    pr = paired_difference(a, b)
    assert RESAMPLES == 10_000
    assert (pr.diff, pr.low, pr.high) == expected
    # the file order of the items does not matter
    assert paired_difference(dict(reversed(list(a.items()))), b) == pr


def test_compare_runs_skips_unfinished_tasks_and_refuses_empty_folders(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    _eval(a, "t", {"x": True, "y": False})
    _eval(b, "t", {"x": False, "y": False, "z": True})
    (b / "unfinished").mkdir()
    (b / "unfinished" / "samples.jsonl").write_text('{"id": "x", "correct": true}\n')
    rows = compare_runs(a, b)
    assert list(rows) == ["t"]
    assert (rows["t"].n, rows["t"].only_a, rows["t"].only_b, rows["t"].acc_a) == (2, 1, 0, 0.5)
    assert set(load_eval_dir(b)) == {"t"}
    from genius.errors import UserError

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no finished task"):
        compare_runs(a, tmp_path / "empty")
    with pytest.raises(UserError, match="no such run folder"):
        compare_runs(a, tmp_path / "missing")
