"""LiveCodeBench: release tags and date windows, the hub layout read without unpickling, the
prompt and extraction of LiveCodeBench's runner, its checker's comparisons by hand, and the
harness in the sandbox on four problems written in the hub's layout (tests/conftest.py)."""

from __future__ import annotations

import base64
import json
import pickle
import sys
import zlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from genius.cli import main
from genius.engines.base import Completion, SamplingParams
from genius.errors import UserError
from genius.evaluation import EvalConfig, run_eval
from genius.evaluation.prompts import build_messages, get_preset
from genius.evaluation.tasks import Item, get_task, livecodebench
from genius.evaluation.tasks.livecodebench import (check, decode_tests, extract_last_block, parse_dates, pickled_text,
                                                   question, release_files)
from genius.evaluation.tasks.livecodebench_harness import call_arguments, same_output, same_result
from genius.io import read_jsonl
from genius.tiny import byte_tokenizer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's limits are Linux ones")
RIGHT = {  # a passing program per problem of the fixture
    "abc001_a": "a, b = map(int, input().split())\nprint(a + b)",
    "2824": ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
             "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
             "                return [seen[target - x], i]\n            seen[x] = i"),
    "abc002_b": "n = int(input())\nprint(n / 2)",
    # Counter without an import: LiveCodeBench puts its imports before the code
    "2900": "class Solution:\n    def distinct(self, nums):\n        return len(Counter(nums))",
}
PRESENT = ["test.jsonl", "test2.jsonl", "test3.jsonl", "README.md", "test10.jsonl"]


def test_release_tags_name_the_files_of_the_release() -> None:
    assert release_files("release_latest", PRESENT) == ["test.jsonl", "test2.jsonl", "test3.jsonl", "test10.jsonl"]
    assert release_files("release_v2", PRESENT) == ["test.jsonl", "test2.jsonl"]
    assert release_files("release_v1", ()) == ["test.jsonl"]
    assert release_files("v3", ()) == ["test3.jsonl"]
    assert release_files("v1_v3", ()) == ["test.jsonl", "test2.jsonl", "test3.jsonl"]
    for bad in ("latest", "release_v0", "v3_v1", "v2-v3"):
        with pytest.raises(UserError, match="livecodebench_release"):
            release_files(bad, PRESENT)


