"""Pair / SFT record validation shared by sampling, baselines and training."""

from __future__ import annotations

import pytest

from genius.errors import UserError
from genius.schema import check_pair, check_sft, is_finite_pair, prompt_messages

GOOD = {"prompt": "Q?", "chosen": "a", "rejected": "b", "A_w": 0.5, "A_l": -0.1}


def test_string_prompt_is_one_user_turn() -> None:
    assert prompt_messages("Q?") == [{"role": "user", "content": "Q?"}]


@pytest.mark.parametrize(
    "record, message",
    [
        ({"chosen": "a", "rejected": "b"}, "pairs.jsonl:4: field 'prompt': missing"),
        ({"prompt": "Q", "rejected": "b"}, "field 'chosen': missing"),
        ({"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}, "field 'prompt': expected a string or a list"),
        ({"prompt": "Q", "chosen": 3, "rejected": "b"}, "field 'chosen': expected a string"),
        ({**GOOD, "A_w": "high"}, "field 'A_w': expected a number"),
    ],
)
def test_bad_pairs_name_file_line_and_field(record: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_pair(record, "pairs.jsonl", 4)


def test_aco_needs_advantages() -> None:
    with pytest.raises(UserError, match="field 'A_l': missing"):
        check_pair({"prompt": "Q", "chosen": "a", "rejected": "b", "A_w": 1.0}, "p", 1, need_advantages=True)


def test_finite_filter() -> None:
    assert is_finite_pair(GOOD)
    assert not is_finite_pair({**GOOD, "A_l": None})
    assert not is_finite_pair({**GOOD, "A_w": float("inf")})
    assert not is_finite_pair({**GOOD, "rejected": "  "})


def test_sft_record() -> None:
    check_sft({"prompt": "Q", "response": "A"})
    with pytest.raises(UserError, match="field 'response': missing"):
        check_sft({"prompt": "Q"}, "sft.jsonl", 2)
