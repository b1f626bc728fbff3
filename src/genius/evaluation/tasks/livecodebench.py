"""LiveCodeBench code generation (Jain et al., 2024; paper Table 6), pass@1.

Problems from LeetCode, AtCoder and Codeforces contests, each with public and private tests:
functional tests (LeetCode: call ``Solution().<func_name>``) or stdin tests (a program reading
stdin). Data: the hub dataset ``livecodebench/code_generation_lite`` in its own layout, JSONL
files ``test.jsonl``, ``test2.jsonl`` ... ``test6.jsonl`` (one per release), read from a
``--data-dir`` folder holding them or downloaded from the hub when online (files only: the
dataset's loading script is never run, and ``datasets`` >= 4 would refuse it anyway).

Which problems (``EvalConfig.livecodebench_release`` / ``livecodebench_dates``), as in
LiveCodeBench's runner: a release tag (``release_latest``: every file; ``release_v3``: the
first three; ``v2``: only test2.jsonl; ``v1_v3``: test.jsonl to test3.jsonl) and a window of
contest dates (``2024-08-01..2025-02-01``, either end open, both inclusive): the way to keep only
problems published after a model's training cutoff.

The prompt is LiveCodeBench's own for chat models (lcb_runner/prompts/code_generation.py @
28fef95): its system message, its question template (starter code or the stdin format), and its
code extraction (the last fenced block); the checker is livecodebench_harness.py's, run in the
sandbox, with its time limit of 6 s per test (and for functional problems the whole run's limit
of (6 + 1) s per test + 5 s, as compute_code_generation_metrics.py sets them). Where it differs
from LiveCodeBench's runner: each stdin test runs as a program of its own; the sandbox's Python
has no site-packages (a solution importing numpy fails); a run gets 4 GiB of memory; and the
sampling is genius eval's (greedy, 1024 tokens by default; LiveCodeBench's runner samples n=10
at temperature 0.2, top-p 0.95, up to 2000 tokens: ``--samples 10 --temperature 0.2 --top-p
0.95 --max-new-tokens 2000`` for its pass@1).

The private tests are stored base64(zlib(pickle(JSON text))). Unpickling data from the hub
could run code, so they are never unpickled: the pickle's opcodes are read (``pickletools``)
and accepted only when all they do is push one string, which is then parsed as JSON.
"""

from __future__ import annotations

import base64
import json
import pickletools
import re
import zlib
from collections.abc import Sequence
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.sandbox import Limits, run_program
from genius.evaluation.tasks._common import field
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.evaluation.tasks.code import passes
from genius.evaluation.tasks.livecodebench_harness import same_output
from genius.io import iter_jsonl_offsets

HUB_ID = "livecodebench/code_generation_lite"
FORMAT = ("LiveCodeBench code_generation_lite JSONL (question_id, question_content, starter_code, contest_date, "
          "difficulty, platform, public_test_cases, private_test_cases, metadata), files test.jsonl, test2.jsonl, ...")
PER_TEST_S = 6
"""LiveCodeBench's time limit per test (its runner's --timeout default)."""

SYSTEM = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
          "generate a correct Python program that matches the specification and passes all tests.")
"""PromptConstants.SYSTEM_MESSAGE_GENERIC as of LiveCodeBench 28fef95 (before December 2024 it
went on: "You will NOT return anything except for the program.")."""
WITH_STARTER = ("You will use the following starter code to write the solution to the problem and enclose your code "
                "within delimiters.")
WITHOUT_STARTER = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test "
                   "on the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
                   "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.")
_FILE = re.compile(r"test(\d*)\.jsonl")


# --- which problems --------------------------------------------------------------------------

def _file(version: int) -> str:
    return "test.jsonl" if version == 1 else f"test{version}.jsonl"


def _version(name: str) -> int:
    match = _FILE.fullmatch(name)
    assert match, name
    return int(match.group(1) or 1)


def release_files(release: str, present: Sequence[str]) -> list[str]:
    """The files of a release tag, in release order: ``release_latest`` (every test*.jsonl of
    ``present``), ``release_vN`` (test.jsonl to testN.jsonl), ``vN`` (testN.jsonl) or ``vN_vM``."""
    if release == "release_latest":
        return sorted((n for n in present if _FILE.fullmatch(n)), key=_version)
    if m := re.fullmatch(r"release_v(\d+)", release):
        first, last = 1, int(m.group(1))
    elif m := re.fullmatch(r"v(\d+)(?:_v(\d+))?", release):
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    else:
        raise UserError(f"livecodebench_release: {release!r} is not a release tag: expected release_latest, "
                        "release_vN, vN or vN_vM (e.g. release_v5, v6, v4_v5)")
    if not 1 <= first <= last:
        raise UserError(f"livecodebench_release: {release!r}: expected versions 1 <= N <= M")
    return [_file(v) for v in range(first, last + 1)]


