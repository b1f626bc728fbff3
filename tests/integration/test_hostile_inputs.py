"""Every command on hostile targets: bytes that are not UTF-8, a folder where a file belongs, a
read-only output folder and a full disk each end in one error line and exit 2, never a traceback,
and what was in the folders before is still there.

The read-only folder and the full disk are simulated in-process (root writes through a chmod and
mounting a small tmpfs needs root): every write under the target raises what the kernel would,
EROFS when the file is opened, ENOSPC when bytes are written. Lines that a command prints on stderr
before it fails (the engine it chose) are allowed; the error is the one line that starts with
``genius CMD:``, the last.

Below them: the other tracebacks issue 17 lists (model folders, devices, --set, list YAML), and a
second writer of a folder that another process holds (genius.lock), through each command.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from genius.cli import main
from genius.lock import LOCK_NAME
from genius.tiny import write_tiny_pairs

SMALL = ["--beams", "1", "--candidates", "2", "--steps", "2", "--max-step-tokens", "4", "--max-rollout-tokens", "6",
         "--unfinished", "keep", "--no-progress", "--dtype", "fp32", "--device", "cpu"]
COMMANDS = ("sample", "pairs", "train", "eval", "baseline", "merge", "run", "generate", "report")
TARGETS = ("not-utf8", "folder", "read-only", "full-disk")
BAD = b"caf\xe9 au lait"  # latin-1, not UTF-8


# --- simulated file systems ---------------------------------------------------------------------

def _under(path: object, root: Path) -> bool:
    try:
        return os.path.abspath(os.fspath(path)).startswith(str(root))
    except TypeError:  # an fd, not a path
        return False


WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _writes(mode: str) -> bool:
    return any(c in mode for c in "wax+")


def read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """``root`` and everything under it behave as on a read-only mount (EROFS on every change)."""

    def refuse(path: object) -> OSError:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_os_open = io.open, os.open

    def fake_open(file, mode="r", *args, **kwargs):
        if _writes(mode) and _under(file, root):
            raise refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and _under(path, root):
            raise refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded(real: Callable) -> Callable:
        def call(path, *args, **kwargs):
            if _under(path, root) or any(_under(a, root) for a in args[:1] if isinstance(a, (str, Path))):
                raise refuse(path)
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    for name in ("mkdir", "rename", "replace", "unlink", "remove", "rmdir", "truncate"):
        monkeypatch.setattr(os, name, guarded(getattr(os, name)))


class _FullDiskFile:
    """A file whose writes fail as on a full disk (the open succeeded, the bytes do not fit)."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def writelines(self, lines):
        self.write("")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __iter__(self):
        return iter(self._f)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def full_disk(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Writing bytes to a file under ``root`` fails with ENOSPC, as on a full file system."""
    real_open, real_os_open, real_fdopen, real_write = io.open, os.open, os.fdopen, os.write
    full_fds: set[int] = set()

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _FullDiskFile(f) if _writes(mode) and _under(file, root) else f

    def fake_os_open(path, flags, *args, **kwargs):
        fd = real_os_open(path, flags, *args, **kwargs)
        if flags & WRITE_FLAGS and _under(path, root):
            full_fds.add(fd)
        return fd

    def fake_fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return _FullDiskFile(f) if fd in full_fds else f

    def fake_write(fd, data):
        if fd in full_fds:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "fdopen", fake_fdopen)
    monkeypatch.setattr(os, "write", fake_write)
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: fake_write(fd, data))


# --- inputs of each command ---------------------------------------------------------------------

def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spoil(path: Path) -> Path:
    """Put latin-1 bytes into the second line of a text file (the first if it has one)."""
    lines = path.read_bytes().split(b"\n")
    at = 1 if len(lines) > 2 else 0
    lines[at] = lines[at].replace(b'"', b'"' + BAD, 1) if b'"' in lines[at] else lines[at] + b" # " + BAD
    path.write_bytes(b"\n".join(lines))
    return path


def as_folder(path: Path) -> Path:
    """Replace the file at ``path`` by a folder of that name."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def sharded_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A genius sample run in 2 shards (merged by the last), the input of pairs and merge."""
    tmp = tmp_path_factory.mktemp("sharded")
    queries = write_jsonl(tmp / "q.jsonl", [{"instruction": f"Add {i} and 1.", "input": ""} for i in range(2)])
    for shard in ("0/2", "1/2"):
        assert main(["sample", str(queries), "--out", str(tmp / "run"), "--model", str(tiny_model_dir),
                     "--shard", shard, *SMALL]) == 0
    assert (tmp / "run" / "trees.jsonl").is_file()
    return tmp / "run"


def make_run_for_report(run: Path) -> Path:
    (run / "config.yaml").parent.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"model": "tiny", "method": "genius", "train": {"loss": "aco"}}))
    for folder, correct in (("eval/base", [True, False]), ("round1/eval", [True, True])):
        task = run / folder / "synthetic"
        task.mkdir(parents=True)
        (task / "metrics.json").write_text(json.dumps({"task": "synthetic", "accuracy": sum(correct) / 2, "n": 2,
                                                       "ci95": [0.1, 0.9]}, indent=1))
        write_jsonl(task / "samples.jsonl", [{"id": f"q{i}", "correct": c} for i, c in enumerate(correct)])
    return run


