"""WildBench v2 (Lin et al., 2024): WB-Score (each answer scored 1-10 by an LLM judge against the
task's checklist) and WB-Reward (each answer judged against a reference model's on a five-way
scale), and their aggregation. Pure functions but the judge calls.

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

WB-Reward (``eval_template.pairwise.v2.md``, verbatim in ``templates/wildbench_pairwise_v2.md``):
history, query and both answers cut to 1000 words (``shorten``, "... (truncated)"), an empty
answer written "[This model response is empty.]"; the choice A++ / A+ / A=B / B+ / B++ read from
the JSON as above and worth +1 / +0.5 / 0 / -0.5 / -1 to A; a slight win of an answer longer by
more than K = 500 characters is a tie (the leaderboard's length penalty, K=500 its default). A
pair with an empty or truncated answer is not judged and counts 0, as the leaderboard's
denominator counts it. WildBench judges one order per item, drawn at random (seed 42); here both
orders are judged and their rewards averaged, to cancel position bias.

An item's ``score`` is its share of the task's number: for WB-Score (judge score - 5) / 5, for
WB-Reward the reward itself, so the mean of the items' scores is WB-Score or WB-Reward / 100 and
paired differences of two runs are points / 100 (genius.evaluation.compare).
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


CHOICES = {"A++": 1.0, "A+": 0.5, "A=B": 0.0, "B+": -0.5, "B++": -1.0}
"""A pairwise choice -> its reward to answer A."""
LENGTH_PENALTY = 500
"""K: a slight win by an answer more than K characters longer than the other is a tie."""
MAX_WORDS = 1000
"""Pairwise prompts cut history, query and answers to this many space-separated words."""
TRUNCATED = "... (truncated)"
EMPTY = "[This model response is empty.]"


@cache
def _template(name: str) -> str:
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


def categories(tags: list[str]) -> list[str]:
    """The task categories of an item's tags (its primary and secondary ones), each once, sorted."""
    return sorted({CATEGORIES[t] for t in tags if t in CATEGORIES})


def history_text(history: list[dict[str, str]]) -> str:
    """The turns before the last, as WildBench writes them into the judge prompt."""
    names = {"user": "USER", "assistant": "ASSISTANT"}
    return "".join(f"{names[t['role']]}: {t['content']}\n\n" for t in history if t["role"] in names)


def score_prompt(history: list[dict[str, str]], query: str, answer: str, checklist: list[str]) -> str:
    """The WB-Score judge prompt, filled in WildBench's order with plain replacement."""
    prompt = _template("wildbench_score_v2.md").replace("{$history}", history_text(history))
    prompt = prompt.replace("{$user_query}", query)
    prompt = prompt.replace("{$model_output}", answer)
    return prompt.replace("{$checklist}", "".join(f"- {c}\n" for c in checklist))


_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def verdict_field(reply: str, key: str) -> str | None:
    """A field of the judge's JSON verdict: the reply (or a fenced block of it) parsed as JSON,
    else the ``"key": "..."`` WildBench's regex finds, else an unquoted ``"key": value``."""
    for text in (reply.strip(), *(m.group(1) for m in _FENCED.finditer(reply))):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and key in data:
            return str(data[key])
    match = (re.search(rf'"{key}"\s*:\s*"([^"]*?)"', reply) or re.search(rf'"{key}"\s*:\s*"(.*?)"', reply, re.S)
             or re.search(rf'"{key}"\s*:\s*([^,\s}}]+)', reply))
    return match.group(1) if match else None


def parse_score(reply: str) -> float | None:
    """The judge's score (1..10) in its reply, None when it gave none."""
    found = verdict_field(reply, "score")
    if found is None:
        return None
    try:
        score = float(found.strip().strip("[]"))
    except ValueError:
        return None
    return score if 1 <= score <= 10 else None


def judge_wildbench(chat: Chat, record: dict, max_tokens: int) -> dict[str, Any]:
    """One WB-Score judgement of a record's response: the judge's reply, its score, the item's."""
    meta = record.get("meta") or {}
    # stripped, as WildBench's runner stores its answers (clear_output)
    prompt = score_prompt(meta.get("history") or [], record["question"], (record.get("response") or "").strip(),
                          meta.get("checklist") or [])
    reply = chat([{"role": "user", "content": prompt}], max_tokens=max_tokens)
    judged = parse_score(reply.text)
    return {"judgement": reply.text, "judge_score": judged, "score": None if judged is None else (judged - 5) / 5}


