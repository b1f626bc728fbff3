"""Code generation (paper Table 6): MBPP (Austin et al., 2021) and HumanEval (Chen et al., 2021).

A response passes when its program (answer type ``code``: genius.evaluation.extract), with the
benchmark's tests appended, exits 0 in the sandbox (genius.evaluation.sandbox); that runs
model-written code, so these tasks need ``--allow-code-execution`` (evaluation refuses them
otherwise, before generating anything). pass@1 is the accuracy; with several samples pass@k
uses the unbiased estimator.

MBPP: the test split (task_ids 11-510) with the standard 3-shot prompt of the MBPP paper
(tasks 2, 3 and 4 of the prompt split, each "[BEGIN] code [DONE]"); read from the original
``mbpp.jsonl`` (all 974 tasks: the splits are cut by task_id), or from a test-split file with the
prompt split beside it (``*prompt*.jsonl``), or the sanitized JSON (``sanitized-mbpp.json``,
``prompt``/``test_imports`` fields) with its prompt file beside it. HumanEval: ``HumanEval.jsonl``
(``task_id``, ``prompt``, ``entry_point``, ``test``); the model writes the whole function.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.sandbox import Limits, run_program
from genius.evaluation.tasks._common import field, records
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.io import iter_jsonl

MBPP_FORMAT = ("MBPP JSONL (text, code, task_id, test_setup_code, test_list) or sanitized JSON (prompt, code, "
               "task_id, test_imports, test_list), with the prompt split (task_ids 1-10) in the same folder")
HUMANEVAL_FORMAT = "HumanEval JSONL with task_id, prompt, entry_point and test (defining check(candidate))"
SHOT_IDS = (2, 3, 4)
TEST_IDS = range(11, 511)


# --- MBPP ------------------------------------------------------------------------------------

def _mbpp_problem(record: dict, path: Path | str, line: int | None) -> dict:
    """A record of either MBPP layout -> {id, text, code, tests, setup}."""
    p = Path(str(path))
    text = record.get("text", record.get("prompt"))
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where(path, line, 'text')} missing: expected {MBPP_FORMAT}")
    tests = field(record, "test_list", p, line, list, MBPP_FORMAT)
    setup = "\n".join([*record.get("test_imports", []), record.get("test_setup_code", "") or ""]).strip()
    task_id = field(record, "task_id", p, line, int, MBPP_FORMAT)
    return {"id": task_id, "text": text.strip(), "code": str(record.get("code", "")).replace("\r\n", "\n"),
            "tests": [str(t) for t in tests], "setup": setup}


def _mbpp_task_text(problem: dict) -> str:
    tests = "\n".join(problem["tests"])
    return f"You are an expert Python programmer, and here is your task: {problem['text']} " \
           f"Your code should pass these tests:\n\n{tests}\n"


def mbpp_question(problem: dict, shots: list[dict]) -> str:
    """The MBPP paper's prompt: three solved tasks, each code between [BEGIN] and [DONE], then the task."""
    solved = "".join(f"{_mbpp_task_text(s)}[BEGIN]\n{s['code'].strip()}\n[DONE]\n\n" for s in shots)
    return solved + _mbpp_task_text(problem)


def mbpp_program(code: str, item: Item) -> str:
    """What runs in the sandbox: the setup (imports), the model's code, then the test asserts."""
    return "\n".join([item.meta.get("setup", ""), code, "", item.gold, ""])


def _mbpp_items(problems: list[dict], shots: list[dict]) -> list[Item]:
    return [Item(id=f"mbpp-{p['id']}", question=mbpp_question(p, shots), gold="\n".join(p["tests"]),
                 meta={"setup": p["setup"], "task_id": p["id"]}) for p in problems]


def read_mbpp(path: Path) -> list[Item]:
    problems = [_mbpp_problem(r, path, line) for line, r in records(path, MBPP_FORMAT)]
    by_id = {p["id"]: p for p in problems}
    if not all(i in by_id for i in SHOT_IDS):  # a test-split file: the prompt split lies beside it
        beside = sorted(q for q in path.parent.glob(f"*prompt*{path.suffix}") if q != path)
        if not beside:
            raise UserError(f"{path}: the MBPP prompt split (task_ids 1-10, for the 3-shot prompt) is neither in "
                            f"this file nor beside it (expected *prompt*{path.suffix} in {path.parent})")
        by_id.update({p["id"]: p for p in (_mbpp_problem(r, beside[0], line) for line, r in records(beside[0], MBPP_FORMAT))})
        missing = [i for i in SHOT_IDS if i not in by_id]
        if missing:
            raise UserError(f"{beside[0]}: task_id(s) {missing} missing: the 3-shot prompt uses tasks 2, 3 and 4")
    shots = [by_id[i] for i in SHOT_IDS]
    tests = [p for p in problems if p["id"] in TEST_IDS]
    return _mbpp_items(tests, shots)