class Case:
    """One command's argv in a tmp folder: ``out`` is the folder it writes, ``spoil_target`` the
    input the not-UTF-8 case spoils, ``folder_target`` the file the folder case turns into a folder."""

    def __init__(self, argv: list[str], out: Path, spoil_target: Path, folder_target: Path):
        self.argv, self.out, self.spoil_target, self.folder_target = argv, out, spoil_target, folder_target


def make_case(command: str, tmp: Path, tiny: Path, sharded: Callable[[], Path]) -> Case:
    model = ["--model", str(tiny)]
    if command == "sample":
        queries = write_jsonl(tmp / "q.jsonl", [{"instruction": f"Add {i} and 1.", "input": ""} for i in range(2)])
        return Case(["sample", str(queries), "--out", str(tmp / "out"), *model, *SMALL], tmp / "out", queries, queries)
    if command == "pairs":
        trees = Path(shutil.copy(sharded() / "trees.jsonl", tmp / "trees.jsonl"))
        return Case(["pairs", str(trees), "--out", str(tmp / "out" / "pairs.jsonl"), "--negatives", "lowest",
                     "--unfinished", "keep"],
                    tmp / "out", trees, trees)
    if command == "train":
        pairs = write_tiny_pairs(tmp / "pairs.jsonl", 4)
        return Case(["train", *model, "--data", str(pairs), "--out", str(tmp / "out"), "--cpu", "--max-steps", "1",
                     "--set", "per_device_batch_size=2", "--set", "save_every=0", "--set", "max_length=128",
                     "--set", f"reference_cache_dir={tmp / 'rc'}"], tmp / "out", pairs, pairs)
    if command == "eval":
        data = write_jsonl(tmp / "data" / "gsm8k" / "test.jsonl",
                           [{"question": f"Tom has {i} apples and buys 2 more. How many?",
                             "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"} for i in range(2)])
        return Case(["eval", *model, "--tasks", "gsm8k", "--limit", "2", "--max-new-tokens", "4", "--preset",
                     "zero-shot", "--data-dir", str(tmp / "data"), "--out", str(tmp / "out"), "--dtype", "fp32",
                     "--device", "cpu"], tmp / "out", data, data)
    if command == "baseline":
        corpus = write_jsonl(tmp / "corpus.jsonl", [{"instruction": f"What is {i} plus {i}?", "input": "",
                                                     "output": f"{i} plus {i} is {2 * i}."} for i in range(2)])
        return Case(["baseline", "sft", "--queries", str(corpus), "--out", str(tmp / "out")], tmp / "out", corpus,
                    corpus)
    if command == "merge":
        run = Path(shutil.copytree(sharded(), tmp / "out"))
        return Case(["merge", str(run)], run, run / "trees.1-of-2.jsonl", run / "sample_config.yaml")
    if command == "run":
        cfg = tmp / "cfg.yaml"
        cfg.write_text(yaml.safe_dump({
            "model": str(tiny), "run_dir": str(tmp / "out"), "dtype": "fp32", "device": "cpu", "rounds": 1,
            "queries": {"source": "synthetic", "count": 2},
            "sample": {"beams": 1, "candidates": 2, "steps": 1, "max_step_tokens": 4, "max_rollout_tokens": 4,
                       "unfinished": "keep"},
            "train": {"max_steps": 1, "per_device_batch_size": 2, "max_length": 128},
            "eval": {"tasks": ["synthetic"], "limit": 2, "max_new_tokens": 4}}))
        return Case(["run", str(cfg)], tmp / "out", cfg, cfg)
    if command == "generate":
        copy = Path(shutil.copytree(tiny, tmp / "model"))
        return Case(["generate", "hi", "--model", str(copy), "--max-new-tokens", "2", "--dtype", "fp32", "--device",
                     "cpu"], tmp / "out", copy / "config.json", copy / "config.json")
    if command == "report":
        run = make_run_for_report(tmp / "out")
        metrics = run / "round1" / "eval" / "synthetic" / "metrics.json"
        return Case(["report", str(run)], run, metrics, metrics)
    raise AssertionError(command)