def parse_dates(text: str | None) -> tuple[datetime | None, datetime | None]:
    """``"2024-08-01..2025-02-01"`` -> (start, end), either side may be empty; None: no window."""
    if text is None:
        return None, None
    parts = text.split("..")
    try:
        if len(parts) != 2 or not any(p.strip() for p in parts):
            raise ValueError
        start, end = (datetime.strptime(p.strip(), "%Y-%m-%d") if p.strip() else None for p in parts)
    except ValueError:
        raise UserError(f"livecodebench_dates: {text!r}: expected START..END with dates YYYY-MM-DD, either one "
                        "left out (e.g. 2024-08-01..2025-02-01 or 2024-08-01..)") from None
    if start and end and start > end:
        raise UserError(f"livecodebench_dates: {text!r}: the start is after the end")
    return start, end


# --- reading ---------------------------------------------------------------------------------

def question(content: str, starter_code: str) -> str:
    """LiveCodeBench's question template for chat models (get_generic_question_template_answer)."""
    if starter_code:
        fmt = f"### Format: {WITH_STARTER}\n```python\n{starter_code}\n```\n\n"
    else:
        fmt = f"### Format: {WITHOUT_STARTER}\n```python\n# YOUR CODE HERE\n```\n\n"
    return f"### Question:\n{content}\n\n{fmt}### Answer: (use the provided format with backticks)\n\n"


def pickled_text(data: bytes) -> str:
    """The string a pickle holds, read from its opcodes without unpickling: anything but one
    string (a global, a call, a second object) is refused, since unpickling it could run code."""
    allowed = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP",
               "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
    strings = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name not in allowed:
                raise UserError(f"a pickle with opcode {op.name}: expected a pickled string only; not unpickled")
            if isinstance(arg, str) and "UNICODE" in op.name:
                strings.append(arg)
    except ValueError as e:
        raise UserError(f"not a pickle: {e}") from None
    if len(strings) != 1:
        raise UserError(f"a pickle holding {len(strings)} strings: expected one")
    return strings[0]


def decode_tests(text: str) -> list[dict]:
    """A test-case field: JSON text, or (the private tests) base64(zlib(pickle(JSON text)))."""
    try:
        tests = json.loads(text)
    except json.JSONDecodeError:
        try:
            packed = zlib.decompress(base64.b64decode(text.encode("ascii")))
        except (ValueError, zlib.error) as e:
            raise UserError(f"neither JSON nor base64+zlib: {e}") from None
        try:
            tests = json.loads(pickled_text(packed))
        except json.JSONDecodeError as e:
            raise UserError(f"the pickled text is not JSON: {e}") from None
    if not isinstance(tests, list) or not all(isinstance(t, dict) and isinstance(t.get("input"), str)
                                              and isinstance(t.get("output"), str) for t in tests):
        raise UserError("expected a list of tests {input, output, testtype}")
    return tests


def _item(row: dict, path: Path, line: int, offset: int) -> Item:
    for key in ("question_id", "question_content", "contest_date", "public_test_cases", "private_test_cases",
                "metadata"):
        field(row, key, path, line, str, FORMAT)
    try:
        metadata = json.loads(row["metadata"])
        public = decode_tests(row["public_test_cases"])
    except (json.JSONDecodeError, UserError) as e:
        raise UserError(f"{where(path, line, 'public_test_cases/metadata')} {e}") from None
    if not isinstance(metadata, dict):
        raise UserError(f"{where(path, line, 'metadata')} expected a JSON object, got {type(metadata).__name__}")
    return Item(id=row["question_id"], question=question(row["question_content"], row.get("starter_code") or ""),
                gold="", meta={"title": row.get("question_title", ""), "platform": row.get("platform", ""),
                               "difficulty": row.get("difficulty", ""), "contest_date": row["contest_date"],
                               "func_name": metadata.get("func_name"), "public_tests": len(public),
                               "tests_at": [str(path), offset]})


