"""Prompt presets: the paper's system prompt, answer instructions per type, few-shot turns."""

from __future__ import annotations

import pytest

from genius.errors import UserError
from genius.evaluation.prompts import SYSTEM_PROMPT, build_messages, get_preset
from genius.evaluation.tasks import Item, get_task

GSM = Item(id="g", question="Tom has 3 apples and buys 5. How many?", gold="8")
ARC = Item(id="a", question="Which?\n\n1. x\n2. y\n3. z", gold="2", labels=("1", "2", "3"))


def test_paper_preset_gsm8k_is_four_shot_with_system_prompt() -> None:
    msgs = build_messages(get_task("gsm8k"), GSM, get_preset("paper"))
    assert msgs[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant"] * 4 + ["user"]
    assert msgs[-1]["content"].startswith(GSM.question)
    assert msgs[-1]["content"].endswith('"The answer is: X" where X is the final number.')
    # Every exemplar ends in the instructed answer form.
    assert all(m["content"].splitlines()[-1].startswith("The answer is: ") for m in msgs[2:-1:2])


def test_code_preset_is_eight_shot_and_zero_shot_has_none() -> None:
    assert len(build_messages(get_task("gsm8k"), GSM, get_preset("code"))) == 1 + 16 + 1
    assert len(build_messages(get_task("gsm8k"), GSM, get_preset("zero-shot"))) == 2


def test_math_shots_are_boxed_and_other_tasks_zero_shot() -> None:
    msgs = build_messages(get_task("math500"), Item(id="m", question="1+1?", gold="2"), get_preset("paper"))
    assert len(msgs) == 1 + 8 + 1 and all("\\boxed{" in m["content"] for m in msgs[2:-1:2])
    assert msgs[-1]["content"].endswith("Put your final answer within \\boxed{}.")
    assert len(build_messages(get_task("arc_challenge"), ARC, get_preset("paper"))) == 2


@pytest.mark.parametrize("task,item,needle", [
    ("arc_challenge", ARC, "(1, 2 or 3)"),
    ("strategyqa", Item(id="s", question="Is it?", gold="Yes"), '"The answer is: Yes" or "The answer is: No"'),
    ("reclor", Item(id="r", question="q", gold="A", labels=("A", "B", "C", "D")), "(A, B, C or D)"),
])
def test_answer_instruction_per_type(task: str, item: Item, needle: str) -> None:
    assert needle in build_messages(get_task(task), item, get_preset("zero-shot"))[-1]["content"]


def test_unknown_preset() -> None:
    with pytest.raises(UserError, match="unknown prompt preset 'x': expected one of paper, code, zero-shot"):
        get_preset("x")