def _hub_mbpp(row: dict, index: int) -> Item:
    return _mbpp_items([_mbpp_problem(row, "hub", index)], _hub_mbpp_shots())[0]


@cache
def _hub_mbpp_shots() -> list[dict]:
    """Tasks 2, 3 and 4 of the hub's prompt split, loaded once."""
    from datasets import load_dataset

    rows = load_dataset("google-research-datasets/mbpp", "full", split="prompt")
    found = {r["task_id"]: _mbpp_problem(dict(r), "hub", i) for i, r in enumerate(rows)}
    return [found[i] for i in SHOT_IDS]


# --- HumanEval -------------------------------------------------------------------------------

def humaneval_question(prompt: str) -> str:
    return ("Complete the following Python function. Reply with the whole function (its imports too) in one "
            f"```python code block.\n\n```python\n{prompt.rstrip()}\n```")


def humaneval_program(code: str, item: Item) -> str:
    """The model's function (or, when it wrote only a body, the prompt with that body), then the
    benchmark's check(candidate) called on the entry point."""
    entry = item.meta["entry_point"]
    prompt = item.meta["prompt"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
        header = prompt[: prompt.find(f"def {entry}")] if f"def {entry}" in prompt else ""
        program = header + code  # keep the prompt's imports and helper functions
    else:
        program = prompt + code
    return "\n".join([program, "", item.gold, "", f"check({entry})", ""])


def _humaneval_item(record: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    p = Path(str(path))
    task_id = field(record, "task_id", p, line, fmt=HUMANEVAL_FORMAT)
    prompt = field(record, "prompt", p, line, fmt=HUMANEVAL_FORMAT)
    entry = field(record, "entry_point", p, line, fmt=HUMANEVAL_FORMAT)
    test = field(record, "test", p, line, fmt=HUMANEVAL_FORMAT)
    if "def check(" not in test:
        raise UserError(f"{where(path, line, 'test')} expected a test defining check(candidate)")
    return Item(id=task_id, question=humaneval_question(prompt), gold=test, meta={"prompt": prompt, "entry_point": entry})


def read_humaneval(path: Path) -> list[Item]:
    return [_humaneval_item(r, i, path, line) for i, (line, r) in enumerate(iter_jsonl(path))]


# --- scoring ---------------------------------------------------------------------------------

def passes(source: str, item: Item, limits: Limits = Limits(),
           files: Mapping[str, str | bytes] | None = None) -> bool:
    """Whether a test program passes in the sandbox: exit 0 *and* its last line the marker it
    prints after the tests (a fresh one per run, on a line of its own), so that a program that
    exits before the tests (``sys.exit()`` in the model's code) fails; so does one that closes or
    replaces ``sys.stdout``. A sandbox that cannot start is an error, not a failed answer:
    scoring it 0 would hide it."""
    marker = f"genius-tests-done-{secrets.token_hex(8)}"
    result = run_program(f"{source}\nprint({chr(10) + marker!r})\n", limits, files=files, marker=marker)
    if result.status == "error":
        raise UserError(f"code sandbox: could not run the program of item {item.id}: {result.stderr}")
    return result.passed


def _passes(build):
    def check(code: str | None, item: Item) -> bool:
        return code is not None and passes(build(code, item), item)

    return check


MBPP = Task(
    name="mbpp", answer_type="code", description="MBPP test (500 problems, 3-shot prompt), pass@1",
    read=read_mbpp, files=("mbpp.jsonl", "*.dev.jsonl", "sanitized-mbpp.json", "*.dev.json", "*.jsonl"),
    format=MBPP_FORMAT, hub=HubSource("google-research-datasets/mbpp", "full", "test", _hub_mbpp),
    check_fn=_passes(mbpp_program), executes_code=True,
)
HUMANEVAL = Task(
    name="humaneval", answer_type="code", description="HumanEval (164 functions), pass@1",
    read=read_humaneval, files=("HumanEval.jsonl", "*.jsonl"), format=HUMANEVAL_FORMAT,
    hub=HubSource("openai/openai_humaneval", None, "test", _humaneval_item),
    check_fn=_passes(humaneval_program), executes_code=True,
)
