"""genius.cli.main, the one error boundary: user errors are one line and exit 2, bugs say so and exit 1."""

from __future__ import annotations

import errno
import json
import os

import pytest
import yaml

import genius.commands.report as report_command
from genius.cli import main
from genius.errors import UserError


def run_raising(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: BaseException):
    """Run ``genius report x`` with its command raising ``error``: (exit code, stderr lines)."""

    def fail(args):
        raise error

    monkeypatch.setattr(report_command, "run", fail)
    code = main(["report", "x"])
    return code, capsys.readouterr().err.splitlines()


def os_error(code: int, filename: str | None = None, filename2: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename, None, filename2)


@pytest.mark.parametrize(("error", "line"), [
    (os_error(errno.ENOSPC), "no space left on the device (free some space, or write to a folder on another disk); "
                             "what was written before is kept"),
    (os_error(errno.ENOSPC, "/runs/a/trees.jsonl"), "/runs/a/trees.jsonl: no space left on the device"),
    (os_error(errno.EROFS, "/ro/run/stats.json"), "/ro/run/stats.json: read-only file system (choose an output folder"),
    (os_error(errno.EACCES, "/etc/x"), "/etc/x: permission denied"),
    (os_error(errno.EISDIR, "/runs/.tmp", "/runs/report.md"), "/runs/report.md: is a folder, expected a file"),
    (os_error(errno.ENOTDIR, "/runs/file/x"), "/runs/file/x: a part of this path is a file, expected a folder"),
    (os_error(errno.ENOENT, "/gone", "/there"), "/gone: no such file or folder"),
    (UserError("first line\nsecond line"), "first line second line"),
    (UnicodeDecodeError("utf-8", b"ab\xffc", 2, 3, "invalid start byte"),
     "an input is not UTF-8 text (byte 0xff at offset 2 of the part read: invalid start byte); save it as UTF-8"),
    (json.JSONDecodeError("Expecting value", '{"a": }', 6), "an input is not valid JSON (Expecting value at "
                                                            "character 6 of the part read); is the file damaged?"),
])
def test_errors_the_user_can_cause_are_one_line_and_exit_2(monkeypatch, capsys, error, line) -> None:
    code, err = run_raising(monkeypatch, capsys, error)
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"genius report: error: {line}")


def test_bad_yaml_names_the_line_and_column(monkeypatch, capsys) -> None:
    try:
        yaml.safe_load("a: 1\nb: [1,\n")
    except yaml.YAMLError as e:
        error = e
    code, err = run_raising(monkeypatch, capsys, error)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("genius report: error: not valid YAML at line 3, column 1 (")


@pytest.mark.parametrize("error", [RuntimeError("boom"), os_error(errno.ECONNRESET), KeyError("x")])
def test_a_bug_prints_its_traceback_and_says_it_is_a_bug(monkeypatch, capsys, error) -> None:
    code, err = run_raising(monkeypatch, capsys, error)
    assert code == 1 and err[0] == "Traceback (most recent call last):"
    assert err[-1].startswith(f"genius report: internal error ({type(error).__name__}): this is a bug in genius")
    assert "issue tracker" in err[-1]


def test_ctrl_c_keeps_its_own_line(monkeypatch, capsys) -> None:
    code, err = run_raising(monkeypatch, capsys, KeyboardInterrupt())
    assert code == 130 and err == ["genius report: interrupted; what was written is kept, rerun the same command "
                                   "to resume"]


@pytest.mark.parametrize(("argv", "start", "end"), [
    (["eval", "--limit", "a"], "genius eval: error: argument --limit: invalid int value: 'a'",
     "(see genius eval --help)"),
    (["models", "resolve"], "genius models resolve: error: the following arguments are required: spec",
     "(see genius models resolve --help)"),
    (["sample", "q.jsonl", "--out", "o", "--score", "best"], "genius sample: error: argument --score: invalid choice: "
                                                             "'best' (choose from ", "(see genius sample --help)"),
])
def test_a_mistyped_flag_is_one_line_not_the_usage_block(capsys, argv, start, end) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(start) and line.endswith(end) and captured.out == ""