def test_date_windows() -> None:
    assert parse_dates(None) == (None, None)
    assert parse_dates("2024-08-01..2025-02-01") == (datetime(2024, 8, 1), datetime(2025, 2, 1))
    assert parse_dates("2024-08-01..") == (datetime(2024, 8, 1), None)
    assert parse_dates("..2024-01-31") == (None, datetime(2024, 1, 31))
    for bad in ("2024-08-01", "..", "2024-13-01..", "2025-01-01..2024-01-01", "yesterday..today"):
        with pytest.raises(UserError, match="livecodebench_dates"):
            parse_dates(bad)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_private_tests_are_read_without_unpickling(capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps([{"input": "1\n", "output": "2\n", "testtype": "stdin"}])
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickled_text(pickle.dumps(text, protocol=protocol)) == text
    packed = base64.b64encode(zlib.compress(pickle.dumps(text))).decode()
    assert decode_tests(packed) == decode_tests(text) == [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    with pytest.raises(UserError, match="expected a pickled string only; not unpickled"):
        decode_tests(base64.b64encode(zlib.compress(pickle.dumps(_Evil()))).decode())
    with pytest.raises(UserError, match="holding 2 strings"):
        pickled_text(b"\x80\x04X\x01\x00\x00\x00aX\x01\x00\x00\x00b.")  # two strings pushed, no call
    assert "unpickled!" not in capsys.readouterr().out
    with pytest.raises(UserError, match="neither JSON nor base64"):
        decode_tests("not a test field")
    with pytest.raises(UserError, match="a list of tests"):
        decode_tests(json.dumps([{"input": 1}]))


def test_question_template_and_extraction_are_the_runners() -> None:
    assert question("Add.", "") == (
        "### Question:\nAdd.\n\n### Format: Read the inputs from stdin solve the problem and write the answer to "
        "stdout (do not directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure "
        "that when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
        "```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n")
    assert question("Sum.", "class Solution:\n    def f(self):") == (
        "### Question:\nSum.\n\n### Format: You will use the following starter code to write the solution to the "
        "problem and enclose your code within delimiters.\n```python\nclass Solution:\n    def f(self):\n```\n\n"
        "### Answer: (use the provided format with backticks)\n\n")
    # The last fenced block, whatever its language tag; nothing without two fence lines.
    assert extract_last_block("```python\nfirst\n```\ntext\n```\nx = 1\ny = 2\n```") == "x = 1\ny = 2"
    assert extract_last_block("print(1)") is None and extract_last_block("```python\nprint(1)") is None


def test_the_checkers_comparisons_by_hand() -> None:
    assert same_output("3\n", "3") and same_output("  1 2  \n3\n\n", "1 2\n3")
    assert same_output("0.5\n", "0.50") and same_output("1e1", "10")  # equal as decimals
    assert not same_output("0.5000001", "0.5") and not same_output("1 2", "1 2 3")
    assert not same_output("1\n2", "1") and not same_output("yes", "Yes")
    assert call_arguments('[2,7,11,15]\n9') == [[2, 7, 11, 15], 9] and call_arguments('"ab"') == ["ab"]
    assert same_result((0, 1), [0, 1]) and not same_result([1, 0], [0, 1]) and same_result(3, 3)


def test_reading_the_hub_layout_by_release_and_date(livecodebench_data: Path) -> None:
    task = get_task("livecodebench")
    folder = livecodebench_data / "livecodebench"
    items = task.load(folder)
    assert [it.id for it in items] == ["abc001_a", "2824", "abc002_b", "2900"]
    assert items[1].meta["func_name"] == "twoSum" and items[0].meta["func_name"] is None
    assert items[1].meta["public_tests"] == 1 and items[3].meta["difficulty"] == "hard"
    assert "class Solution:\n    def twoSum" in items[1].question
    only = lambda **o: [it.id for it in task.load(folder, options=o)]  # noqa: E731
    assert only(livecodebench_release="release_v1") == ["abc001_a", "2824", "abc002_b"]
    assert only(livecodebench_release="v2") == ["2900"]
    assert only(livecodebench_dates="2023-06-01..2024-03-02") == ["2824", "abc002_b"]  # both ends inclusive
    assert only(livecodebench_release="release_v1", livecodebench_dates="2024-01-01..") == ["abc002_b"]
    with pytest.raises(UserError, match=r"release release_v3 needs test3.jsonl, not there \(found test.jsonl, "
                                        r"test2.jsonl\)"):
        task.load(folder, options={"livecodebench_release": "release_v3"})
    # the private tests are read again from the row when scoring, never kept in the item
    tests = livecodebench.tests_of(items[0])
    assert [t["input"] for t in tests] == ["1 2\n", "10 20\n", "-5 5\n"] and "tests" not in items[0].meta


def test_a_bad_row_is_one_line_naming_file_line_and_field(livecodebench_data: Path) -> None:
    path = livecodebench_data / "livecodebench" / "test2.jsonl"
    row = json.loads(path.read_text())
    del row["contest_date"]
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    with pytest.raises(UserError, match=r"test2.jsonl:2: field 'contest_date': missing"):
        get_task("livecodebench").load(path.parent)


def test_the_system_message_is_livecodebenchs() -> None:
    messages = build_messages(get_task("livecodebench"), Item(id="q", question="Q", gold=""), get_preset("paper"))
    assert messages == [{"role": "system", "content": livecodebench.SYSTEM}, {"role": "user", "content": "Q"}]


@linux_only
def test_the_harness_passes_right_programs_and_fails_wrong_ones(livecodebench_data: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    items = {it.id: it for it in get_task("livecodebench").load(livecodebench_data / "livecodebench")}
    for qid, code in RIGHT.items():
        assert check(code, items[qid]), qid
    wrong = {
        "abc001_a": "a, b = map(int, input().split())\nprint(a + b if a < 10 else 0)",  # fails a private test only
        "2824": "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]",  # right on the public
        "abc002_b": "n = int(input())\nprint(n // 2)",
        "2900": "class Solution:\n    def other(self, nums):\n        return 1",  # no such method
    }
    for qid, code in wrong.items():
        assert not check(code, items[qid]), qid
    assert check("import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(3)", items["abc001_a"])
    # the expected outputs are out of the code's reach: not beside a stdin program, deleted for a functional one
    assert not check("print(open('tests.json').read())", items["abc001_a"])
    peek = "class Solution:\n    def twoSum(self, nums, target):\n        return json.load(open('tests.json'))"
    assert not check(peek, items["2824"])
    # a functional solution that exits the checker fails, and the evaluation goes on
    exits = "import os\nclass Solution:\n    def twoSum(self, nums, target):\n        os._exit(3)"
    assert not check(exits, items["2824"])
    # output without a final newline does not hide the marker printed after the tests
    chatty = RIGHT["2824"].replace("seen = {}", "seen = {}; sys.stdout.write('dbg')")
    assert check(chatty, items["2824"])
    assert not check("import sys\nsys.exit(0)", items["abc001_a"])  # prints nothing: wrong answer
    assert not check("raise ValueError", items["abc001_a"]) and not check(None, items["abc001_a"])
    monkeypatch.setattr(livecodebench, "PER_TEST_S", 1)
    assert not check("while True:\n    pass", items["abc001_a"])  # time limit per test
    assert not check("class Solution:\n    def twoSum(self, nums, target):\n        while True:\n            pass",
                     items["2824"])


class _Scripted:
    """Answers each LiveCodeBench prompt with a right program, except for abc002_b."""

    def __init__(self) -> None:
        self.tokenizer = byte_tokenizer()
        self.max_context = 100_000

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for p in prompts:
            text = self.tokenizer.decode(list(p))
            qid = next(q for q, c in _CONTENT.items() if c in text)
            code = RIGHT[qid] if qid != "abc002_b" else "print(0)"
            out.append([Completion(text=f"Here it is:\n```python\n{code}\n```", token_ids=[1] * 4, logprobs=[0.0] * 4,
                                   finish_reason="eos")])
        return out


_CONTENT = {"abc001_a": "print A + B", "2824": "add up to target", "abc002_b": "N / 2", "2900": "distinct values"}


@linux_only
def test_pass_at_1_per_difficulty_through_run_eval(livecodebench_data: Path, tmp_path: Path) -> None:
    cfg = EvalConfig(model="scripted", tasks=["livecodebench"], data_dir=livecodebench_data, allow_code_execution=True)
    m = run_eval(cfg, tmp_path / "o", engine=_Scripted())["livecodebench"]
    assert (m["metric"], m["n"], m["n_correct"], m["pass@1"]) == ("pass@1", 4, 3, 0.75)
    assert m["groups"]["by"] == "difficulty"
    records = read_jsonl(tmp_path / "o" / "livecodebench" / "samples.jsonl")
    assert [r["correct"] for r in records] == [True, True, False, True]
    assert all(len(json.dumps(r)) < 4000 for r in records)  # the tests stay in the data file


def test_bad_release_or_dates_are_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for flag, value in (("--livecodebench-release", "v0"), ("--livecodebench-dates", "2024-08-01")):
        assert main(["eval", "--tasks", "livecodebench", "--allow-code-execution", flag, value, "--out",
                     str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert flag[2:].replace("-", "_") in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_the_hub_copy_is_downloaded_as_files_and_read_like_a_folder(livecodebench_data: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Online, the release's files come from huggingface_hub (here a stand-in serving the
    fixture folder as the hub's snapshot) and no loading script runs."""
    import huggingface_hub

    from genius import models

    snapshot = livecodebench_data / "livecodebench"
    asked: list[str] = []

    def download(repo_id: str, filename: str, repo_type: str) -> str:
        assert (repo_id, repo_type) == ("livecodebench/code_generation_lite", "dataset")
        asked.append(filename)
        return str(snapshot / filename)

    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files",
                        lambda self, repo_id, repo_type: ["README.md", "code_generation_lite.py", "test.jsonl",
                                                          "test2.jsonl"])
    task = get_task("livecodebench")
    assert [it.id for it in task.load(None, options={"livecodebench_release": "v2"})] == ["2900"]
    assert asked == ["test2.jsonl"]
    assert len(task.load(None)) == 4 and asked[1:] == ["test.jsonl", "test2.jsonl"]
