"""LiveCodeBench's checker, as a program that runs inside the code sandbox (stdlib only).

genius.evaluation.tasks.livecodebench writes this file as the sandbox's program, with the
model's code as ``solution.py`` and the problem's tests as ``tests.json`` ({"mode": "stdin" or
"functional", "fn_name", "timeout_s", "tests": [{"input", "output"}]}) beside it. It exits 0
when every test passes, else 1 at the first that does not, printing why on stderr.

It follows lcb_runner/evaluation/testing_util.py (LiveCodeBench/LiveCodeBench):
- the same imports are put before the model's code (``IMPORTS``: its ``import_string``), so
  code that uses ``defaultdict`` without importing it passes as it does there;
- functional (LeetCode) tests: the code runs in this process; the method ``fn_name`` of
  ``Solution()`` (or the function of that name when there is no ``class Solution``) gets the
  input's lines, each parsed as JSON, as arguments; the result (a tuple as a list) must equal
  the output parsed as JSON; ``timeout_s`` per call;
- stdin tests: the output must match line by line after stripping, a line that differs
  matching when its whitespace-separated fields are equal as decimals; ``timeout_s`` per test.
  Unlike LiveCodeBench, which calls the code as a function in its own process with a patched
  stdin, each test runs the code as a program of its own (fresh state each test, the way a
  judge runs it); as there, an exit through ``sys.exit()`` is not an error.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

IMPORTS = ("from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
           "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\n"
           "from statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\n"
           "from io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\n"
           "import string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
           "import math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\n"
           "import io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n")


def stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def same_output(printed: str, expected: str) -> bool:
    """LiveCodeBench's stdin comparison: the same number of lines, each equal after stripping
    or, field by field, equal as decimals ("1.50" matches "1.5"; "1.5000001" does not)."""
    got, want = stripped_lines(printed), stripped_lines(expected)
    if len(got) != len(want):
        return False
    for a, b in zip(got, want):
        if a == b:
            continue
        try:
            if [Decimal(x) for x in a.split()] != [Decimal(x) for x in b.split()]:
                return False
        except InvalidOperation:
            return False
    return True


def call_arguments(text: str) -> list[Any]:
    """A functional test's input: one JSON value per line, the method's arguments in order."""
    return [json.loads(line) for line in text.split("\n")]


def same_result(result: Any, expected: Any) -> bool:
    """A functional test's check: equal to the expected value, a tuple counting as a list."""
    return (list(result) if isinstance(result, tuple) else result) == expected


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _fail(why: str) -> None:
    print(why[:2000], file=sys.stderr)
    sys.exit(1)


def _functional(spec: dict, source: str) -> None:
    signal.signal(signal.SIGALRM, _alarm)
    namespace: dict[str, Any] = {"__name__": "solution"}
    signal.alarm(spec["timeout_s"])
    try:
        exec(compile(IMPORTS + "\n\n" + source, "solution.py", "exec"), namespace)
        target = namespace["Solution"]() if "class Solution" in source else None
    except _Timeout:
        _fail("time limit exceeded while defining the solution")
    except BaseException as e:  # noqa: BLE001 - any failure of the model's code is a failed test
        _fail(f"the solution does not run: {e!r}")
    finally:
        signal.alarm(0)
    name = spec["fn_name"]
    method = getattr(target, name, None) if target is not None else namespace.get(name)
    if not callable(method):
        _fail(f"no function {name!r} in the solution")
    for k, test in enumerate(spec["tests"]):
        args, expected = call_arguments(test["input"]), json.loads(test["output"])
        signal.alarm(spec["timeout_s"])
        try:
            result = method(*args)
        except _Timeout:
            _fail(f"test {k}: time limit exceeded")
        except BaseException as e:  # noqa: BLE001
            _fail(f"test {k}: runtime error {e!r}")
        finally:
            signal.alarm(0)
        if not same_result(result, expected):
            _fail(f"test {k}: wrong answer {result!r:.300} != {expected!r:.300}")


def _stdin(spec: dict) -> None:
    for k, test in enumerate(spec["tests"]):
        with open("stdin.txt", "w", encoding="utf-8") as f:
            f.write(test["input"])
        # stderr to a file too: the sandbox lets nothing outside its directory be opened for writing
        with open("stdin.txt", "rb") as given, open("stdout.txt", "wb") as printed, open("stderr.txt", "wb") as err:
            try:
                subprocess.run([sys.executable, "-I", "-S", __file__, "--run-solution"], stdin=given, stdout=printed,
                               stderr=err, timeout=spec["timeout_s"], check=True)
            except subprocess.TimeoutExpired:
                _fail(f"test {k}: time limit exceeded")
            except subprocess.CalledProcessError as e:
                _fail(f"test {k}: runtime error (exit {e.returncode})")
        with open("stdout.txt", encoding="utf-8", errors="replace") as f:
            if not same_output(f.read(), test["output"]):
                _fail(f"test {k}: wrong answer")


def _run_solution() -> None:
    """One stdin test: the solution as the main program, its exit through sys.exit() not an error."""
    sys.set_int_max_str_digits(50000)
    with open("solution.py", encoding="utf-8") as f:
        code = compile(IMPORTS + "\n" + f.read(), "solution.py", "exec")
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit:
        pass
    sys.stdout.flush()


def main() -> None:
    sys.set_int_max_str_digits(50000)
    with open("tests.json", encoding="utf-8") as f:
        spec = json.load(f)
    if spec["mode"] == "functional":
        with open("solution.py", encoding="utf-8") as f:
            _functional(spec, f.read())
    else:
        _stdin(spec)


CHECKER_FAILED = 3
"""The exit status of a failure of this checker itself (not of the solution): not a score."""

if __name__ == "__main__":
    if sys.argv[1:] == ["--run-solution"]:
        _run_solution()
        sys.exit(0)
    try:
        main()
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - the solution's failures exit 1 above; anything else is the checker's
        import traceback

        traceback.print_exc()
        sys.exit(CHECKER_FAILED)
