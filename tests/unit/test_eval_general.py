"""MMLU and MMLU-Pro: the three MMLU file forms (official header-less CSV with letters, the
re-serialized copy, the hub's parquet/JSON layout), MMLU-Pro's ten options, choice extraction up
to J, and metrics per subject through run_eval (by hand on a scripted engine)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from genius.engines.base import Completion, SamplingParams
from genius.errors import UserError
from genius.evaluation import EvalConfig, run_eval
from genius.evaluation.extract import extract_choice
from genius.evaluation.prompts import build_messages, get_preset
from genius.evaluation.tasks import get_task
from genius.evaluation.tasks.mmlu import _hub_mmlu
from genius.tiny import byte_tokenizer

ROWS = {  # subject -> (question, 4 options, answer letter)
    "abstract_algebra": [("Find the order of Z_4.", ["1", "2", "4", "8"], "C"),
                         ("Is Z_2 a field?", ["Yes", "No", "Only mod 4", "Never"], "A")],
    "anatomy": [("Which bone is in the leg?", ["Femur", "Ulna", "Radius", "Humerus"], "A"),
                ("Hearts have how many chambers?", ["1", "2, or 3", "4", "6"], "C"),
                ("Lungs, are they paired?", ["No", "Yes", "Once", "Twice"], "B")],
}


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def _official(root: Path) -> Path:
    """data/test/<subject>_test.csv: no header, answer as a letter (commas inside quoted options)."""
    for subject, rows in ROWS.items():
        _write_csv(root / "data" / "test" / f"{subject}_test.csv", [[q, *opts, a] for q, opts, a in rows])
    return root


def _hub_rows() -> list[dict]:
    return [{"question": q, "subject": s, "choices": opts, "answer": "ABCD".index(a)}
            for s, rows in ROWS.items() for q, opts, a in rows]


def _expected() -> list[tuple[str, str, str]]:
    return [(f"{s}-{k}", a, s) for s, rows in ROWS.items() for k, (_, _, a) in enumerate(rows)]


def _seen(items) -> list[tuple[str, str, str]]:
    return [(it.id, it.gold, it.meta["subject"]) for it in items]


def test_mmlu_official_csv_folder_and_one_file_read_every_subject(tmp_path: Path) -> None:
    root = _official(tmp_path / "mmlu")
    task = get_task("mmlu")
    assert _seen(task.load(root)) == _expected()  # the folder: data/test found by its pattern
    # one official file names its siblings, the other subjects
    assert _seen(task.load(root / "data" / "test" / "anatomy_test.csv")) == _expected()
    item = task.load(root)[3]
    assert item.labels == ("A", "B", "C", "D") and "B. 2, or 3" in item.question  # the quoted comma kept


def test_mmlu_reserialized_copy_with_a_header_and_index_answers(tmp_path: Path) -> None:
    rows = [["question", "choice0", "choice1", "choice2", "choice3", "answer", "subject"]]
    rows += [[q, *opts, str("ABCD".index(a)), s] for s, sub in ROWS.items() for q, opts, a in sub]
    path = _write_csv(tmp_path / "mmlu" / "mmlu_test.dev.csv", rows)
    assert _seen(get_task("mmlu").load(path.parent)) == _expected()


def test_mmlu_hub_layout_as_parquet_and_json_and_from_the_hub_share_ids(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(_hub_rows()), tmp_path / "test-00000-of-00001.parquet")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "test.json").write_text(json.dumps(_hub_rows()))
    task = get_task("mmlu")
    assert _seen(task.load(tmp_path / "test-00000-of-00001.parquet")) == _expected()
    assert _seen(task.load(tmp_path / "j")) == _expected()
    # what the hub's rows give (ids counted within a subject, as the official files number rows)
    assert _seen(_hub_mmlu(_hub_rows())) == _expected()


def test_mmlu_bad_rows_name_the_file_and_line(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "data" / "test" / "x_test.csv", [["q", "a", "b", "c", "d", "A"], ["q", "a", "b", "E"]])
    with pytest.raises(UserError, match=r"x_test\.csv:2: expected question, 4 options and the answer, got 4"):
        get_task("mmlu").load(path)
    _write_csv(path, [["q", "a", "b", "c", "d", "E"]])
    with pytest.raises(UserError, match=r"x_test\.csv:1.*answer 'E' is not one of the option letters ABCD"):
        get_task("mmlu").load(path)
    rows = [{"question": "q", "choices": ["a", "b"]}]
    (tmp_path / "bad.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match="answer.* missing"):
        get_task("mmlu").load(tmp_path / "bad.json")


def _pro_rows() -> list[dict]:
    options = [f"option {k}" for k in range(10)]
    return [{"question_id": 70, "question": "Which is last?", "options": options, "answer": "J", "answer_index": 9,
             "category": "math"},
            {"question_id": 71, "question": "Padded?", "options": ["x", "y", "z", "N/A", "N/A"], "answer": "B",
             "category": "law"}]


def test_mmlu_pro_ten_options_and_padding_dropped(tmp_path: Path) -> None:
    path = tmp_path / "mmlu_pro" / "test.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in _pro_rows()))
    first, second = get_task("mmlu_pro").load(path.parent)
    assert (first.id, first.gold, first.labels, first.meta["subject"]) == \
        ("mmlu_pro-70", "J", tuple("ABCDEFGHIJ"), "math")
    assert "J. option 9" in first.question
    assert second.labels == ("A", "B", "C") and "N/A" not in second.question
    # the prompt asks for one of the ten labels, and the extraction reads any of them
    [*_, user] = build_messages(get_task("mmlu_pro"), first, get_preset("paper"))
    assert user["content"].endswith("(A, B, C, D, E, F, G, H, I or J).")
    assert extract_choice("Step by step... The answer is: J", first.labels) == "J"
    assert extract_choice("I pick (I) here.", first.labels) == "I"
    assert extract_choice("The answer is: J", second.labels) is None  # not an option of this item


class AlwaysA:
    """Answers every question "The answer is: A"."""

    def __init__(self):
        self.tokenizer = byte_tokenizer()
        self.max_context = 100_000

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        return [[Completion(text="Thinking. The answer is: A", token_ids=[1, 2, 3], logprobs=[0.0] * 3,
                            finish_reason="eos")] * params.n for _ in prompts]


def test_metrics_per_subject_through_run_eval(tmp_path: Path) -> None:
    _official(tmp_path / "data" / "mmlu")
    cfg = EvalConfig(model="scripted", tasks=["mmlu"], data_dir=tmp_path / "data", preset="zero-shot")
    m = run_eval(cfg, tmp_path / "out", engine=AlwaysA())["mmlu"]
    # A is right for algebra Q2 and anatomy Q1 only: 1 of 2 and 1 of 3.
    assert m["accuracy"] == pytest.approx(2 / 5) and m["n_correct"] == 2
    groups = m["groups"]
    assert groups["by"] == "subject" and groups["n_groups"] == 2
    assert groups["per_group"] == {"abstract_algebra": {"n": 2, "accuracy": 0.5, "n_correct": 1},
                                   "anatomy": {"n": 3, "accuracy": pytest.approx(1 / 3), "n_correct": 1}}
    assert groups["mean_over_groups"] == pytest.approx((0.5 + 1 / 3) / 2)
    saved = json.loads((tmp_path / "out" / "mmlu" / "metrics.json").read_text())
    assert saved["groups"]["per_group"]["anatomy"]["n"] == 3
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| mmlu | 5 | 40.0 |" in table
    assert "| mmlu | subject | 2 | 41.7 | anatomy 33.3 (3) | abstract_algebra 50.0 (2) |" in table


def test_the_development_slice_reads_as_57_subjects(shared_data: Path) -> None:
    items = get_task("mmlu").load(shared_data / "bench" / "mmlu")
    assert len(items) == 285 and len({it.meta["subject"] for it in items}) == 57
    assert items[0].id == "abstract_algebra-0" and items[0].gold == "B"  # answer index 1 in the copy
