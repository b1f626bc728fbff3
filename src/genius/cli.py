"""The ``genius`` command: thin subcommands over the library.

Every module in ``genius.commands`` is one subcommand (its name is the module's name, with
``_`` read as ``-``); it has a docstring (the help), ``add_arguments(parser)`` and
``run(args) -> int``.

``main`` is the one error boundary: an error the user can cause (a UserError, bytes that are not
UTF-8, bad YAML or JSON, a full disk, a read-only or missing path, a folder where a file belongs,
a mistyped flag) prints one line and exits with code 2; anything else is a bug in genius and
prints its traceback, a line saying so, and exits with code 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import traceback
from typing import NoReturn

import yaml

import genius.commands
from genius.errors import UserError, describe_decode_error, describe_os_error


class _UsageError(Exception):
    """A mistyped command line, already worded as its one line."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and where the help is, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _command_modules() -> dict[str, str]:
    names = sorted(m.name for m in pkgutil.iter_modules(genius.commands.__path__) if not m.name.startswith("_"))
    return {name.replace("_", "-"): f"genius.commands.{name}" for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genius", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"genius {genius.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _command_modules().items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(e, file=sys.stderr)
        return 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    name = f"genius {args.command}"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; what was written is kept, rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the boundary: every error ends here, as a line or as a bug report
        line = user_error_line(e)
        if line is None:
            traceback.print_exc()
            print(f"{name}: internal error ({type(e).__name__}): this is a bug in genius, not in your input; please "
                  "report it on the genius issue tracker with the command line and the traceback above",
                  file=sys.stderr)
            return 1
        print(f"{name}: error: {line}", file=sys.stderr)
        return 2


def user_error_line(e: BaseException) -> str | None:
    """The one line of an error the user can cause (without the ``genius CMD: error:`` prefix), or
    None when it is a bug in genius."""
    if isinstance(e, UserError):
        line = str(e)
    elif isinstance(e, UnicodeDecodeError):
        line = describe_decode_error(e)
    elif isinstance(e, OSError):
        what = describe_os_error(e)
        if what is None:
            return None
        line = f"{what}; what was written before is kept"
    elif isinstance(e, yaml.YAMLError):
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or e
        if mark is None:
            line = f"not valid YAML ({problem})"
        elif str(mark.name).startswith("<"):  # parsed from a string, not a file
            line = f"not valid YAML at line {mark.line + 1}, column {mark.column + 1} ({problem})"
        else:
            line = f"{mark.name}:{mark.line + 1}: not valid YAML at column {mark.column + 1} ({problem})"
    elif isinstance(e, json.JSONDecodeError):
        line = f"an input is not valid JSON ({e.msg} at character {e.pos} of the part read); is the file damaged?"
    else:
        return None
    # One line even when a message quotes a library's several.
    return " ".join(part.strip() for part in line.splitlines() if part.strip()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