def shorten(text: str, words: int = MAX_WORDS) -> str:
    """WildBench's cut: the first ``words`` space-separated words and "... (truncated)"."""
    parts = text.split(" ")
    return " ".join(parts[:words]) + TRUNCATED if len(parts) > words else text


def pairwise_prompt(history: list[dict[str, str]], query: str, answer_a: str, answer_b: str,
                    checklist: list[str]) -> str:
    """The WB-Reward judge prompt, filled in WildBench's order with plain replacement."""
    prompt = _template("wildbench_pairwise_v2.md").replace("{$history}", shorten(history_text(history)))
    prompt = prompt.replace("{$user_query}", shorten(query))
    a, b = shorten(answer_a), shorten(answer_b)
    prompt = prompt.replace("{$candidate_A}", a if a.strip() else EMPTY)
    prompt = prompt.replace("{$candidate_B}", b if b.strip() else EMPTY)
    return prompt.replace("{$checklist}", "".join(f"- {c}\n" for c in checklist))


def parse_choice(reply: str) -> str | None:
    """The judge's choice (A++ .. B++), None when it gave none of the five."""
    choice = verdict_field(reply, "choice")
    return choice.strip() if choice is not None and choice.strip() in CHOICES else None


def model_reward(choice: str, model_is_a: bool, model_chars: int, reference_chars: int,
                 k: int = LENGTH_PENALTY) -> float:
    """The model's reward for a choice, with the length penalty on slight wins (k < 0: none)."""
    reward = CHOICES[choice] if model_is_a else -CHOICES[choice]
    if k >= 0 and ((reward == 0.5 and model_chars > reference_chars + k)
                   or (reward == -0.5 and reference_chars > model_chars + k)):
        return 0.0
    return reward


def judge_wildbench_reward(chat: Chat, record: dict, max_tokens: int) -> dict[str, Any]:
    """WB-Reward of a record's response against ``meta.reference``: both orders judged, their
    rewards averaged; a pair with an empty or cut answer is not judged and scores 0."""
    meta = record.get("meta") or {}
    answer, reference = (record.get("response") or "").strip(), str(meta.get("reference") or "").strip()
    if not answer or not reference or shorten(answer).endswith(TRUNCATED) or shorten(reference).endswith(TRUNCATED):
        return {"games": [], "skipped": "an empty or truncated answer (counted 0, as WildBench counts it)",
                "reward": 0.0, "score": 0.0, "won": False}
    games = []
    for model_is_a in (True, False):
        a, b = (answer, reference) if model_is_a else (reference, answer)
        prompt = pairwise_prompt(meta.get("history") or [], record["question"], a, b, meta.get("checklist") or [])
        reply = chat([{"role": "user", "content": prompt}], max_tokens=max_tokens)
        choice = parse_choice(reply.text)
        games.append({"model_is_a": model_is_a, "judgement": reply.text, "choice": choice,
                      "reward": None if choice is None else model_reward(choice, model_is_a, len(answer),
                                                                         len(reference))})
    rewards = [g["reward"] for g in games if g["reward"] is not None]
    reward = sum(rewards) / len(rewards) if rewards else None
    return {"games": games, "reward": reward, "score": reward, "won": None if reward is None else reward > 0}


def wildbench_metrics(records: list[dict], kind: str) -> dict[str, Any]:
    """WB-Score's (``kind`` "score") or WB-Reward's ("reward") numbers from judged records, as
    shares (x 100 = WildBench's points): per category and the weighted task macro over the
    categories present (all five on the full set, where it is WildBench's sum / 4.75). As the
    leaderboard does, empty answers (WB-Score) and unjudged pairs (WB-Reward) are left out of
    the categories, not out of the overall number; WB-Score also gives the mean 1-10 score."""
    judged = [r for r in records if r.get("score") is not None]
    per: dict[str, list[float]] = {}
    for r in judged:
        if (r.get("response") or "").strip() and "skipped" not in (r.get("judge") or {}):
            for category in (r.get("meta") or {}).get("categories") or []:
                per.setdefault(category, []).append(float(r["score"]))
    by_category = {c: sum(v) / len(v) for c, v in sorted(per.items())}
    weight = sum(WEIGHTS[c] for c in by_category)
    macro = sum(WEIGHTS[c] * v for c, v in by_category.items()) / weight if weight else None
    out: dict[str, Any] = {f"wb_{kind}_task_macro": macro, f"wb_{kind}_by_category": by_category}
    if kind == "score":
        raw = [5 + 5 * float(r["score"]) for r in judged]
        out["mean_judge_score"] = sum(raw) / len(raw) if raw else None
    else:
        out["n_not_judged"] = sum("skipped" in (r.get("judge") or {}) for r in records)
    return out
