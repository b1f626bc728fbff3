"""Typed config dataclasses from YAML/dicts, validated, with a YAML copy out.

Each stage defines its own dataclass (sampling, training, evaluation, pipeline) with a
docstring under each field; this module turns a plain dict into one, refusing unknown keys and
wrong types with one line that names the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from genius.errors import UserError
from genius.io import read_yaml, write_yaml

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    def bad() -> UserError:
        return UserError(f"{source}: key '{key}': expected {_type_name(tp)}, got {value!r}")

    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except UserError:
                continue
        raise bad()
    if origin is typing.Literal:
        if value in get_args(tp):
            return value
        raise bad()
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise bad()
        inner = get_args(tp)[0] if get_args(tp) else Any
        items = [_coerce(v, inner, key, source) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad()
        return from_dict(tp, value, source=source, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad()
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise bad()
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad()


def from_dict(cls: type[T], data: dict, *, source: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types are UserErrors."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of keys for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise UserError(f"{source}: unknown key '{prefix}{key}' (known keys: {known})")
        kwargs[key] = _coerce(value, hints[key], prefix + key, source)
    try:
        obj = cls(**kwargs)
    except TypeError as e:
        raise UserError(f"{source}: {e}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict of YAML-friendly values (Paths become strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load(cls: type[T], path: str | Path | None = None, overrides: dict | None = None) -> T:
    """Config from a YAML file (optional) with overrides applied on top (e.g. CLI flags)."""
    data: dict = {}
    source = "config"
    if path is not None:
        data = read_yaml(path) or {}
        source = str(path)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    return from_dict(cls, data, source=source)


def save(obj: Any, path: str | Path) -> None:
    write_yaml(path, to_dict(obj))


RESUMABLE = "genius.may_change_on_resume"


def may_change(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field a resumed run may change: it sets how fast or where a run goes (batch size,
    engine, device, logging), not what it computes. Every other field must match the saved copy."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={RESUMABLE: True})


def fixed_keys(cls: type) -> list[str]:
    """The fields of config class ``cls`` that a resume must keep (not marked ``may_change``)."""
    return [f.name for f in dataclasses.fields(cls) if not f.metadata.get(RESUMABLE)]


def changed_keys(old: dict, new: Any) -> list[str]:
    """The fields of config ``new`` (a dataclass) whose values differ from the saved dict ``old``,
    leaving out those marked ``may_change``."""
    current = to_dict(new)
    return [k for k in fixed_keys(type(new)) if old.get(k) != current.get(k)]


def check_resume(saved: Path, new: Any, *, force: bool = False, hint: str = "") -> None:
    """The one resume rule: refuse to go on in a folder whose saved config copy ``saved`` differs
    from ``new`` in a field not marked ``may_change`` (unless ``force``). Writes nothing."""
    if force or not saved.is_file():
        return
    old = read_yaml(saved) or {}
    if not isinstance(old, dict):
        raise UserError(f"{saved}: expected a mapping of config keys, got {type(old).__name__}")
    changed = changed_keys(old, new)
    if changed:
        current = to_dict(new)
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {current.get(k)!r}" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise UserError(f"{saved}: this folder was started with other settings ({shown}{more}); rerun with the same "
                        f"settings, use another output folder{hint or ', or pass --force to go on with the new ones'}")


def parse_sets(items: list[str]) -> dict:
    """The one ``--set KEY=VALUE`` parser: ['a=1', 'lora.r=8'] -> {'a': 1, 'lora': {'r': 8}} with
    values read as YAML; ``merge_sets`` lays the result over a config dict."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. lora.r=8 (values in YAML syntax)")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at character {mark.column + 1}" if mark is not None else ""
            raise UserError(f"--set {item!r}: the value is not valid YAML{where} (quote a string, close a [list])") \
                from None
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part.strip(), {})
            if not isinstance(child, dict):
                raise UserError(f"--set {item!r}: {part} was already set to a value, not a section")
            node = child
        node[parts[-1].strip()] = parsed
    return out


def merge_sets(data: dict, sets: dict) -> dict:
    """``data`` with nested ``sets`` laid over it (sections merge key by key)."""
    out = dict(data)
    for key, value in sets.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_sets(out[key], value)
        else:
            out[key] = value
    return out