def _params():
    for command in COMMANDS:
        for target in TARGETS:
            if command == "generate" and target == "read-only":
                continue  # generate writes no file (its full disk is a full stdout)
            yield pytest.param(command, target, id=f"{command}-{target}")


def snapshot(folder: Path, locks: bool = False) -> dict[str, bytes]:
    """Every file under ``folder``; without ``locks`` not the lock files (genius.lock), which hold
    no output: a writer refused by the disk may leave them behind, empty."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and (locks or not p.name.startswith(LOCK_NAME))}


@pytest.mark.parametrize(("command", "target"), list(_params()))
def test_every_command_on_hostile_targets_is_one_line_and_exit_2(
        command: str, target: str, tiny_model_dir: Path, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    case = make_case(command, tmp_path, tiny_model_dir, lambda: request.getfixturevalue("sharded_run"))
    named = None
    if target == "not-utf8":
        named = spoil(case.spoil_target)
    elif target == "folder":
        named = as_folder(case.folder_target)
    before = snapshot(case.out)
    if target == "read-only":
        case.out.mkdir(parents=True, exist_ok=True)
        read_only(monkeypatch, case.out)
    elif target == "full-disk":
        full_disk(monkeypatch, case.out)
        if command == "generate":  # its output is stdout: `genius generate ... > /full/disk/answer.txt`
            monkeypatch.setattr("sys.stdout", _FullDiskFile(io.StringIO()))
    capsys.readouterr()  # what the fixtures printed
    code = main(case.argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"genius {command}")]
    assert "Traceback" not in err and code == 2, err
    assert len(lines) == 1 and err.splitlines()[-1] == lines[0], err
    line = lines[0]
    assert line.startswith(f"genius {command}: error: ")
    if target == "not-utf8":
        assert f"{named}" in line and "not UTF-8" in line and "byte offset" in line, line
    elif target == "folder":
        assert f"{named}" in line and ("folder" in line or "not a file" in line), line
    elif target == "read-only":
        assert str(case.out) in line and ("read-only" in line or "cannot write" in line), line
    else:  # a full disk names no file; the writers of genius.io name theirs
        assert "no space left" in line and (command == "generate" or str(case.out) in line), line
    if target in ("read-only", "full-disk"):
        assert snapshot(case.out) == before  # nothing that was there is lost or torn


# --- the other tracebacks of issue 17, each now one line ------------------------------------------

def _model_copy(tiny: Path, tmp: Path, spoil_it: Callable[[Path], None]) -> str:
    folder = Path(shutil.copytree(tiny, tmp / "model"))
    spoil_it(folder)
    return str(folder)


def _pickle_only(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _custom_code(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="zorblat", auto_map={"AutoModelForCausalLM": "modeling_zorblat.Zorblat"})
    (folder / "config.json").write_text(json.dumps(config))


def _truncated(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])


def _broken_config(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "llama",')


def _damaged_trees(run: Path) -> Path:
    with (run / "trees.1-of-2.jsonl").open("ab") as f:
        f.write(b'{"index": 1, "query_id": "q-2", "steps": [\n')
    return run


# name -> (argv from (tmp folder, tiny model, the sharded run), what its one line says)
OTHERS = {
    "train-pickle-only-model": (lambda t, m, s: ["train", "--model", _model_copy(m, t, _pickle_only), "--data",
                                              str(write_tiny_pairs(t / "p.jsonl", 2)), "--out", str(t / "o"), "--cpu"],
                                "the weights are pickle files only (pytorch_model.bin)"),
    "generate-custom-code": (lambda t, m, s: ["generate", "hi", "--model", _model_copy(m, t, _custom_code)],
                             "pass --trust-remote-code"),
    "generate-truncated-safetensors": (lambda t, m, s: ["generate", "hi", "--model", _model_copy(m, t, _truncated)],
                                       "model.safetensors: damaged safetensors file"),
    "generate-broken-config-json": (lambda t, m, s: ["generate", "hi", "--model", _model_copy(m, t, _broken_config)],
                                    "config.json:1: not valid JSON"),
    "generate-missing-gpu": (lambda t, m, s: ["generate", "hi", "--model", str(m), "--device", "cuda:99"],
                             "device 'cuda:99': "),
    "sample-unknown-device": (lambda t, m, s: ["sample", str(write_jsonl(t / "q.jsonl", [{"instruction": "hi"}])),
                                            "--out", str(t / "o"), "--model", str(m), "--device", "foo"],
                              "device 'foo': not a device; set --device"),
    "train-set-unclosed-list": (lambda t, m, s: ["train", "--data", str(t / "p.jsonl"), "--out", str(t / "o"),
                                              "--set", "beta=[1,"], "beta=[1,"),
    "train-list-yaml": (lambda t, m, s: ["train", "--config", str(t / "list.yaml"), "--out", str(t / "o")],
                        "list.yaml: expected a mapping"),
    "train-unknown-lora-key": (lambda t, m, s: ["train", "--data", str(write_tiny_pairs(t / "p.jsonl", 2)), "--out",
                                             str(t / "o"), "--set", "lora.zzz=1"], "unknown key 'lora.zzz'"),
    "eval-mistyped-int": (lambda t, m, s: ["eval", "--limit", "a"], "argument --limit: invalid int value: 'a' (see "),
    "pairs-bad-tree-record": (lambda t, m, s: ["pairs", str(write_jsonl(t / "trees.jsonl", [{"query_id": "q"}])),
                                            "--out", str(t / "p.jsonl")], "trees.jsonl:1: "),
    "merge-damaged-shard": (lambda t, m, s: ["merge", str(_damaged_trees(Path(shutil.copytree(s(), t / "run"))))],
                            "trees.1-of-2.jsonl:"),
}


@pytest.mark.parametrize("case", list(OTHERS))
def test_the_other_tracebacks_of_issue_17_are_one_line(case: str, tiny_model_dir: Path, tmp_path: Path,
                                                       request: pytest.FixtureRequest,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "list.yaml").write_text("- beta: 1\n")
    write_tiny_pairs(tmp_path / "p.jsonl", 2)
    make_argv, expected = OTHERS[case]
    argv = make_argv(tmp_path, tiny_model_dir, lambda: request.getfixturevalue("sharded_run"))
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"genius {argv[0]}")]
    assert "Traceback" not in err and code == 2, err
    assert len(lines) == 1 and err.splitlines()[-1] == lines[0] and expected in lines[0], err


# --- one writer per output folder (genius.lock), through the commands ----------------------------

HOLDER = ("import sys, time\nfrom genius.lock import hold_folder\n"
          "with hold_folder(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(300)\n")
WRITERS = ("sample", "train", "eval", "baseline", "merge", "run")


@pytest.mark.parametrize("command", WRITERS)
def test_a_second_writer_of_a_folder_is_refused_and_the_folder_kept(
        command: str, tiny_model_dir: Path, tmp_path: Path, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    case = make_case(command, tmp_path, tiny_model_dir, lambda: request.getfixturevalue("sharded_run"))
    case.out.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(case.out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(case.out, locks=True)  # the holder's own lock file says who holds it
        capsys.readouterr()
        code = main(case.argv)
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert code == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith(f"genius {command}: error: {case.out}: already being written by pid "
                                           f"{holder.pid} ")
    assert snapshot(case.out, locks=True) == before
