"""LiveCodeBench's checker, as a program that runs inside the code sandbox (stdlib only), and its
comparisons (imported by genius.evaluation.tasks.livecodebench, which runs it).

It follows lcb_runner/evaluation/testing_util.py (LiveCodeBench/LiveCodeBench):
- the same imports are put before the model's code (``IMPORTS``: its ``import_string``), so
  code that uses ``defaultdict`` without importing it passes as it does there;
- functional (LeetCode) tests, ``python program.py`` with ``solution.py`` and ``tests.json``
  ({"fn_name", "timeout_s", "tests": [{"input", "output"}]}) beside it: the code runs in this
  process; the method ``fn_name`` of ``Solution()`` (or the function of that name when there is
  no ``class Solution``) gets the input's lines, each parsed as JSON, as arguments; the result (a
  tuple as a list) must equal the output parsed as JSON; ``timeout_s`` per call. It exits 0 when
  every test passed, else 1 at the first that did not, saying why on stderr (so does a failure
  of this checker itself: none is expected, and the tests run every path of it). The tests file
  is deleted before the code runs, but the code shares this process and could still fool it, as
  it could fool LiveCodeBench's;
- stdin tests, ``python program.py --run-solution`` with the test's input on stdin: the code
  runs as the main program, an exit through ``sys.exit()`` not being an error, and the caller
  compares what it printed with ``same_output`` (outside the sandbox, so the code never sees the
  expected output). Unlike LiveCodeBench, which calls the code as a function in one process with
  a patched stdin, each test runs it as a program of its own (fresh state each test, as a judge
  runs it), with interpreter start-up inside the time limit.
"""

from __future__ import annotations

import json
import os
import signal
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


def _digits() -> None:
    # LiveCodeBench's runner raises the int <-> str digit limit (Python >= 3.10.7 has one).
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(50000)


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _fail(why: str) -> None:
    print(why[:2000], file=sys.stderr)
    sys.exit(1)


def functional() -> None:
    _digits()
    with open("tests.json", encoding="utf-8") as f:
        spec = json.load(f)
    os.remove("tests.json")  # the code under test need not read the expected outputs
    with open("solution.py", encoding="utf-8") as f:
        source = f.read()
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


def run_solution() -> None:
    """One stdin test: the solution as the main program, its exit through sys.exit() not an error."""
    _digits()
    with open("solution.py", encoding="utf-8") as f:
        code = compile(IMPORTS + "\n" + f.read(), "solution.py", "exec")
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit:
        pass
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--run-solution"]:
        run_solution()
        sys.exit(0)
    functional()
