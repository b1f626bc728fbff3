"""The code sandbox stops what a model-written program must not do, and records it as failed."""

from __future__ import annotations

import socket
import sys
import threading
import time

import pytest

from genius.evaluation.sandbox import Limits, landlock_abi, network_namespace_available, run_program

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's limits are Linux ones")
FAST = Limits(timeout_s=3, cpu_s=5, memory_mb=512)


def test_a_passing_and_a_failing_program():
    assert run_program("assert sum([1, 2]) == 3", FAST).status == "passed"
    failed = run_program("assert sum([1, 2]) == 4", FAST)
    assert failed.status == "failed" and "AssertionError" in failed.stderr


def test_files_beside_it_and_the_marker_of_a_finished_run():
    r = run_program("print(open('data.txt').read())\nprint('M')", FAST, files={"data.txt": "given"}, marker="M")
    assert r.status == "passed" and r.stdout.startswith("given")
    assert run_program("print('not the marker')", FAST, marker="M").status == "failed"
    assert run_program("print('M')\nprint('after')", FAST, marker="M").status == "failed"  # the last line only
    with pytest.raises(ValueError, match="plain name"):
        run_program("pass", FAST, files={"../up.txt": "x"})


def test_an_endless_loop_is_killed_at_the_time_limit():
    r = run_program("while True:\n    pass\n", Limits(timeout_s=1, cpu_s=30))
    assert r.status == "timeout" and r.seconds < 5


def test_children_left_running_die_with_the_program():
    r = run_program("import os, time\npid = os.fork()\nif pid == 0:\n    time.sleep(60)\nelse:\n    print(pid)\n", FAST)
    assert r.status == "passed" and r.seconds < 3  # not held up by the child
    pid, deadline = int(r.stdout), time.monotonic() + 5
    while _running(pid) and time.monotonic() < deadline:  # SIGKILL is delivered asynchronously
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_too_much_memory_fails_instead_of_taking_the_machine():
    r = run_program("x = bytearray(2 * 1024 ** 3)\n", FAST)
    assert r.status == "failed" and "MemoryError" in r.stderr


def test_cpu_limit_stops_a_program_that_forks_to_dodge_the_clock():
    r = run_program("import os\nfor _ in range(100):\n    os.fork()\n", Limits(timeout_s=2, cpu_s=2))
    assert r.status in ("failed", "timeout")


@pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock: writes outside are not blocked")
def test_it_cannot_touch_the_run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "samples.jsonl").write_text("kept\n")
    program = (f"import os, shutil\nopen({str(run / 'evil.txt')!r}, 'w').write('x')\n")
    assert run_program(program, FAST).status == "failed"
    assert run_program(f"import os\nos.remove({str(run / 'samples.jsonl')!r})\n", FAST).status == "failed"
    assert run_program(f"print(open({str(run / 'samples.jsonl')!r}).read())\n", FAST).status == "failed"
    assert sorted(p.name for p in run.iterdir()) == ["samples.jsonl"]
    assert (run / "samples.jsonl").read_text() == "kept\n"


def test_it_writes_in_its_own_directory_which_then_goes():
    r = run_program("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n", FAST)
    assert r.status == "passed"
    import os

    assert not os.path.exists(r.stdout.strip())


@pytest.mark.skipif(landlock_abi() < 4 and not network_namespace_available(),
                    reason="neither Landlock TCP rules nor a network namespace here: sockets are not blocked")
def test_it_cannot_open_a_connection():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(3)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(_accept(server)))
    thread.start()
    r = run_program(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hi')\n", FAST)
    thread.join()
    server.close()
    assert r.status == "failed"
    assert accepted == [None]


def _accept(server: socket.socket):
    try:
        conn, _ = server.accept()
    except OSError:
        return None
    conn.close()
    return "connected"


def test_the_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    r = run_program("import os\nprint(sorted(os.environ))\n", FAST)
    assert r.status == "passed" and "OPENAI_API_KEY" not in r.stdout and "secret" not in r.stdout
