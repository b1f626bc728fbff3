"""The answer types: for each, how the answer is asked for (the prompt's instruction), read from
a response and compared (the extractors of genius.evaluation.extract). Tasks, prompts and the
synthetic problems read this one registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from genius.evaluation.extract import (extract_number, numbers_equal, extract_math, math_equal, extract_choice,
                                     same_text, extract_yes_no, extract_name, extract_text, extract_code,
                                     same_program, whole_response)


@dataclass(frozen=True)
class AnswerSpec:
    """How one answer type is asked for, read from a response and compared."""

    extract: Callable[[str, Sequence[str]], str | None]
    """(response, the item's labels: option labels or names) -> the answer; None when it gives none."""
    same: Callable[[str, str], bool]
    """Whether two answers (an extracted one and the gold, or two extracted ones) are the same."""
    instruction: Callable[[Sequence[str]], str]
    """The answer instruction that follows the problem, given the item's labels."""


def _text_only(extract: Callable[[str], str | None]) -> Callable[[str, Sequence[str]], str | None]:
    return lambda text, labels: extract(text)


def _fixed(instruction: str) -> Callable[[Sequence[str]], str]:
    return lambda labels: instruction


def _listed(labels: Sequence[str]) -> str:
    return ", ".join(labels[:-1]) + f" or {labels[-1]}"


ANSWER_TYPES: dict[str, AnswerSpec] = {
    "number": AnswerSpec(_text_only(extract_number), numbers_equal,
                         _fixed('End your response with "The answer is: X" where X is the final number.')),
    "math": AnswerSpec(_text_only(extract_math), math_equal, _fixed("Put your final answer within \\boxed{}.")),
    "choice": AnswerSpec(extract_choice, same_text, lambda labels: 'End your response with "The answer is: X" where X '
                         f"is the label of the correct option ({_listed(labels)})."),
    "yesno": AnswerSpec(_text_only(extract_yes_no), same_text,
                        _fixed('End your response with "The answer is: Yes" or "The answer is: No".')),
    "name": AnswerSpec(extract_name, same_text,
                       lambda names: f'End your response with "The answer is: X" where X is {_listed(names)}.'),
    "text": AnswerSpec(_text_only(extract_text), same_text, _fixed('End your response with "The answer is: X".')),
    "code": AnswerSpec(_text_only(extract_code), same_program, _fixed("")),
    "judged": AnswerSpec(_text_only(whole_response), same_text, _fixed("")),
}


def answer_spec(answer_type: str) -> AnswerSpec:
    """The registry entry of an answer type (a ValueError names the known ones)."""
    try:
        return ANSWER_TYPES[answer_type]
    except KeyError:
        raise ValueError(f"unknown answer type {answer_type!r}: expected one of {', '.join(ANSWER_TYPES)}") from None
