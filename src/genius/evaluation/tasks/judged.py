"""General-domain instruction following judged against a reference model (paper Table 2).

- ``arena_hard``: Arena-Hard v0.1 (Li et al., 2024), 500 questions, each judged in two games
  against GPT-4-0314's answer (genius.evaluation.judge). Local files in the repository's layout
  (lmarena/arena-hard-auto data/arena-hard-v0.1/): ``question.jsonl`` (``uid``, ``prompt``, or
  the older ``question_id`` + ``turns``) and the baseline's ``model_answer/gpt-4-0314.jsonl``
  (``uid`` + ``messages`` or ``question_id`` + ``choices``), in one folder. No hub copy is read.
- ``alpaca_eval``: AlpacaEval 2.0 (Dubois et al., 2024), 805 instructions against GPT-4-Turbo's
  (gpt4_1106_preview) outputs: the reference outputs file (a JSON list of ``instruction``,
  ``output``, ``dataset``, ``generator``), or the hub's ``tatsu-lab/alpaca_eval``.

The model answers each question as a plain user message (no answer format, no shots); the
score of an item is the judge's preference for it (a tie is half), the metric the win rate.
Each item's ``meta.reference`` is the answer it is judged against.
"""

from __future__ import annotations

from pathlib import Path

from genius.errors import UserError, where
from genius.evaluation.tasks.base import HubSource, Item, Task
from genius.io import iter_jsonl, read_json

ARENA_FORMAT = ("Arena-Hard v0.1 question.jsonl (uid, prompt) and the gpt-4-0314 answers (uid, messages) in one "
                "folder")
ALPACA_FORMAT = "AlpacaEval reference outputs: a JSON list of {instruction, output, dataset, generator}"


def _question(record: dict, path: Path, line: int | None) -> tuple[str, str]:
    uid = record.get("uid", record.get("question_id"))
    text = record.get("prompt")
    if text is None and isinstance(record.get("turns"), list) and record["turns"]:
        text = record["turns"][0].get("content")
    if uid is None or not isinstance(text, str):
        raise UserError(f"{where(path, line)} expected uid and prompt (or question_id and turns): {ARENA_FORMAT}")
    return str(uid), text


def _baseline_answer(record: dict, path: Path, line: int | None) -> tuple[str, str]:
    uid = record.get("uid", record.get("question_id"))
    try:
        if "messages" in record:
            content = [m for m in record["messages"] if m.get("role") == "assistant"][-1]["content"]
            text = content["answer"] if isinstance(content, dict) else content
        else:
            text = record["choices"][0]["turns"][0]["content"]
    except (KeyError, IndexError, TypeError):
        raise UserError(f"{where(path, line)} expected the assistant's answer in messages (or choices.turns)") from None
    if uid is None or not isinstance(text, str):
        raise UserError(f"{where(path, line)} expected uid and an answer string: {ARENA_FORMAT}")
    return str(uid), text


def read_arena_hard(path: Path) -> list[Item]:
    folder = path.parent
    answers_file = next((p for pattern in ("*gpt-4-0314*.jsonl", "model_answer/gpt-4-0314.jsonl")
                         for p in sorted(folder.glob(pattern)) if p != path), None)
    if answers_file is None:
        raise UserError(f"{folder}: no gpt-4-0314 answers beside {path.name} (expected *gpt-4-0314*.jsonl or "
                        "model_answer/gpt-4-0314.jsonl): Arena-Hard judges every answer against them")
    baseline = dict(_baseline_answer(r, answers_file, line) for line, r in iter_jsonl(answers_file))
    items = []
    for line, record in iter_jsonl(path):
        uid, text = _question(record, path, line)
        if uid not in baseline:
            raise UserError(f"{where(path, line, 'uid')} {uid} has no gpt-4-0314 answer in {answers_file}")
        items.append(Item(id=uid, question=text, gold="", meta={"reference": baseline[uid],
                                                                 "cluster": record.get("cluster", "")}))
    return items


def _alpaca_item(record: dict, index: int, path: Path | str = "hub", line: int | None = None) -> Item:
    instruction, output = record.get("instruction"), record.get("output")
    if not isinstance(instruction, str) or not isinstance(output, str):
        raise UserError(f"{where(path, line if line is not None else index)} expected instruction and output: "
                        f"{ALPACA_FORMAT}")
    return Item(id=f"alpaca_eval-{index}", question=instruction, gold="",
                meta={"reference": output, "dataset": record.get("dataset", ""), "generator": record.get("generator", "")})


def read_alpaca_eval(path: Path) -> list[Item]:
    data = read_json(path)
    if not isinstance(data, list):
        raise UserError(f"{path}: expected {ALPACA_FORMAT}")
    return [_alpaca_item(r, i, path) for i, r in enumerate(data)]


ARENA_HARD = Task(
    name="arena_hard", answer_type="judged", description="Arena-Hard v0.1 (500 questions vs gpt-4-0314), win rate",
    read=read_arena_hard, files=("*question*.jsonl", "question.jsonl"), format=ARENA_FORMAT, judge="arena_hard",
)
ALPACA_EVAL = Task(
    name="alpaca_eval", answer_type="judged",
    description="AlpacaEval 2.0 (805 instructions vs gpt4_1106_preview), raw win rate",
    read=read_alpaca_eval, files=("*gpt4_1106_preview*.json", "*.json"), format=ALPACA_FORMAT,
    hub=HubSource("tatsu-lab/alpaca_eval", "alpaca_eval_gpt4_baseline", "eval", _alpaca_item), judge="alpaca_eval",
)
