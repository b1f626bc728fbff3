"""genius.lock: one writer per output folder, with real processes holding and dying."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genius.errors import UserError
from genius.lock import FolderInUse, hold_folder

# Holds FOLDER (as shard I/N when given), writes a file there, says so, and waits to be killed.
HOLDER = """
import sys, time
from pathlib import Path
from genius.lock import hold_folder
folder = Path(sys.argv[1])
shard = tuple(int(x) for x in sys.argv[2].split("/")) if len(sys.argv) > 2 else None
with hold_folder(folder, shard):
    (folder / f"written-by-{shard[0] if shard else 'all'}.txt").write_text("kept")
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(folder: Path, shard: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), *([shard] if shard else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


@pytest.fixture
def holders():
    procs: list[subprocess.Popen] = []

    def start(folder: Path, shard: str | None = None) -> subprocess.Popen:
        procs.append(start_holder(folder, shard))
        return procs[-1]

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()


def test_a_second_writer_is_refused_naming_the_holder_and_the_folder_stays(tmp_path: Path, holders) -> None:
    out = tmp_path / "run"
    first = holders(out)
    with pytest.raises(FolderInUse) as refused:
        with hold_folder(out):
            (out / "written-by-all.txt").write_text("overwritten")
    message = str(refused.value)
    assert isinstance(refused.value, UserError) and "\n" not in message
    assert str(out) in message and f"pid {first.pid} on {socket.gethostname()}" in message
    assert "(`python -c " in message and "since 20" in message
    assert (out / "written-by-all.txt").read_text() == "kept"
    with pytest.raises(FolderInUse, match="the whole folder is being written by pid"):
        with hold_folder(out, (0, 2)):
            pass


def test_a_sigkilled_writer_leaves_no_stale_lock(tmp_path: Path, holders) -> None:
    out = tmp_path / "run"
    first = holders(out)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with hold_folder(out) as held:  # free again; the dead holder's lock file may stay
        assert held == out
    assert (out / ".genius.lock").is_file() and (out / "written-by-all.txt").read_text() == "kept"


def test_separate_shard_jobs_share_a_folder_but_not_a_shard(tmp_path: Path, holders) -> None:
    out = tmp_path / "run"
    zero = holders(out, "0/2")
    with hold_folder(out, (1, 2)):  # the other shard of the same count: allowed
        pass
    with pytest.raises(FolderInUse, match=rf"shard 0 is already being written by pid {zero.pid} .* as shard 0/2"):
        with hold_folder(out, (0, 2)):
            pass
    with pytest.raises(FolderInUse, match=rf"being written by 1 shard process\(es\) \(pid {zero.pid} "):
        with hold_folder(out):
            pass
    with pytest.raises(FolderInUse, match="writes it in 2 shards"):  # a launch of another size, at the same time
        with hold_folder(out, (2, 3)):
            pass


def test_a_second_launch_into_the_same_folder_is_refused(tmp_path: Path, holders) -> None:
    out = tmp_path / "run"
    ranks = [holders(out, "0/2"), holders(out, "1/2")]
    for i in range(2):
        with pytest.raises(FolderInUse, match=f"pid {ranks[i].pid}"):
            with hold_folder(out, (i, 2)):
                pass
    with pytest.raises(FolderInUse, match=r"2 shard process\(es\)"):
        with hold_folder(out):
            pass
    for p in ranks:
        p.kill()
        p.wait()
    with hold_folder(out):
        pass


def test_writers_started_at_once_get_one_winner(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = ("import sys, time\nfrom genius.lock import hold_folder, FolderInUse\n"
            "try:\n    with hold_folder(sys.argv[1]):\n        time.sleep(1.5)\n    print('won')\n"
            "except FolderInUse:\n    print('refused')\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert results == ["refused", "refused", "won"]


def test_a_hold_nested_in_the_same_process_passes_through(tmp_path: Path) -> None:
    with hold_folder(tmp_path / "run", (0, 2)):
        with hold_folder(tmp_path / "run"):  # the merge of the last shard writer
            pass
        with hold_folder(tmp_path / "run" / "sub"):  # another folder: a lock of its own
            pass


def test_a_read_only_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    if os.geteuid() == 0:  # root writes through a chmod: make the folder refuse like a read-only mount
        monkeypatch.setattr(os, "open", read_only_open)
    else:
        out.chmod(0o555)
    try:
        with pytest.raises(UserError) as refused:
            with hold_folder(out):
                pass
    finally:
        out.chmod(0o755)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{out}: cannot write in this folder")
    assert "another output folder" in message


def test_a_file_where_the_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(UserError, match="is a file, expected an output folder"):
        with hold_folder(tmp_path / "out"):
            pass


def test_the_ranks_of_a_launch_hold_their_own_shard() -> None:
    from genius.ranks import Ranks

    launch = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}
    assert Ranks.from_env(launch).lock_shard == (5, 8)
    assert Ranks.from_env({}).lock_shard is None
