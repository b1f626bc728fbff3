"""MBPP and HumanEval: program extraction and assembly by hand, the readers on small fixtures,
the refusal without --allow-code-execution, pass@1 / pass@k through run_eval, and the real
development slices' canonical solutions passing in the sandbox (wrong ones failing)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from genius.cli import main
from genius.config import from_dict
from genius.engines.base import Completion, SamplingParams
from genius.errors import UserError
from genius.evaluation import EvalConfig, run_eval
from genius.evaluation.extract import extract_code
from genius.evaluation.prompts import build_messages, get_preset
from genius.evaluation.sandbox import Limits, run_program
from genius.evaluation.stats import pass_at_k
from genius.evaluation.tasks import get_task
from genius.evaluation.tasks.code import humaneval_program, mbpp_program
from genius.tiny import byte_tokenizer

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's limits are Linux ones")


def test_extract_code_fences_markers_and_bare_code() -> None:
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1"
    # a block in another language is skipped; its closing fence does not open the next block
    assert extract_code("```text\nout\n```\nthen\n```py\nx = 2\n```") == "x = 2"
    assert extract_code("[BEGIN]\ndef g(a):\n    return a\n[DONE]\nmore") == "def g(a):\n    return a"
    assert extract_code("```python\n    return 3\n") == "    return 3"  # unclosed, indentation kept
    assert extract_code("import math\nprint(math.pi)") == "import math\nprint(math.pi)"
    assert extract_code("I cannot write that function.") is None


def _mbpp(task_id: int, text: str, code: str, tests: list[str], setup: str = "") -> dict:
    return {"text": text, "code": code.replace("\n", "\r\n"), "task_id": task_id, "test_setup_code": setup,
            "test_list": tests, "challenge_test_list": []}


SHOTS = [_mbpp(i, f"Write a function shot{i}.", f"def shot{i}():\n    return {i}", [f"assert shot{i}() == {i}"])
         for i in (1, 2, 3, 4)]
TESTS = [_mbpp(11, "Write a function to add two numbers.", "def add(a, b):\n    return a + b",
               ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]),
         _mbpp(12, "Write a function to square a number with math.", "def square(x):\n    return math.pow(x, 2)",
               ["assert square(3) == 9"], setup="import math")]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mbpp_three_shot_prompt_and_program(tmp_path: Path) -> None:
    items = get_task("mbpp").load(_jsonl(tmp_path / "mbpp" / "mbpp.jsonl", SHOTS + TESTS).parent)
    assert [it.id for it in items] == ["mbpp-11", "mbpp-12"]  # the prompt split is not tested
    q = items[0].question
    assert q.count("[BEGIN]") == 3 and "shot1" not in q  # tasks 2, 3 and 4, as the MBPP paper
    assert q.index("shot2") < q.index("shot3") < q.index("shot4") < q.index("add two numbers")
    assert "[BEGIN]\ndef shot2():\n    return 2\n[DONE]" in q and "\r" not in q
    assert q.endswith("Your code should pass these tests:\n\nassert add(1, 2) == 3\nassert add(-1, 1) == 0\n")
    program = mbpp_program("def square(x):\n    return x * x", items[1])
    assert program.startswith("import math\n") and program.rstrip().endswith("assert square(3) == 9")
    # no answer instruction: the prompt says how to answer
    messages = build_messages(get_task("mbpp"), items[0], get_preset("paper"))
    assert messages[-1]["content"] == q


@linux_only
def test_a_program_that_exits_before_its_tests_has_not_passed(tmp_path: Path) -> None:
    task = get_task("mbpp")
    add = task.load(_jsonl(tmp_path / "mbpp" / "mbpp.jsonl", SHOTS + TESTS).parent)[0]
    assert task.check("def add(a, b):\n    return a + b", add)
    # exit 0 before the asserts ran: without the marker printed after the tests this would pass
    for early in ("import sys\ndef add(a, b):\n    return a - b\nsys.exit(0)", "import os\nos._exit(0)"):
        assert run_program(mbpp_program(early, add), Limits(timeout_s=5)).status == "passed"
        assert not task.check(early, add)


def test_mbpp_test_split_file_takes_the_prompt_split_beside_it(tmp_path: Path) -> None:
    _jsonl(tmp_path / "mbpp.dev.jsonl", TESTS)
    with pytest.raises(UserError, match=r"prompt split .* neither in this file nor beside it"):
        get_task("mbpp").load(tmp_path)
    _jsonl(tmp_path / "mbpp.prompt.jsonl", SHOTS[:2])
    with pytest.raises(UserError, match=r"task_id\(s\) \[3, 4\] missing"):
        get_task("mbpp").load(tmp_path)
    _jsonl(tmp_path / "mbpp.prompt.jsonl", SHOTS)
    assert [it.id for it in get_task("mbpp").load(tmp_path)] == ["mbpp-11", "mbpp-12"]


HUMANEVAL = {"task_id": "HumanEval/7", "entry_point": "double",
             "prompt": "import math\n\n\ndef helper(x):\n    return x\n\n\ndef double(x: int) -> int:\n"
                       "    \"\"\" Twice x.\n    >>> double(2)\n    4\n    \"\"\"\n",
             "test": "\n\ndef check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"}


def test_humaneval_program_from_a_whole_function_or_a_body(tmp_path: Path) -> None:
    [item] = get_task("humaneval").load(_jsonl(tmp_path / "HumanEval.jsonl", [HUMANEVAL]))
    assert item.id == "HumanEval/7" and "```python\nimport math" in item.question
    whole = humaneval_program("def double(x):\n    return helper(2 * x)", item)
    assert whole.startswith("import math\n\n\ndef helper(x):")  # the prompt's helpers are kept
    assert "def double(x: int)" not in whole and whole.rstrip().endswith("check(double)")
    body = humaneval_program("    return 2 * x", item)
    assert body.startswith(HUMANEVAL["prompt"] + "    return 2 * x")
    bad = dict(HUMANEVAL, test="assert True")
    with pytest.raises(UserError, match="expected a test defining check"):
        get_task("humaneval").load(_jsonl(tmp_path / "bad.jsonl", [bad]))


class CodeEngine:
    """Writes, for each prompt, the responses ``answer(prompt text, n)`` gives; counts calls."""

    def __init__(self, answer: Callable[[str, int], list[str]]):
        self.tokenizer = byte_tokenizer()
        self.max_context = 100_000
        self.answer = answer
        self.calls = 0

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        self.calls += 1
        return [[Completion(text=t, token_ids=[1] * 5, logprobs=[0.0] * 5, finish_reason="eos")
                 for t in self.answer(self.tokenizer.decode(list(p)), params.n)] for p in prompts]


def _adds_right(prompt: str, n: int) -> list[str]:
    """add: right; square: wrong. With n > 1: add right once of n, square never."""
    if "add two numbers" in prompt.rsplit("[DONE]", 1)[-1]:
        right = "```python\ndef add(a, b):\n    return a + b\n```"
        return [right] + ["```python\ndef add(a, b):\n    return a - b\n```"] * (n - 1)
    return ["[BEGIN]\ndef square(x):\n    return x + x\n[DONE]"] * n


def test_code_tasks_are_refused_without_the_flag_before_any_generation(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _jsonl(tmp_path / "data" / "mbpp" / "mbpp.jsonl", SHOTS + TESTS)
    engine = CodeEngine(_adds_right)
    cfg = dict(model="scripted", tasks=["gsm8k", "mbpp"], data_dir=str(tmp_path / "data"))
    with pytest.raises(UserError, match="task mbpp is scored by running the model's programs; pass "
                                        "--allow-code-execution"):
        from_dict(EvalConfig, cfg)  # as `genius run` builds its eval stage: refused before any work
    with pytest.raises(UserError, match="--allow-code-execution"):
        run_eval(EvalConfig(model="scripted", tasks=["mbpp"], data_dir=tmp_path / "data"), tmp_path / "o",
                 engine=engine)
    assert engine.calls == 0 and not (tmp_path / "o").exists()
    assert main(["eval", "--tasks", "humaneval", "--out", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert "task humaneval is scored by running the model's programs" in err and len(err.strip().splitlines()) == 1
    assert from_dict(EvalConfig, {**cfg, "allow_code_execution": True}).allow_code_execution


@linux_only
def test_pass_at_1_and_pass_at_k_through_run_eval(tmp_path: Path) -> None:
    _jsonl(tmp_path / "data" / "mbpp" / "mbpp.jsonl", SHOTS + TESTS)
    cfg = dict(model="scripted", tasks=["mbpp"], data_dir=tmp_path / "data", allow_code_execution=True)
    m = run_eval(EvalConfig(**cfg), tmp_path / "one", engine=CodeEngine(_adds_right))["mbpp"]
    assert (m["metric"], m["pass@1"], m["accuracy"], m["n_correct"]) == ("pass@1", 0.5, 0.5, 1)
    assert "throw-away directory" in " ".join(m["isolation"])
    records = [json.loads(x) for x in (tmp_path / "one" / "mbpp" / "samples.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in records] == [True, False]
    assert records[1]["extracted"] == "def square(x):\n    return x + x"

    m3 = run_eval(EvalConfig(**cfg, samples=3), tmp_path / "three", engine=CodeEngine(_adds_right))["mbpp"]
    # add: 1 of 3 samples pass, square: 0 of 3 -> pass@1 = (1/3 + 0) / 2, pass@3 = (1 + 0) / 2
    assert m3["pass@1"] == pytest.approx((pass_at_k(3, 1, 1) + pass_at_k(3, 0, 1)) / 2) == pytest.approx(1 / 6)
    assert m3["pass@3"] == 0.5 and m3["accuracy"] == m3["pass@1"]
    table = (tmp_path / "three" / "results.md").read_text()
    assert "| mbpp | 2 | 16.7 |" in table and "pass@1 (mbpp)" in table


def _canonical(path: Path, key: str) -> dict[str, str]:
    return {str(r["task_id"]): r[key] for r in map(json.loads, path.read_text().splitlines())}


@linux_only
def test_canonical_solutions_of_the_dev_slices_pass_and_wrong_ones_fail(shared_data: Path) -> None:
    limits = Limits(timeout_s=10, cpu_s=10, memory_mb=1024)
    bench = shared_data / "bench"
    mbpp = get_task("mbpp").load(bench / "mbpp")
    code = _canonical(bench / "mbpp" / "mbpp.dev.jsonl", "code")
    human = get_task("humaneval").load(bench / "humaneval")
    body = _canonical(bench / "humaneval" / "HumanEval.dev.jsonl", "canonical_solution")
    assert len(mbpp) == 50 and len(human) == 20
    for it in mbpp:
        program = mbpp_program(code[str(it.meta["task_id"])].replace("\r\n", "\n"), it)
        assert run_program(program, limits).passed, it.id
    for it in human:
        assert run_program(humaneval_program(body[it.id], it), limits).passed, it.id
    # another task's solution fails the tests (a sample of each benchmark, to keep it short)
    for a, b in zip(mbpp[:5], mbpp[1:6]):
        wrong = mbpp_program(code[str(b.meta["task_id"])].replace("\r\n", "\n"), a)
        assert run_program(wrong, limits).status == "failed", a.id
    for a, b in zip(human[:5], human[1:6]):
        assert run_program(humaneval_program(body[b.id], a), limits).status == "failed", a.id
