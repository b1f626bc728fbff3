"""Record layouts shared between stages (pairs.jsonl, sft.jsonl), with validation.

``pairs.jsonl``: one preference pair per line::

    {"query_id": "q17", "step": 2,
     "prompt": [{"role": "user", "content": "..."}],        # or a plain string (= one user turn)
     "chosen": "The reasoning steps are:\\n\\n...",          # assistant response text T_w
     "rejected": "The reasoning steps are:\\n\\n...",        # assistant response text T_l
     "A_w": 0.12, "A_l": -0.30,                             # advantages (ACO); optional for DPO-like losses
     "step_mean_advantage": -0.05, "f_w": -0.41, "f_l": -0.83,   # logging only, optional
     "weight": 1.0,                                          # optional per-pair loss weight (ScPO)
     "chosen_finish": "eos", "rejected_finish": "length",    # optional: eos/stop, or length = cut by a budget
     "method": "genius"}                                     # who built it, optional

``sft.jsonl``: one supervised example per line: ``{"query_id", "prompt", "response", "weight"?, "method"?}``.

The response is the whole assistant turn (it starts with the assistant prefix, if any); the
trainer puts ``prompt`` through the chat template and computes the loss on the response only,
and ends it with EOS unless its finish is ``length`` (a cut response must not teach stopping).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from genius.errors import UserError, where

PAIR_REQUIRED = ("prompt", "chosen", "rejected")
SFT_REQUIRED = ("prompt", "response")
ADVANTAGE_FIELDS = ("A_w", "A_l")
FINISH_FIELDS = ("chosen_finish", "rejected_finish")
FINISHES = ("eos", "stop", "length")


def prompt_messages(prompt: Any, path: str | Path = "", line: int | None = None) -> list[dict[str, str]]:
    """A record's prompt as chat messages: a string is one user turn; a list must hold messages."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise UserError(f"{where(path, line, 'prompt')} is empty")
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and prompt and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    raise UserError(f"{where(path, line, 'prompt')} expected a string or a list of {{role, content}} messages")


def check_pair(record: dict, path: str | Path = "", line: int | None = None, *, need_advantages: bool = False) -> None:
    """Raise UserError naming file, line and field when a pair record is unusable."""
    for key in PAIR_REQUIRED:
        if key not in record:
            raise UserError(f"{where(path, line, key)} missing (a pair needs {', '.join(PAIR_REQUIRED)})")
    prompt_messages(record["prompt"], path, line)
    for key in ("chosen", "rejected"):
        if not isinstance(record[key], str):
            raise UserError(f"{where(path, line, key)} expected a string")
    if need_advantages:
        for key in ADVANTAGE_FIELDS:
            if key not in record:
                raise UserError(f"{where(path, line, key)} missing (the ACO loss needs A_w and A_l)")
    for key in ADVANTAGE_FIELDS + ("weight",):
        if key in record and record[key] is not None:
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{where(path, line, key)} expected a number, got {value!r}")
    for key in FINISH_FIELDS:
        if record.get(key) is not None and record[key] not in FINISHES:
            raise UserError(f"{where(path, line, key)} expected one of {', '.join(FINISHES)}, got {record[key]!r}")


def is_finite_pair(record: dict) -> bool:
    """False when an advantage is NaN/inf/null (written as null by genius.io) or a response is empty."""
    for key in ADVANTAGE_FIELDS:
        if key in record:
            v = record[key]
            if v is None or not math.isfinite(float(v)):
                return False
    return bool(record["chosen"].strip()) and bool(record["rejected"].strip())


def check_sft(record: dict, path: str | Path = "", line: int | None = None) -> None:
    for key in SFT_REQUIRED:
        if key not in record:
            raise UserError(f"{where(path, line, key)} missing (an SFT example needs {', '.join(SFT_REQUIRED)})")
    prompt_messages(record["prompt"], path, line)
    if not isinstance(record["response"], str):
        raise UserError(f"{where(path, line, 'response')} expected a string")
