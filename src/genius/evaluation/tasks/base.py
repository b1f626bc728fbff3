"""What a benchmark task is, and the registry that other code extends.

A ``Task`` knows how to get its items (a reader for its official file format plus an optional
hub id, or a generator function for built-in problems), its answer type (its entry in
``genius.evaluation.answers.ANSWER_TYPES`` gives the answer instruction of the prompt, the
extractor and the comparison) and how to check an answer. Three fields change how a task is
evaluated: ``group_by`` (metrics per value of a meta key, e.g. per MMLU subject),
``executes_code`` (answers are run: refused without ``--allow-code-execution``) and ``judge``
(answers are scored by an LLM judge's protocol, not checked against a gold answer). Two change
how it is asked and read: ``system`` (a benchmark's own system prompt) and ``options`` (settings
of the evaluation its reader takes, e.g. LiveCodeBench's release and dates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genius.errors import UserError

AnswerType = Literal["number", "math", "choice", "yesno", "name", "text", "code", "judged"]
"""The keys of genius.evaluation.answers.ANSWER_TYPES."""
JudgeProtocol = Literal["arena_hard", "alpaca_eval", "wildbench", "wildbench_reward"]
"""The judging protocols of genius.evaluation.judge (``PROTOCOLS``)."""


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    """The problem as the model sees it (options included for multiple choice)."""
    gold: str
    """The reference answer: a number, LaTeX, an option label, or Yes/No."""
    labels: tuple[str, ...] = ()
    """Option labels of a multiple-choice item, in display order ("A".."E" or ARC's "1".."5"); for
    answer type ``name``, the names the answer is one of."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Anything else worth keeping in samples.jsonl (subject, level, domain...)."""


@dataclass(frozen=True)
class HubSource:
    id: str
    config: str | None
    split: str
    to_item: Callable[[dict, int], Item] | None = None
    """Row of the hub dataset (and its index) -> Item."""
    to_items: Callable[[list[dict]], list[Item]] | None = None
    """All rows at once -> items, instead of ``to_item`` (ids numbered per subject, say)."""
    download: Callable[..., Path] | None = None
    """For a hub dataset read as files rather than a table (LiveCodeBench's JSONL, whose
    loading script ``datasets`` no longer runs; WB-Reward's rows and reference answers, two
    datasets): the task's options -> the local folder its files were downloaded to, read by the
    task's ``read`` like a local folder."""


@dataclass(frozen=True)
class Task:
    name: str
    answer_type: AnswerType
    description: str
    read: Callable[[Path], list[Item]] | None = None
    """Official format reader: a path (what ``files`` matched inside the task folder) -> items."""
    files: tuple[str, ...] = ()
    """Glob patterns tried in order inside the task folder; the first match is read."""
    format: str = ""
    """One line describing the expected file format, for error messages."""
    folder: str = ""
    """Subfolder of a data dir holding this task's files (default: the task name)."""
    hub: HubSource | None = None
    generate: Callable[[int, int], list[Item]] | None = None
    """For built-in problems: (n, seed) -> items. Such a task needs no data file."""
    default_n: int = 100
    """How many items a generated task makes when no limit is given."""
    few_shot: str | None = None
    """Which exemplar pool of genius.evaluation.prompts the few-shot presets use ("gsm8k", "math")."""
    instruction: str | None = None
    """Answer instruction overriding the one of the answer type."""
    system: str | None = None
    """System prompt of the benchmark's own protocol, replacing the preset's (LiveCodeBench)."""
    options: tuple[str, ...] = ()
    """EvalConfig fields this task's reader takes as keyword arguments (LiveCodeBench: its
    release and contest dates); ``read`` and ``hub.download`` get them."""
    extract_fn: Callable[[str, Item], str | None] | None = None
    """Custom extractor (response, item) -> answer; default: the one of the answer type."""
    check_fn: Callable[[str | None, Item], bool] | None = None
    """Custom correctness (extracted, item) -> bool; default: the one of the answer type."""
    group_by: str | None = None
    """A key of the items' ``meta``: metrics are also given per value of it (MMLU: "subject")."""
    executes_code: bool = False
    """Checking an answer runs model-written code (genius.evaluation.sandbox): evaluation refuses
    the task unless code execution is allowed."""
    judge: JudgeProtocol | None = None
    """Answers are scored by an LLM judge with this protocol (answer type "judged"); ``meta``
    holds the ``reference`` answer the model's is judged against."""

    @property
    def data_folder(self) -> str:
        return self.folder or self.name

    def extract(self, response: str, item: Item) -> str | None:
        from genius.evaluation.answers import answer_spec

        if self.extract_fn is not None:
            return self.extract_fn(response, item)
        return answer_spec(self.answer_type).extract(response, item.labels)

    def check(self, extracted: str | None, item: Item) -> bool:
        if self.check_fn is not None:
            return self.check_fn(extracted, item)
        return self.same(extracted, item.gold)

    def same(self, a: str | None, b: str | None) -> bool:
        """Whether two answers are the same (correctness, and grouping votes for maj@n)."""
        from genius.evaluation.answers import answer_spec

        if a is None or b is None:
            return False
        return answer_spec(self.answer_type).same(a, b)

    def load(self, source: Path | None, *, limit: int | None = None, seed: int = 0,
             options: Mapping[str, Any] | None = None) -> list[Item]:
        """Items from ``source`` (a file or the task's folder), from the hub when ``source`` is
        None, or from the generator. ``limit`` keeps the first items in file order; ``options``
        are the values of the task's ``options`` fields."""
        if self.generate is not None:
            return self.generate(limit if limit is not None else self.default_n, seed)
        options = dict(options or {})
        if source is None:
            items = self._load_hub(options)
        else:
            items = self.read_path(Path(source), options)
        return items[:limit] if limit is not None else items

    def read_path(self, source: Path, options: Mapping[str, Any] | None = None) -> list[Item]:
        if self.read is None:
            raise UserError(f"task {self.name}: reads no files")
        expected = f"{' or '.join(self.files)} ({self.format})"
        if source.is_dir():
            for pattern in self.files:
                found = sorted(source.glob(pattern))
                if found:
                    source = found[0]
                    break
            else:
                raise UserError(f"task {self.name}: no data file in {source}: expected {expected}")
        elif not source.exists():
            raise UserError(f"task {self.name}: {source} not found: expected a folder holding {expected}")
        items = self.read(source, **dict(options or {}))
        if not items:
            raise UserError(f"{source}: no items found: expected {self.format}")
        return items

    def _load_hub(self, options: dict[str, Any]) -> list[Item]:
        from genius.models import hub_reachable

        where = f"a folder with {self.data_folder}/{self.files[0] if self.files else ''} ({self.format})"
        if self.hub is None:
            raise UserError(f"task {self.name}: no data given: pass --data-dir, {where}")
        if not hub_reachable():
            raise UserError(f"task {self.name}: no data given and the hub is offline: pass --data-dir, {where} "
                            f"(or go online to load {self.hub.id})")
        if self.hub.download is not None:
            return self.read_path(self.hub.download(**options), options)
        from datasets import load_dataset

        rows = [dict(row) for row in load_dataset(self.hub.id, self.hub.config, split=self.hub.split)]
        if self.hub.to_items is not None:
            return self.hub.to_items(rows)
        assert self.hub.to_item is not None, f"task {self.name}: its HubSource has neither to_item nor to_items"
        return [self.hub.to_item(row, i) for i, row in enumerate(rows)]


_REGISTRY: dict[str, Task] = {}


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Add a task under its name (an existing name is an error unless ``replace``)."""
    if task.name in _REGISTRY and not replace and _REGISTRY[task.name] is not task:
        raise ValueError(f"task '{task.name}' is already registered")
    if task.generate is None and task.read is None and task.hub is None:
        raise ValueError(f"task '{task.name}' has no way to get items (read, hub or generate)")
    if (task.answer_type == "judged") != (task.judge is not None):
        raise ValueError(f"task '{task.name}': a judge protocol goes with answer type 'judged' and only with it")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown task '{name}': known tasks are {', '.join(list_tasks())}") from None


def list_tasks() -> list[str]:
    return sorted(_REGISTRY)
