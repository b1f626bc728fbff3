"""Typed config dataclasses from YAML/dicts, validated, with a YAML copy out.

Each stage defines its own dataclass (sampling, training, evaluation, pipeline) with a
docstring under each field; this module turns a plain dict into one, refusing unknown keys and
wrong types with one line that names the key and the expected type. It also holds the seams
every command shares: the one resume rule (``check_resume``, with the fields a resume may change
marked ``may_change``), the one ``--set a.b=c`` parser (``parse_sets``, ``merge_sets``) and the
reader of the field docstrings that CLI flags take their help from (``field_docs``).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import textwrap
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
        section_error = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, source)
            except UserError as e:
                # A section given as a mapping: its own error names the key inside (lora.zzz).
                if isinstance(value, dict) and dataclasses.is_dataclass(arg):
                    section_error = e
        raise section_error or bad()
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
        if fields[key].metadata.get(A_PATH):
            kwargs[key] = _spelled(kwargs[key])
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


def read_mapping(path: str | Path) -> dict:
    """A YAML config file as a dict (empty file: {}); any other top level is a UserError."""
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level, got a {type(data).__name__}")
    return data


def load(cls: type[T], path: str | Path | None = None, overrides: dict | None = None, *,
         sets: dict | None = None) -> T:
    """Config from a YAML file (optional), then ``sets`` (nested, from ``parse_sets``) laid over
    it, then ``overrides`` (e.g. CLI flags: a None value is a flag not given and overrides nothing)."""
    data = read_mapping(path) if path is not None else {}
    data = merge_sets(data, sets or {})
    data.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return from_dict(cls, data, source=str(path) if path is not None else "config")


def save(obj: Any, path: str | Path) -> None:
    write_yaml(path, to_dict(obj))


RESUMABLE = "genius.may_change_on_resume"
A_PATH = "genius.path"


def may_change(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field a resumed run may change: it sets how fast or where a run goes (batch size,
    engine, device, logging), not what it computes. Every other field must match the saved copy."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={RESUMABLE: True})


def path_field(default: Any = dataclasses.MISSING) -> Any:
    """A ``str`` config field naming a file or folder: read in one spelling (``runs/x/`` and
    ``./runs/x`` are ``runs/x``), so that a resume does not take a trailing ``/`` for a change."""
    return dataclasses.field(default=default, metadata={A_PATH: True})


def _spelled(value: Any) -> Any:
    return str(Path(value)) if isinstance(value, str) and value else value


def fixed_keys(cls: type) -> list[str]:
    """The fields of config class ``cls`` that a resume must keep (not marked ``may_change``)."""
    return [f.name for f in dataclasses.fields(cls) if not f.metadata.get(RESUMABLE)]


def changed_keys(old: dict, new: Any, also: dict | None = None) -> list[str]:
    """The fields of config ``new`` (a dataclass) whose values differ from the saved dict ``old``,
    leaving out those marked ``may_change``; ``also``: values beside the fields that the copy
    records and that must match too."""
    current = {**to_dict(new), **(also or {})}
    paths = {f.name for f in dataclasses.fields(new) if f.metadata.get(A_PATH)}
    # A field the saved copy lacks was added after it was written: the run used its default.
    defaults = _defaults(type(new))

    def same(key: str) -> bool:
        a, b = old.get(key, defaults.get(key)), current.get(key)
        return _spelled(a) == _spelled(b) if key in paths else a == b

    return [k for k in [*fixed_keys(type(new)), *(also or {})] if not same(k)]


def _defaults(cls: type) -> dict[str, Any]:
    """The default of every field of a config class, as ``to_dict`` writes it ({} when the class
    cannot be built from its defaults alone)."""
    try:
        return to_dict(cls())
    except TypeError:
        return {}


def check_resume(saved: Path, new: Any, *, force: bool = False, hint: str = "", also: dict | None = None) -> None:
    """The one resume rule: refuse to go on in a folder whose saved config copy ``saved`` differs
    from ``new`` in a field not marked ``may_change`` (or in a value of ``also``, which the copy
    records beside the fields), unless ``force``. Writes nothing."""
    if force or not saved.is_file():
        return
    old = read_mapping(saved)
    changed = changed_keys(old, new, also)
    if changed:
        current = {**to_dict(new), **(also or {})}
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {current.get(k)!r}" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise UserError(f"{saved}: this folder was started with other settings ({shown}{more}); rerun with the same "
                        f"settings, use another output folder{hint or ', or pass --force to go on with the new ones'}")


def _put(node: dict, dotted: str, value: Any, what: str) -> None:
    """node[a][b] = value for the key 'a.b', making (or entering) the sections on the way."""
    *parents, leaf = [part.strip() for part in dotted.split(".")]
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"{what}: '{part}' was already set to a value, not a section")
        node = child
    node[leaf] = value


def nest(flat: dict[str, Any], what: str = "override") -> dict:
    """Dotted keys into sections: {'a': 1, 'lora.r': 8} -> {'a': 1, 'lora': {'r': 8}}."""
    out: dict = {}
    for key, value in flat.items():
        # A copy: a later dotted key may fill this section, which must not change the caller's.
        _put(out, key, copy.deepcopy(value) if isinstance(value, dict) else value, f"{what} '{key}'")
    return out


def parse_sets(items: list[str]) -> dict:
    """The one ``--set KEY=VALUE`` parser: ['a=1', 'lora.r=8'] -> {'a': 1, 'lora': {'r': 8}} with
    values read as YAML; ``merge_sets`` lays the result over a config dict."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not all(p.strip() for p in key.split(".")):
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. lora.r=8 (values in YAML syntax)")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at character {mark.column + 1}" if mark is not None else ""
            raise UserError(f"--set {item!r}: the value is not valid YAML{where} (quote a string, close a [list])") \
                from None
        _put(out, key, parsed, f"--set {item!r}")
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


# --- field docstrings: the help of generated CLI flags ---------------------------------------

@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring under it in the class body (read with ``ast`` from the source
    of ``cls`` and of its dataclass bases; a field without one is left out)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = next(node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)).body
        for stmt, after in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


_NOT_AN_END = ("e.g.", "i.e.", "cf.", "etc.", "vs.")


def first_sentence(text: str) -> str:
    """The text up to the first '.' that ends a sentence: followed by a space or the end, outside
    parentheses and quotes, not an abbreviation such as 'e.g.'."""
    flat = " ".join(text.split())
    depth, quoted = 0, False
    for i, ch in enumerate(flat):
        if ch == '"':
            quoted = not quoted
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "." and not depth and not quoted and (i + 1 == len(flat) or flat[i + 1] == " "):
            word = flat[:i + 1].rsplit(" ", 1)[-1].lstrip("(")
            if word.lower() not in _NOT_AN_END:
                return flat[:i + 1]
    return flat
