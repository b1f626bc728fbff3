"""The ``genius`` command: thin subcommands over the library.

Every module in ``genius.commands`` is one subcommand (its name is the module's name, with
``_`` read as ``-``); it has a docstring (the help), ``add_arguments(parser)`` and
``run(args) -> int``. Errors the user can cause print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import genius.commands
from genius.errors import UserError


def _command_modules() -> dict[str, str]:
    names = sorted(m.name for m in pkgutil.iter_modules(genius.commands.__path__) if not m.name.startswith("_"))
    return {name.replace("_", "-"): f"genius.commands.{name}" for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genius", description=__doc__.splitlines()[0] if __doc__ else None)
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
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"genius {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"genius {args.command}: interrupted; what was written is kept, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
