"""StrategyQA (Geva et al., 2021), the 2290 labelled questions of its BIG-bench task json.

Only ``input`` is shown; the gold answer comes from ``target_scores``. ``target`` holds the
answer *and its rationale*, so it is never read.
"""

from __future__ import annotations

from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks._common import field, json_document
from genius.evaluation.tasks.base import HubSource, Item, Task

FORMAT = "BIG-bench task json: {'examples': [{'input', 'target_scores': {'Yes': 0/1, 'No': 0/1}}]}"


def _gold(scores: object, path: Path | str, line: int | None) -> str:
    if isinstance(scores, dict):
        best = [k for k, v in scores.items() if v == 1 and k in ("Yes", "No")]
        if len(best) == 1:
            return best[0]
    raise UserError(f"{where(path, line, 'target_scores')} expected exactly one of Yes/No scored 1")


def read(path: Path) -> list[Item]:
    doc = json_document(path, FORMAT)
    examples = doc.get("examples") if isinstance(doc, dict) else None
    if not isinstance(examples, list):
        raise UserError(f"{where(path, None, 'examples')} missing: expected {FORMAT}")
    items = []
    for i, ex in enumerate(examples):
        question = field(ex, "input", path, None, fmt=f"examples[{i}] {FORMAT}")
        items.append(Item(id=f"strategyqa-{i}", question=question, gold=_gold(ex.get("target_scores"), path, None)))
    return items


def _hub_item(row: dict, index: int) -> Item:
    # tasksource/bigbench rows: 'inputs', 'multiple_choice_targets', 'multiple_choice_scores'.
    scores = dict(zip(row["multiple_choice_targets"], row["multiple_choice_scores"]))
    question = row["inputs"].removeprefix("Q: ").split("\nA:")[0].strip()
    return Item(id=f"strategyqa-{index}", question=question, gold=_gold(scores, "hub", index))


TASK = Task(
    name="strategyqa", answer_type="yesno", description="StrategyQA (BIG-bench, 2290 yes/no questions)",
    read=read, files=("task.json", "*.json"), format=FORMAT,
    hub=HubSource("tasksource/bigbench", "strategyqa", "train+validation", _hub_item),
)
