"""WildBench v2 (Lin et al., 2024; paper Table 2): 1024 real user tasks from WildChat, many of
them conversations, judged by an LLM against each task's checklist (genius.evaluation.wildbench):
``wildbench`` scores each answer 1-10 (WB-Score), ``wildbench_reward`` judges it against a
reference model's answer (WB-Reward; ``--wildbench-reference``, default claude-3-haiku-20240307,
one of the leaderboard's three references).

The model answers the last user turn with the conversation before it as chat turns, the roles
taken by position (user, assistant, user, ...) as WildBench's runner does. Data: the hub's
``allenai/WildBench`` (config ``v2``, split ``test``) when online, or its rows in a file of the
data folder (parquet as on the hub, JSONL or a JSON list): ``session_id`` (or ``id``),
``conversation_input`` (turns with ``content``, the last one the user's), ``checklist`` (list of
strings), ``primary_tag`` and ``secondary_tags``. WB-Reward also needs the reference model's
answers: a subfolder named after it beside the rows, holding its rows of the hub's
``allenai/WildBench-V2-Model-Outputs`` (``<model>/train-*.parquet``, or WildBench's own
``<model>.json`` list): ``session_id`` and ``output`` (the answer, or a list whose first it is).
Online, both datasets' files are downloaded (huggingface_hub) and read the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import records
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.evaluation.wildbench import categories

OUTPUTS_ID = "allenai/WildBench-V2-Model-Outputs"
REFERENCES = ("gpt-4-turbo-2024-04-09", "claude-3-haiku-20240307", "Llama-2-70b-chat-hf")
"""The leaderboard's three reference models."""
FORMAT = ("WildBench v2 rows (session_id, conversation_input [{role, content}], checklist, primary_tag, "
          "secondary_tags) as parquet, JSONL or a JSON list")


def wildbench_item(row: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    at = where(path, line if line is not None else index)
    sid = row.get("session_id", row.get("id"))
    turns = row.get("conversation_input")
    if sid is None or not isinstance(turns, list) or not turns:
        raise UserError(f"{at} expected session_id and a non-empty conversation_input: {FORMAT}")
    if not all(isinstance(t, dict) and isinstance(t.get("content"), str) for t in turns):
        raise UserError(f"{at} field 'conversation_input': expected turns with a string content")
    if turns[-1].get("role", "user") != "user":
        raise UserError(f"{at} field 'conversation_input': expected the last turn to be the user's, got "
                        f"{turns[-1].get('role')!r}")
    checklist = row.get("checklist") or []
    if not isinstance(checklist, list) or not all(isinstance(c, str) for c in checklist):
        raise UserError(f"{at} field 'checklist': expected a list of strings")
    tags = [row.get("primary_tag") or "", *(row.get("secondary_tags") or [])]
    history = [{"role": "user" if k % 2 == 0 else "assistant", "content": t["content"]}
               for k, t in enumerate(turns[:-1])]
    return Item(id=str(sid), question=turns[-1]["content"], gold="",
                meta={"history": history, "checklist": list(checklist), "primary_tag": tags[0],
                      "categories": categories(tags)})


def read_wildbench(path: Path) -> list[Item]:
    """The rows of ``path``; of every parquet file beside it too when it is one of the hub's
    shards (``test-00000-of-00002.parquet`` ...)."""
    shards = sorted(path.parent.glob("*.parquet")) if path.suffix == ".parquet" else [path]
    rows = [(p, line, row) for p in shards for line, row in records(p, FORMAT)]
    return [wildbench_item(row, k, p, line) for k, (p, line, row) in enumerate(rows)]


def reference_answers(folder: Path, model: str) -> dict[str, str]:
    """session_id -> the reference model's answer, from ``folder/<model>/`` (parquet, JSONL or a
    JSON list of WildBench-V2-Model-Outputs rows)."""
    given = folder / model
    files = sorted(p for p in given.glob("*") if p.suffix in (".parquet", ".jsonl", ".json")) if given.is_dir() else []
    if not files:
        raise UserError(f"{given}: no answers of the reference model {model} (expected its rows of {OUTPUTS_ID} as "
                        f"{model}/train-*.parquet or {model}/{model}.json beside the WildBench rows; one of "
                        f"{', '.join(REFERENCES)})")
    answers = {}
    for path in files:
        for line, row in records(path, f"{OUTPUTS_ID} rows (session_id, output)"):
            output = row.get("output") if isinstance(row, dict) else None
            output = output[0] if isinstance(output, list) and output else output
            if not isinstance(row, dict) or row.get("session_id") is None or not isinstance(output, str):
                raise UserError(f"{where(path, line)} expected session_id and output (a string or a list of them)")
            answers[str(row["session_id"])] = output
    return answers


def read_wildbench_reward(path: Path, *, wildbench_reference: str = "claude-3-haiku-20240307") -> list[Item]:
    answers = reference_answers(path.parent, wildbench_reference)
    items = read_wildbench(path)
    missing = [it.id for it in items if it.id not in answers]
    if missing:
        raise UserError(f"{path.parent / wildbench_reference}: no answer of {wildbench_reference} for "
                        f"{len(missing)} task(s) (e.g. session_id {missing[0]})")
    return [Item(id=it.id, question=it.question, gold="", meta={**it.meta, "reference": answers[it.id]})
            for it in items]


def _download(wildbench_reference: str = "claude-3-haiku-20240307") -> Path:
    """The hub's v2 rows and the reference's answers as one folder (links into the hub cache)."""
    from huggingface_hub import snapshot_download

    from genius.models import cache_root

    rows = Path(snapshot_download("allenai/WildBench", repo_type="dataset", allow_patterns=["v2/*"]))
    answers = Path(snapshot_download(OUTPUTS_ID, repo_type="dataset", allow_patterns=[f"{wildbench_reference}/*"]))
    # One folder per pair of snapshots (their revisions name them), so that no link is stale; each
    # link is made under a temporary name and renamed over, so that processes loading at once agree.
    folder = cache_root() / "wildbench" / f"{rows.name}-{answers.name}" / wildbench_reference
    folder.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((rows / "v2").glob("*.parquet")), answers / wildbench_reference]:
        temporary = folder / f".{source.name}.{os.getpid()}"
        os.symlink(source, temporary)
        os.replace(temporary, folder / source.name)
    return folder


TASK = Task(
    name="wildbench", answer_type="judged", description="WildBench v2 (1024 tasks, WB-Score against checklists)",
    read=read_wildbench, files=("*.parquet", "*.jsonl", "*.json"), format=FORMAT,
    hub=HubSource("allenai/WildBench", "v2", "test", wildbench_item), judge="wildbench",
)
REWARD = Task(
    name="wildbench_reward", answer_type="judged", folder="wildbench",
    description="WildBench v2 WB-Reward against a reference model's answers (--wildbench-reference)",
    read=read_wildbench_reward, files=("*.parquet", "*.jsonl", "*.json"), format=FORMAT,
    hub=HubSource("allenai/WildBench", "v2", "test", download=_download), judge="wildbench_reward",
    options=("wildbench_reference",),
)
