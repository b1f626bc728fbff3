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


# What a user does about a failed file operation, by errno (the rest are not theirs to fix).
_OS_ERRORS = {
    "ENOSPC": "no space left on the device (free some space, or write to a folder on another disk)",
    "EDQUOT": "disk quota exceeded (free some space, or write to a folder on another disk)",
    "EFBIG": "file too large for this file system (write to a folder on another disk)",
    "EROFS": "read-only file system (choose an output folder on a writable disk)",
    "EACCES": "permission denied (make it readable/writable for this user, or use another path)",
    "EPERM": "operation not permitted (make it writable for this user, or use another path)",
    "EISDIR": "is a folder, expected a file",
    "ENOTDIR": "a part of this path is a file, expected a folder",
    "ENOENT": "no such file or folder",
    "EEXIST": "already exists",
    "ENAMETOOLONG": "file name too long",
    "ENOTEMPTY": "folder not empty",
    "EXDEV": "cannot move between file systems (keep the folder on one disk)",
}


def describe_os_error(e: OSError) -> str | None:
    """One line for a file operation that failed for a reason the user can fix (disk full,
    read-only or forbidden path, a folder where a file belongs, ...); None for any other."""
    import errno

    name = errno.errorcode.get(e.errno or -1, "")
    what = _OS_ERRORS.get(name)
    if what is None:
        return None
    # A rename's trouble is with its target (filename2), except a missing source.
    path = e.filename2 if e.filename2 is not None and name != "ENOENT" else e.filename
    return f"{path}: {what}" if path is not None else what


def describe_decode_error(e: UnicodeDecodeError, path: object = None, *, offset: int | None = None,
                          line: int | None = None) -> str:
    """One line for bytes that are not UTF-8: the file when known, and where the bad byte is
    (``offset``: its byte offset in the file, when the decoded part did not start the file)."""
    byte = e.object[e.start:e.start + 1].hex() if isinstance(e.object, (bytes, bytearray)) else "?"
    if path is None:
        return (f"an input is not UTF-8 text (byte 0x{byte} at offset {e.start} of the part read: {e.reason}); "
                "save it as UTF-8")
    at = e.start if offset is None else offset
    return f"{where(path, line)} not UTF-8 text (byte 0x{byte} at byte offset {at}: {e.reason}); save it as UTF-8"
