"""Arguments shared by several subcommands, and the one way from CLI flags to a config.

A config flag sets one field of a config dataclass: it defaults to None and overrides the YAML
only when given. ``add_config_flags`` makes them from the fields (``--max-new-tokens`` for
``max_new_tokens``; type, choices and help from the annotation and the field's docstring);
``add_config_flag`` adds one with a name or parsing of its own (``--tasks a,b``), checked to name
a field. Each parser records its config flags (``config_flags``), so ``config_from_args`` turns
the parsed flags, ``--set a.b=c`` (genius.config.parse_sets) and the YAML into the config, and a
test can check that no flag names a field that is not there.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar

from genius.engines.options import ENGINE_NAMES
from genius.models import DEFAULT_MODEL

T = TypeVar("T")
_FLAGS = "_config_flags"  # parser default: flag dest -> "module.Class" of the config whose field it sets


def class_name(cls: type) -> str:
    """How a parser names the config class of its flags: "module.Class"."""
    return f"{cls.__module__}.{cls.__qualname__}"


def add_config_flag(p: argparse.ArgumentParser, cls: type | str, *names: str, dest: str,
                    **kwargs: Any) -> argparse.Action:
    """A flag (default None) that sets field ``dest`` of config class ``cls``. A name that is no
    field of ``cls`` is a programming error, raised when the parser is built; ``cls`` may be
    given as "module.Class" where importing it would slow every command down (tests check those)."""
    if not isinstance(cls, str) and dest not in {f.name for f in dataclasses.fields(cls)}:
        raise TypeError(f"flag {'/'.join(names)}: {cls.__name__} has no field '{dest}'")
    action = p.add_argument(*names, dest=dest, default=None, **kwargs)
    p.set_defaults(**{_FLAGS: {**config_flags(p), dest: cls if isinstance(cls, str) else class_name(cls)}})
    return action


def config_flags(p: argparse.ArgumentParser) -> dict[str, str]:
    """The config flags of a parser: dest (a field name) -> "module.Class" of its config."""
    return dict(p.get_default(_FLAGS) or {})


def add_config_flags(p: argparse.ArgumentParser, cls: type, names: Iterable[str], *,
                     types: dict[str, Callable[[str], Any]] | None = None) -> None:
    """``--field-name`` for each field in ``names``: type and choices from its annotation (a
    ``types`` entry replaces the parsing of a str field), help = the first sentence of its
    docstring and its default."""
    from genius.config import field_docs, first_sentence

    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        if name not in defaults:
            raise TypeError(f"flag --{name.replace('_', '-')}: {cls.__name__} has no field '{name}'")
        if name not in docs:
            raise TypeError(f"flag --{name.replace('_', '-')}: {cls.__name__}.{name} has no docstring for its help")
        kind = _flag_kind(hints[name], f"{cls.__name__}.{name}")
        if types and name in types:
            kind["type"] = types[name]
        shown = _default_shown(defaults[name])
        text = first_sentence(docs[name]) + (f" (default: {shown})" if shown is not None else "")
        add_config_flag(p, cls, "--" + name.replace("_", "-"), dest=name, help=text.replace("%", "%%"), **kind)


def _flag_kind(tp: Any, where: str) -> dict[str, Any]:
    """argparse keywords for a field's annotation: int, float, str, Path, bool, a Literal, an
    Optional of those, or a list of them (a repeatable flag)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, UnionType) and len(args) == 1:
        tp = args[0]
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return {"choices": list(typing.get_args(tp))}
    if origin is list:
        return {"action": "append", **_flag_kind(typing.get_args(tp)[0], where)}
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if tp in (int, float, str, Path):
        return {"type": tp}
    raise TypeError(f"{where}: no CLI flag for a field of type {tp}; use --set")


