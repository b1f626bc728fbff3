"""WildBench v2 (Lin et al., 2024; paper Table 2): 1024 real user tasks from WildChat, many of
them conversations, scored by an LLM judge against each task's checklist (WB-Score,
genius.evaluation.wildbench).

The model answers the last user turn with the conversation before it as chat turns, the roles
taken by position (user, assistant, user, ...) as WildBench's runner does. Data: the hub's
``allenai/WildBench`` (config ``v2``, split ``test``) when online, or its rows in a file of the
data folder (parquet as on the hub, JSONL or a JSON list): ``session_id`` (or ``id``),
``conversation_input`` (turns with ``content``, the last one the user's), ``checklist`` (list of
strings), ``primary_tag`` and ``secondary_tags``.
"""

from __future__ import annotations

from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import records
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.evaluation.wildbench import categories

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
    if len(turns) % 2 != 1 or turns[-1].get("role", "user") != "user":
        raise UserError(f"{at} field 'conversation_input': expected the last turn to be the user's "
                        f"({len(turns)} turns, the last {turns[-1].get('role')!r})")
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
    return [wildbench_item(row, k, path, line) for k, (line, row) in enumerate(records(path, FORMAT))]


TASK = Task(
    name="wildbench", answer_type="judged", description="WildBench v2 (1024 tasks, WB-Score against checklists)",
    read=read_wildbench, files=("*.parquet", "*.jsonl", "*.json"), format=FORMAT,
    hub=HubSource("allenai/WildBench", "v2", "test", wildbench_item), judge="wildbench",
)
