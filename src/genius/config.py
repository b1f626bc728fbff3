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


def diff(old: dict, new: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Keys whose values differ between two config dicts (for refusing a changed resume)."""
    keys = sorted(set(old) | set(new))
    return [k for k in keys if k not in ignore and old.get(k) != new.get(k)]
