"""WildBench v2's WB-Score (Lin et al., 2024): each answer scored 1-10 by an LLM judge against the
task's checklist, and the scores' aggregation. Pure functions but the one judge call.

From allenai/WildBench @ d6b8dca:
- the prompt: ``evaluation/eval_template.score.v2.md``, verbatim in
  ``templates/wildbench_score_v2.md``, filled as src/eval.py's ``compose_eval_item`` and
  ``placeholder_generation`` do: the turns before the last as ``USER: ...`` / ``ASSISTANT: ...``
  each followed by a blank line, the last user turn as the query, the checklist as ``- item``
  lines; sent as one user message (its batch mode), greedy;
- the verdict: the reply parsed as JSON, else its ``"score": "..."`` by regex (src/eval.py's
  ``extract_values_from_json``); here also an unquoted number and a JSON object inside a code
  fence, which a judge without JSON mode writes (WildBench asks the API for JSON mode). A reply
  with no score in 1..10 is no verdict: left out of the score, counted, never a 1;
- the score (leaderboard/data_dir/_create_tables.py, _merge_results.py): WB-Score = (mean - 5)
  x 2 x 10; per task category (the primary and secondary tags mapped to five categories, an
  item counting in each of its categories) the same, and the task macro their weighted mean
  (weights 0.5, 1.25, 1, 0.75, 1.25 over 4.75), the number the leaderboard ranks by.

An item's ``score`` is its share of that: (judge score - 5) / 5, so the mean of the items' scores
is WB-Score / 100 and paired differences of two runs are WB-Score points / 100 (compare).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genius.evaluation.judge import Chat

CATEGORIES = {
    "Information seeking": "Information/Advice seeking", "Advice seeking": "Information/Advice seeking",
    "Creative Writing": "Creative Tasks", "Editing": "Creative Tasks", "Brainstorming": "Creative Tasks",
    "Role playing": "Creative Tasks", "Others": "Creative Tasks",
    "Reasoning": "Planning & Reasoning", "Planning": "Planning & Reasoning",
    "Math": "Math & Data Analysis", "Data Analysis": "Math & Data Analysis",
    "Coding & Debugging": "Coding & Debugging",
}
"""WildBench's tag -> task category (_create_tables.py)."""
WEIGHTS = {"Creative Tasks": 0.5, "Planning & Reasoning": 1.25, "Math & Data Analysis": 1.0,
           "Information/Advice seeking": 0.75, "Coding & Debugging": 1.25}
"""Weights of the categories in WB-Score's task macro (_create_tables.py)."""


@cache
def score_template() -> str:
    return (Path(__file__).parent / "templates" / "wildbench_score_v2.md").read_text(encoding="utf-8")


def categories(tags: list[str]) -> list[str]:
    """The task categories of an item's tags (primary first), each once, sorted."""
    return sorted({CATEGORIES[t] for t in tags if t in CATEGORIES})


def history_text(history: list[dict[str, str]]) -> str:
    """The turns before the last, as WildBench writes them into the judge prompt."""
    names = {"user": "USER", "assistant": "ASSISTANT"}
    return "".join(f"{names[t['role']]}: {t['content']}\n\n" for t in history if t["role"] in names)


def score_prompt(history: list[dict[str, str]], query: str, answer: str, checklist: list[str]) -> str:
    """The WB-Score judge prompt, filled in WildBench's order with plain replacement."""
    prompt = score_template().replace("{$history}", history_text(history)).replace("{$user_query}", query)
    prompt = prompt.replace("{$model_output}", answer)
    return prompt.replace("{$checklist}", "".join(f"- {c}\n" for c in checklist))


_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)
_QUOTED = re.compile(r'"score"\s*:\s*"([^"]*?)"')
_BARE = re.compile(r'"score"\s*:\s*(-?\d+(?:\.\d+)?)')


def parse_score(reply: str) -> float | None:
    """The judge's score (1..10) in its reply, None when it gave none."""
    found: Any = None
    for text in (reply.strip(), *(m.group(1) for m in _FENCED.finditer(reply))):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "score" in data:
            found = data["score"]
            break
    if found is None:
        match = _QUOTED.search(reply) or _BARE.search(reply)
        found = match.group(1) if match else None
    try:
        score = float(str(found).strip().strip("[]"))
    except ValueError:
        return None
    return score if 1 <= score <= 10 else None


def judge_wildbench(chat: Chat, record: dict, max_tokens: int) -> dict[str, Any]:
    """One WB-Score judgement of a record's response: the judge's reply, its score, the item's."""
    meta = record.get("meta") or {}
    prompt = score_prompt(meta.get("history") or [], record["question"], record.get("response") or "",
                          meta.get("checklist") or [])
    reply = chat([{"role": "user", "content": prompt}], max_tokens=max_tokens)
    judged = parse_score(reply.text)
    return {"judgement": reply.text, "judge_score": judged, "score": None if judged is None else (judged - 5) / 5}


def wildbench_metrics(records: list[dict]) -> dict[str, Any]:
    """WB-Score's numbers from judged records: per category and the weighted task macro, as
    shares (x 100 = WildBench's points); the mean 1-10 score. Empty answers are left out of the
    categories, as the leaderboard does, not out of the overall score."""
    judged = [r for r in records if r.get("score") is not None]
    per: dict[str, list[float]] = {}
    for r in judged:
        if (r.get("response") or "").strip():
            for category in (r.get("meta") or {}).get("categories") or []:
                per.setdefault(category, []).append(float(r["score"]))
    by_category = {c: sum(v) / len(v) for c, v in sorted(per.items())}
    weight = sum(WEIGHTS[c] for c in by_category)
    macro = sum(WEIGHTS[c] * s for c, s in by_category.items()) / weight if weight else None
    raw = [5 + 5 * float(r["score"]) for r in judged]
    return {"wb_score_task_macro": macro, "wb_score_by_category": by_category,
            "mean_judge_score": sum(raw) / len(raw) if raw else None}
