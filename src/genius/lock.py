"""One writer per output folder: advisory locks that die with their process.

A command that writes a run or output folder holds it for as long as it writes::

    with hold_folder(out):                  # one process writes the whole folder
    with hold_folder(out, shard=(i, n)):    # shard i of n: a --shard job, or one rank of a launch

A whole-folder writer takes an exclusive ``flock`` on ``OUT/.genius.lock``. A shard writer takes a
shared one on it plus an exclusive one on ``OUT/.genius.lock.<i>``. So separate ``--shard i/n``
jobs write one folder at once, while the same shard twice, shards of another count, a second
launch, or a whole-folder writer beside shard writers are refused: a ``FolderInUse`` (a UserError,
exit 2) naming the folder and the holder (pid, host, command line, since when), which the holder
wrote into its lock file once it held the lock.

The kernel drops a ``flock`` when its process dies, so a SIGKILLed writer leaves no stale lock:
its file stays, and what it says is only read while a live process holds that file. Every lock is
taken under a short exclusive guard (``OUT/.genius.lock.guard``, held for milliseconds), so a
refused writer's look at who holds the shard files races with no one taking them.

Under one launch (torchrun) every rank holds its shard (rank, world), ``Ranks.lock_shard``: rank 0
merges with the shared lock it holds while the others wait on files. A hold nested in one of the
same process on the same folder (the merge run by the last shard writer) passes through; a hold
taken in a forked child is a writer of its own. Across nodes the lock is as good as the shared
filesystem's ``flock`` (Linux NFS emulates it with byte-range locks; Lustre needs ``-o flock``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from genius.errors import UserError

Shard = tuple[int, int]  # (index, count), as genius.ranks hands it out
LOCK_NAME = ".genius.lock"
GUARD_NAME = ".genius.lock.guard"

# realpath of a folder this process holds -> the pid that took it (a forked child holds nothing)
_HELD: dict[str, int] = {}


class FolderInUse(UserError):
    """Another live process writes the folder (or this shard of it)."""


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` that waits for its turn; released when the block ends
    or the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def hold_folder(folder: str | Path, shard: Shard | None = None) -> Iterator[Path]:
    """Hold ``folder`` (created if absent) as its one whole-folder writer (``shard`` None) or as the
    writer of shard ``(i, n)``, until the block ends; yields the folder. Refused: FolderInUse."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    if _HELD.get(key) == os.getpid():
        yield folder
        return
    fds = _take(folder, shard)
    _HELD[key] = os.getpid()
    try:
        yield folder
    finally:
        _HELD.pop(key, None)
        for fd in fds:  # the folder lock first: never a held folder lock beside free shard locks
            os.close(fd)


def _take(folder: Path, shard: Shard | None) -> list[int]:
    """Open and lock the files of a hold under the guard; returns their fds (folder lock first)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{folder}: is a file, expected an output folder") from None
    except OSError as e:
        raise _unwritable(folder, e) from None
    guard = _open(folder, GUARD_NAME)
    taken: list[int] = []
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        main = _open(folder, LOCK_NAME)
        taken.append(main)
        if shard is None:
            if not _try(main, fcntl.LOCK_EX):
                raise _busy_whole(folder)
            _write_holder(main, folder, None)
            return taken
        if not _try(main, fcntl.LOCK_SH):
            raise FolderInUse(f"{folder}: cannot write shard {shard[0]}/{shard[1]}: the whole folder is being written "
                              f"by {_describe(_read_holder(main))}; {_ADVICE}")
        mine = _open(folder, _shard_name(shard[0]))
        taken.append(mine)
        if not _try(mine, fcntl.LOCK_EX):
            raise FolderInUse(f"{folder}: shard {shard[0]} is already being written by "
                              f"{_describe(_read_holder(mine))}; {_ADVICE}")
        for other in _live_shard_holders(folder, skip=shard[0]):
            count = (other.get("shard") or [None, "?"])[1]
            if count != shard[1]:
                raise FolderInUse(f"{folder}: cannot write shard {shard[0]}/{shard[1]}: {_describe(other)} writes "
                                  f"it in {count} shards; {_ADVICE}")
        _write_holder(mine, folder, shard)
        return taken
    except BaseException:
        for fd in taken:
            os.close(fd)
        raise
    finally:
        os.close(guard)


_ADVICE = "wait for it to end (or stop it), or use another output folder"


def _shard_name(index: int) -> str:
    return f"{LOCK_NAME}.{index}"


def _open(folder: Path, name: str) -> int:
    try:
        return os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except IsADirectoryError:
        raise UserError(f"{folder / name}: is a folder; remove it (genius keeps its lock there)") from None
    except OSError as e:
        raise _unwritable(folder, e) from None


def _unwritable(folder: Path, e: OSError) -> UserError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"{folder}: no space left on the device (free some, or use an output folder on another disk)")
    return UserError(f"{folder}: cannot write in this folder ({e.strerror}); make it writable or use another "
                     "output folder")


def _try(fd: int, how: int) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _write_holder(fd: int, folder: Path, shard: Shard | None) -> None:
    """Say who holds the lock (only the holder of an exclusive lock writes its file)."""
    words = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command_line(),
             "since": time.strftime("%Y-%m-%d %H:%M:%S"), "shard": list(shard) if shard else None}
    data = (json.dumps(words) + "\n").encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError as e:
        raise _unwritable(folder, e) from None


def _command_line() -> str:
    """This process's command, short and on one line (a refusal is one line)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    program = {"-c": "python -c", "cli.py": "python -m genius.cli"}.get(program, shlex.quote(program))
    text = " ".join([program, *map(shlex.quote, sys.argv[1:])]).replace("\n", "\\n")
    return text if len(text) <= 200 else text[:197] + "..."


def _read_holder(fd: int) -> dict:
    try:
        words = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except ValueError:
        return {}
    return words if isinstance(words, dict) else {}


def _live_shard_holders(folder: Path, skip: int | None = None) -> list[dict]:
    """What the live holders of shard locks say. Only called under the guard: a shard file that
    takes a shared lock now has no holder, and no one is about to take it."""
    holders = []
    for path in sorted(folder.glob(f"{LOCK_NAME}.*")):
        index = path.name[len(LOCK_NAME) + 1:]
        if not index.isdigit() or int(index) == skip:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if _try(fd, fcntl.LOCK_SH):
                continue
            holders.append(_read_holder(fd))
        finally:
            os.close(fd)
    return holders


def _busy_whole(folder: Path) -> FolderInUse:
    shards = _live_shard_holders(folder)
    if shards:
        who = "; ".join(_describe(h) for h in shards[:4]) + (f"; and {len(shards) - 4} more" if len(shards) > 4 else "")
        return FolderInUse(f"{folder}: being written by {len(shards)} shard process(es) ({who}); {_ADVICE}")
    with contextlib.suppress(OSError):
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return FolderInUse(f"{folder}: already being written by {_describe(_read_holder(fd))}; {_ADVICE}")
        finally:
            os.close(fd)
    return FolderInUse(f"{folder}: already being written by another process; {_ADVICE}")


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process"
    shard = holder.get("shard")
    part = f" as shard {shard[0]}/{shard[1]}" if isinstance(shard, list) and len(shard) == 2 else ""
    return (f"pid {holder['pid']} on {holder.get('host', '?')}{part} (`{holder.get('command', '?')}`, "
            f"since {holder.get('since', '?')})")
