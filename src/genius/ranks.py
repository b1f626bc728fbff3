"""Several processes on one run: who generates what, who merges, who waits.

Under ``torchrun`` or ``accelerate launch`` (one or several nodes) every process sees RANK,
WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE. Training always uses every process (accelerate).
The generation stages (sampling, evaluation, baseline data) run in one of two modes, set by
``parallel`` in a run config or ``--parallel`` on a command:

- ``rank``: every process generates its share of the items on its own GPU (cuda:LOCAL_RANK),
  for models that fit one GPU;
- ``node``: the first process of each node generates the node's share with one engine over all
  the node's GPUs (e.g. vLLM with ``engine_options.tensor_parallel_size: 8``); the node's other
  processes wait.

Item i belongs to shard i mod n (n = processes, or nodes). Each shard writes its own files and
a marker when its share is done; the process of rank 0 waits for every marker, merges the
shards once, in item order, and (in ``genius run``) marks the stage done, which the others wait
for. Processes started by hand (``--shard i/n``, e.g. separate jobs) do not wait for each other:
the last to finish merges, under a file lock.

The waiting is on files in the run folder (a shared filesystem across nodes), not a collective:
a generation stage can run for hours, longer than any process-group timeout, and needs no
process group. When a process dies, torchrun stops the others; rerunning the same command
resumes every shard from its files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genius.errors import UserError
from genius.lock import Shard, file_lock

ParallelMode = Literal["rank", "node"]
PARALLEL_MODES = ("rank", "node")
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of a launch (all 0/1 for a single process)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Ranks":
        env = dict(os.environ) if env is None else env

        def number(name: str, default: int) -> int:
            value = env.get(name, "")
            try:
                return int(value) if value.strip() else default
            except ValueError:
                raise UserError(f"environment variable {name}={value!r}: expected an integer") from None

        world = number("WORLD_SIZE", 1)
        ranks = cls(rank=number("RANK", 0), world=world, local_rank=number("LOCAL_RANK", 0),
                    local_world=number("LOCAL_WORLD_SIZE", world))
        if not (0 <= ranks.rank < world and 0 <= ranks.local_rank < ranks.local_world and world % ranks.local_world == 0):
            raise UserError(f"RANK={ranks.rank}, WORLD_SIZE={world}, LOCAL_RANK={ranks.local_rank}, "
                            f"LOCAL_WORLD_SIZE={ranks.local_world}: not a consistent launch (use torchrun)")
        return ranks

    @property
    def launched(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def generates(self, mode: ParallelMode) -> bool:
        """Whether this process runs an engine in the generation stages."""
        return mode == "rank" or self.local_rank == 0

    def shard(self, mode: ParallelMode) -> Shard | None:
        """(index, count) of this process's share of the items (None: it has them all)."""
        if mode == "rank":
            return (self.rank, self.world) if self.world > 1 else None
        nodes = self.world // self.local_world
        return (self.rank // self.local_world, nodes) if nodes > 1 else None

    @property
    def lock_shard(self) -> Shard | None:
        """What this process holds its output folder as (genius.lock.hold_folder): its own shard
        (rank, world) under a launch, so that the ranks of one launch write together and a
        second launch or a whole-folder writer is refused; None (the whole folder) alone."""
        return (self.rank, self.world) if self.launched else None

    def device(self, device: str, mode: ParallelMode) -> str:
        """The device of this process's engine: its own GPU in rank mode (auto/cuda -> cuda:LOCAL_RANK)."""
        if mode == "rank" and self.local_world > 1 and device in ("auto", "cuda"):
            import torch

            if torch.cuda.is_available():
                return f"cuda:{self.local_rank}"
        return device


def shard_suffix(shard: Shard | None) -> str:
    """The file-name part of a shard's files: '' for a one-process run, '.<i>-of-<n>' else."""
    return "" if shard is None else f".{shard[0]}-of-{shard[1]}"


def owns(shard: Shard | None, index: int) -> bool:
    """Whether item ``index`` (its position in the item list) belongs to ``shard``."""
    return shard is None or index % shard[1] == shard[0]


def parse_shard(text: str | None, mode: ParallelMode = "rank", env: dict[str, str] | None = None) -> Shard | None:
    """``"i/n"`` -> (i, n); without it, this process's share under a launcher (None alone)."""
    if text is None:
        return Ranks.from_env(env).shard(mode)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard expects i/n such as 0/2, got '{text}'") from None
    if n < 1 or not 0 <= i < n:
        raise UserError(f"--shard {text}: need 0 <= i < n")
    return None if n == 1 else (i, n)


def wait_for(done: Callable[[], bool], what: str, log: Callable[[str], None] = print) -> None:
    """Poll until ``done()``; say what it waits for now and then (a wait can last hours)."""
    start = last = time.monotonic()
    while not done():
        if time.monotonic() - last > 600:
            log(f"still waiting for {what} ({(time.monotonic() - start) / 60:.0f} min)")
            last = time.monotonic()
        time.sleep(POLL_SECONDS)


def _marker(folder: Path, name: str, shard: Shard) -> Path:
    return folder / f".{name}.done{shard_suffix(shard)}"


def start_share(folder: Path, name: str, shard: Shard | None) -> None:
    """Before a shard works: its marker from an earlier attempt no longer holds."""
    if shard is not None:
        _marker(folder, name, shard).unlink(missing_ok=True)


def finish_share(folder: Path, name: str, shard: Shard | None, merge: Callable[[], None], *,
                 together: bool, log: Callable[[str], None] = print) -> bool:
    """This shard's share of ``name`` in ``folder`` is done: mark it, and merge all shards once.

    ``together``: the shards are the processes of one launch; shard 0 waits for the others and
    merges. Else (separate jobs) whoever finds every marker under the lock merges. Returns
    whether this process merged (a one-process run always does)."""
    if shard is None:
        merge()
        return True
    folder.mkdir(parents=True, exist_ok=True)
    _marker(folder, name, shard).touch()
    markers = [_marker(folder, name, (i, shard[1])) for i in range(shard[1])]
    if together:
        if shard[0] != 0:
            return False
        wait_for(lambda: all(m.exists() for m in markers), f"the other {shard[1] - 1} shards of {folder / name}", log)
        merge()
        _unlink(markers)
        return True
    with file_lock(folder / f".{name}.lock"):
        if not all(m.exists() for m in markers):
            return False
        merge()
        # Under the lock: a shard that takes it next must not find every marker again and merge twice.
        _unlink(markers)
    return True


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
