"""Task readers on small fixtures in each official format (with their quirks), bad input, the
registry, and the real development slices when ../shared/data is present."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from genius.errors import UserError
from genius.evaluation.tasks import Item, Task, get_task, list_tasks, register_task
from genius.evaluation.tasks.base import _REGISTRY


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gsm8k_gold_after_hashes_and_folder_lookup(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", [
        {"question": "q1", "answer": "1,000 + 234 = 1,234\n#### 1,234"},
        {"question": "q2", "answer": "#### -5"},
    ])
    items = get_task("gsm8k").load(tmp_path / "gsm8k")
    assert [(i.id, i.gold) for i in items] == [("gsm8k-0", "1234"), ("gsm8k-1", "-5")]
    assert len(get_task("gsm8k").load(tmp_path / "gsm8k", limit=1)) == 1


def test_gsm8k_missing_gold_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "q", "answer": "#### 1"}, {"question": "q", "answer": "5"}])
    with pytest.raises(UserError, match=r"t\.jsonl:2: field 'answer'"):
        get_task("gsm8k").load(path)


def test_missing_folder_and_file_name_the_expected_path_and_format(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"nowhere not found: expected a folder holding test\.jsonl.*'question'"):
        get_task("gsm8k").load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"no data file in .*empty: expected .*\.jsonl"):
        get_task("gsm8k").load(tmp_path / "empty")


def test_math_jsonl_and_original_folder_layout(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "answer": "\\frac{1}{2}", "unique_id": "test/algebra/1.json"}])
    [item] = get_task("math500").load(tmp_path / "m.jsonl")
    assert (item.id, item.gold) == ("test/algebra/1.json", "\\frac{1}{2}")
    # The original release: no answer field, the gold answer is the last box of the solution.
    folder = tmp_path / "math" / "test" / "algebra"
    folder.mkdir(parents=True)
    (folder / "7.json").write_text(json.dumps({"problem": "p", "level": "Level 2", "type": "Algebra",
                                               "solution": "so $x=\\boxed{\\frac{3}{4}}$."}))
    [item] = get_task("math").load(tmp_path / "math")
    assert (item.id, item.gold, item.meta["level"]) == ("test/algebra/7.json", "\\frac{3}{4}", "Level 2")


def test_arc_numeric_labels_and_three_or_five_options(tmp_path: Path) -> None:
    def row(i: int, labels: list[str], key: str) -> dict:
        return {"id": f"q{i}", "question": {"stem": "Which?", "choices": [{"text": f"opt{l}", "label": l} for l in labels]},
                "answerKey": key}

    write_jsonl(tmp_path / "arc.jsonl", [row(0, ["1", "2", "3", "4"], "2"), row(1, ["A", "B", "C"], "C"),
                                         row(2, list("ABCDE"), "E")])
    items = get_task("arc_challenge").load(tmp_path / "arc.jsonl")
    assert [(i.labels, i.gold) for i in items] == [(("1", "2", "3", "4"), "2"), (("A", "B", "C"), "C"),
                                                   (tuple("ABCDE"), "E")]
    assert "1. opt1\n2. opt2" in items[0].question
    bad = write_jsonl(tmp_path / "bad.jsonl", [row(0, ["A", "B"], "C")])
    with pytest.raises(UserError, match="answerKey"):
        get_task("arc_challenge").load(bad)


def test_strategyqa_never_shows_the_rationale(tmp_path: Path) -> None:
    doc = {"examples": [
        {"input": "Is ice cold?", "target_scores": {"Yes": 1, "No": 0}, "target": "Yes. SECRET RATIONALE"},
        {"input": "Can fish fly?", "target_scores": {"Yes": 0, "No": 1}, "target": "No. SECRET RATIONALE"},
    ]}
    (tmp_path / "task.json").write_text(json.dumps(doc))
    items = get_task("strategyqa").load(tmp_path)
    assert [i.gold for i in items] == ["Yes", "No"]
    assert all("SECRET" not in i.question and "SECRET" not in str(i.meta) for i in items)


def test_logiqa_blocks_by_position_with_noisy_option_prefixes(tmp_path: Path) -> None:
    block = ["", "c", "Some context.", "Which follows?", "A.first", "B. second", "C．third", "noisy D line"]
    (tmp_path / "Test.txt").write_text("\n".join(block + block) + "\n")
    items = get_task("logiqa").load(tmp_path)
    assert len(items) == 2 and items[0].gold == "C"
    assert items[0].question.endswith("A. first\nB. second\nC. third\nD. noisy D line")
    (tmp_path / "Test.txt").write_text("\n".join(block[:6]) + "\n")
    with pytest.raises(UserError, match="has 6 of 8 lines"):
        get_task("logiqa").load(tmp_path)


def test_reclor_label_to_letter_and_bad_label(tmp_path: Path) -> None:
    rows = [{"context": "c", "question": "q", "answers": ["a", "b", "c", "d"], "label": 3, "id_string": "val_0"}]
    (tmp_path / "val.json").write_text(json.dumps(rows))
    [item] = get_task("reclor").load(tmp_path)
    assert (item.id, item.gold) == ("val_0", "D")
    rows[0]["label"] = 7
    (tmp_path / "val.json").write_text(json.dumps(rows))
    with pytest.raises(UserError, match="label 0-3"):
        get_task("reclor").load(tmp_path)


def test_aime_answer_kept_as_written() -> None:
    task = get_task("aime24")
    item = Item(id="x", question="q", gold="025")
    assert task.check(task.extract("so \\boxed{25}", item), item)


def _gpqa_csv(path: Path, n: int) -> Path:
    header = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3",
              "Record ID", "High-level domain", "Canary String"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(n):
            w.writerow([f"Q{i}?", f"right{i}", f"wrong{i}a", f"wrong{i}b", f"wrong{i}c", f"rec{i}", "Physics", ""])
    return path


def test_gpqa_shuffle_is_fixed_and_gold_follows_the_correct_answer(tmp_path: Path) -> None:
    path = _gpqa_csv(tmp_path / "gpqa_diamond.csv", 12)
    first = get_task("gpqa_diamond").load(tmp_path)
    again = get_task("gpqa_diamond").load(tmp_path)
    assert first == again
    for item in first:
        gold_line = next(line for line in item.question.splitlines() if line.startswith(item.gold + ". "))
        assert gold_line.startswith(f"{item.gold}. right")
    # Shuffled, not always in first place: 12 items all with gold "A" has probability 4^-12.
    assert len({i.gold for i in first}) > 1
    assert path.exists()


def test_gpqa_missing_column(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("Question,Correct Answer\nq,a\n")
    with pytest.raises(UserError, match="missing column.*Incorrect Answer 1"):
        get_task("gpqa_main").load(tmp_path)


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(UserError,
                       match="unknown task 'nope': known tasks are aime24, alpaca_eval, arc_challenge, .*gsm8k"):
        get_task("nope")


def test_register_a_generated_task() -> None:
    task = Task(name="_gen_test", answer_type="number", description="test",
                generate=lambda n, seed: [Item(id=f"g{seed}-{i}", question=f"{i}+1?", gold=str(i + 1)) for i in range(n)])
    try:
        register_task(task)
        assert "_gen_test" in list_tasks()
        items = get_task("_gen_test").load(None, limit=3, seed=7)
        assert [i.id for i in items] == ["g7-0", "g7-1", "g7-2"]
        with pytest.raises(ValueError):
            register_task(Task(name="_gen_test", answer_type="number", description="other", generate=task.generate))
    finally:
        _REGISTRY.pop("_gen_test", None)


def test_synthetic_task_is_registered_and_checks_answers() -> None:
    task = get_task("synthetic")
    items = task.load(None, limit=4, seed=1)
    assert len(items) == 4 and items == task.load(None, limit=4, seed=1)
    item = items[0]
    assert task.check(task.extract(f"The answer is: {item.gold}", item), item)
    assert not task.check(task.extract("The answer is: nothing", item), item)


def test_offline_without_data_dir_says_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="pass --data-dir.*gsm8k/test.jsonl"):
        get_task("gsm8k").load(None)


SLICE_COUNTS = {"gsm8k": 100, "math500": 100, "arc_challenge": 102, "strategyqa": 100, "logiqa": 100,
                "reclor": 100, "aime24": 10, "gpqa_diamond": 3}


@pytest.mark.parametrize("name", sorted(SLICE_COUNTS))
def test_real_development_slices(shared_data: Path, name: str) -> None:
    task = get_task(name)
    items = task.load(shared_data / "bench" / task.data_folder)
    assert len(items) == SLICE_COUNTS[name]
    assert len({i.id for i in items}) == len(items)
    for item in items:
        if task.answer_type == "choice":
            assert item.gold in item.labels
        assert item.question.strip() and item.gold.strip()


def test_hub_rows_convert_like_the_files() -> None:
    # Row layouts of the hub copies, which differ from the official files.
    arc = get_task("arc_challenge").hub.to_item(
        {"id": "x", "question": "Which?", "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]},
         "answerKey": "3"}, 0)
    assert (arc.labels, arc.gold) == (("1", "2", "3"), "3")
    sqa = get_task("strategyqa").hub.to_item(
        {"inputs": "Q: Is ice cold?\nA:", "multiple_choice_targets": ["Yes", "No"], "multiple_choice_scores": [1, 0],
         "targets": ["Yes. because rationale"]}, 4)
    assert (sqa.id, sqa.question, sqa.gold) == ("strategyqa-4", "Is ice cold?", "Yes")
    logiqa = get_task("logiqa").hub.to_item(
        {"context": "c", "query": "q", "options": ["w", "x", "y", "z"], "correct_option": 2}, 1)
    assert logiqa.gold == "C" and logiqa.question.endswith("C. y\nD. z")
