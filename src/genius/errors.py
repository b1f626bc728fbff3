"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, field, setting, model spec): one clear line."""


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix such as ``queries.jsonl:12: field 'instruction':``."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field is not None:
        loc += f": field '{field}'"
    return loc + ":"