def read_livecodebench(path: Path, *, livecodebench_release: str = "release_latest",
                       livecodebench_dates: str | None = None) -> list[Item]:
    """The problems of the release's files beside ``path`` (or of ``path`` alone, a JSONL file
    of another name), in file order, within the contest dates."""
    folder = path.parent
    if _FILE.fullmatch(path.name):
        present = [p.name for p in folder.iterdir()]
        files = release_files(livecodebench_release, present)
        missing = [n for n in files if n not in present]
        if missing:
            raise UserError(f"{folder}: release {livecodebench_release} needs {', '.join(missing)}, not there "
                            f"(found {', '.join(sorted(n for n in present if _FILE.fullmatch(n))) or 'none'})")
    else:
        files = [path.name]
    start, end = parse_dates(livecodebench_dates)
    items = []
    for name in files:
        for line, offset, row in iter_jsonl_offsets(folder / name):
            item = _item(row, folder / name, line, offset)
            try:
                date = datetime.fromisoformat(item.meta["contest_date"])
            except ValueError:
                raise UserError(f"{where(folder / name, line, 'contest_date')} expected an ISO date, got "
                                f"{item.meta['contest_date']!r}") from None
            if (start is None or start <= date) and (end is None or date <= end):
                items.append(item)
    return items


def _download(livecodebench_release: str = "release_latest", **_: object) -> Path:
    """The release's files from the hub (cached by huggingface_hub), as a folder (the dates are
    applied by the reader)."""
    from huggingface_hub import HfApi, hf_hub_download

    names = HfApi().list_repo_files(HUB_ID, repo_type="dataset") if livecodebench_release == "release_latest" else []
    paths = [Path(hf_hub_download(HUB_ID, name, repo_type="dataset"))
             for name in release_files(livecodebench_release, names)]
    return paths[0].parent


# --- answers and scoring ---------------------------------------------------------------------

def extract_last_block(response: str, item: Item | None = None) -> str | None:
    """LiveCodeBench's extraction for chat models: the lines between the last two lines holding
    a ``` fence; None when there are fewer than two."""
    lines = response.split("\n")
    fences = [k for k, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    return "\n".join(lines[fences[-2] + 1: fences[-1]])


def tests_of(item: Item) -> list[dict]:
    """The public then private tests of an item, read again from its row in the data file."""
    path, offset = item.meta["tests_at"]
    return _tests_at(path, offset, item.id)


@lru_cache(maxsize=1)  # the samples of one item are checked one after another: decoded once for all
def _tests_at(path: str, offset: int, item_id: str) -> list[dict]:
    with open(path, "rb") as f:
        f.seek(offset)
        row = json.loads(f.readline())
    try:
        return decode_tests(row["public_test_cases"]) + decode_tests(row["private_test_cases"])
    except UserError as e:
        raise UserError(f"{path}: problem {item_id}: private_test_cases: {e}") from None


@cache
def harness_source() -> str:
    return Path(__file__).with_name("livecodebench_harness.py").read_text(encoding="utf-8")


MEMORY_MB = 4096
"""Address space of a run. LiveCodeBench sets none (its reliability_guard gets None); a program
here gets 4 GiB, enough for its problems' solutions, not for taking the machine."""


def check(code: str | None, item: Item) -> bool:
    """Whether the code passes every test of the problem, in the sandbox, stopping at the first
    that fails. Functional problems: one run of the harness over all tests, with the runner's
    whole budget of (6 + 1) s per test + 5 s. Stdin problems: one run per test (6 s), the output
    compared here, where the code cannot reach the expected one."""
    if code is None or not code.strip():
        return False
    tests = tests_of(item)
    if item.meta.get("func_name"):
        spec = {"fn_name": item.meta["func_name"], "timeout_s": PER_TEST_S,
                "tests": [{"input": t["input"], "output": t["output"]} for t in tests]}
        budget = (PER_TEST_S + 1) * len(tests) + 5
        limits = Limits(timeout_s=budget, cpu_s=budget, memory_mb=MEMORY_MB, file_mb=64)
        return passes(harness_source(), item, limits, files={"solution.py": code, "tests.json": json.dumps(spec)})
    limits = Limits(timeout_s=PER_TEST_S, cpu_s=PER_TEST_S, memory_mb=MEMORY_MB, file_mb=64,
                    output_chars=64 * 2 ** 20)
    for test in tests:
        result = run_program(harness_source(), limits, files={"solution.py": code}, args=["--run-solution"],
                             stdin=test["input"].encode("utf-8"))
        if result.status == "error":  # the machine, not the answer
            raise UserError(f"code sandbox: could not run the program of item {item.id}: {result.stderr}")
        if not result.passed or not same_output(result.stdout, test["output"]):
            return False
    return True


TASK = Task(
    name="livecodebench", answer_type="code",
    description="LiveCodeBench code generation (release and contest dates: --livecodebench-release/-dates), pass@1",
    read=read_livecodebench, files=("test.jsonl", "test*.jsonl", "*.jsonl"), format=FORMAT,
    hub=HubSource(HUB_ID, None, "test", download=_download), extract_fn=extract_last_block, check_fn=check,
    executes_code=True, group_by="difficulty", system=SYSTEM,
    options=("livecodebench_release", "livecodebench_dates"),
)