def _default_shown(f: dataclasses.Field) -> str | None:
    """A field's default as the help shows it (None: the field has none)."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    if isinstance(value, str) and (not value or value != value.strip() or "\n" in value):
        return repr(value)  # '\n', '' and trailing blanks would not show as themselves
    return str(value)


def add_set_argument(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, dotted for sections (e.g. {example}); value in YAML syntax; "
                        "repeatable")


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The config flags of ``cls`` that were given (a flag left out is None and overrides nothing)."""
    flags = getattr(args, _FLAGS, None) or {}
    return {dest: getattr(args, dest) for dest, owner in flags.items()
            if owner == class_name(cls) and getattr(args, dest) is not None}


def config_from_args(cls: type[T], args: argparse.Namespace, path: str | Path | None) -> T:
    """The one way from a command line to a config: the YAML at ``path`` (optional), ``--set``
    laid over it, then the config flags that were given; validated."""
    from genius.config import load, parse_sets

    return load(cls, path, config_overrides(args, cls), sets=parse_sets(getattr(args, "set", None) or []))


def add_model_arguments(p: argparse.ArgumentParser, *, default: str | None = DEFAULT_MODEL,
                        config: type | None = None) -> None:
    """--model, --dtype, --device, --trust-remote-code and --engine. Those that name a field of
    ``config`` are config flags of it (default None: the config's value holds unless given)."""
    fields = {f.name for f in dataclasses.fields(config)} if config is not None else set()

    def add(*names: str, dest: str, default: Any, **kwargs: Any) -> None:
        if dest in fields:
            add_config_flag(p, config, *names, dest=dest, **kwargs)
        else:
            p.add_argument(*names, dest=dest, default=default, **kwargs)

    shown = f"the config's, else {DEFAULT_MODEL}" if "model" in fields else default
    add("--model", dest="model", default=default,
        help=f"model spec: embedded name, local HF folder or hub id (default: {shown})")
    add("--dtype", dest="dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
        help="weights dtype; auto = bf16 where the hardware runs it fast, else fp32")
    add("--device", dest="device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    add("--trust-remote-code", dest="trust_remote_code", default=False, action="store_true",
        help="allow model code from the model folder / hub (off by default: it runs foreign code)")
    add("--engine", dest="engine", default=None, choices=ENGINE_NAMES,
        help="generation backend: hf, vllm, or auto = vllm where installed and a GPU is there "
             "(default: the config's engine, else auto)")


def engine_from_args(args: argparse.Namespace, cfg: Any = None, **kwargs: Any) -> Any:
    """The engine of a command: model flags, and the engine settings of ``cfg`` (a config with
    ``engine`` and ``engine_options``, which ``--engine`` already overrode) when it has them."""
    from genius.engines import make_engine

    engine = getattr(cfg, "engine", None) or args.engine or "auto"
    return make_engine(args.model, engine=engine, options=getattr(cfg, "engine_options", None), dtype=args.dtype,
                       device=args.device, trust_remote_code=args.trust_remote_code, **kwargs)


def add_parallel_arguments(p: argparse.ArgumentParser) -> None:
    from genius.ranks import PARALLEL_MODES

    p.add_argument("--parallel", default="rank", choices=PARALLEL_MODES,
                   help="under torchrun / accelerate launch: rank = every process generates its share of the "
                        "items on its own GPU; node = the first process of each node generates the node's share "
                        "with all its GPUs (e.g. --engine vllm with tensor parallelism), the others wait")
    p.add_argument("--shard", default=None,
                   help="i/n: do shard i of n by hand (separate jobs; the last to finish merges). "
                        "Default: this process's share under torchrun, else everything")


def launch_share(args: argparse.Namespace) -> tuple[Any, bool] | None:
    """This process's share of a generation command: (shard, whether the shards are the
    processes of one launch), with ``args.device`` set to its GPU; None when it has nothing to
    generate (node mode, not the first process of its node)."""
    from genius.ranks import Ranks, parse_shard

    if args.shard is not None:
        return parse_shard(args.shard), False
    ranks = Ranks.from_env()
    if not ranks.generates(args.parallel):
        print(f"rank {ranks.rank}: --parallel node, the first process of this node generates; nothing to do here")
        return None
    args.device = ranks.device(args.device, args.parallel)
    return ranks.shard(args.parallel), ranks.launched

