"""Built-in synthetic problems: answers right by construction, seeded, disjoint splits."""

from __future__ import annotations

import re

import pytest

from genius.errors import UserError
from genius.io import read_jsonl
from genius.synthetic import KINDS, generate, split_of, write_queries


def _solve_order(question: str) -> str:
    """An independent solver: topologically order the 'X is R-er than Y' facts."""
    facts = re.findall(r"(\w+) is \w+ than (\w+)\.", question)
    above = {a for a, _ in facts}
    below = {b for _, b in facts}
    top = (above - below).pop()
    bottom = (below - above).pop()
    asks_max = any(w in question for w in ("tallest", "oldest", "fastest", "heaviest"))
    return top if asks_max else bottom


def _numbers(question: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", question)]


def test_answers_match_an_independent_reading_of_the_text():
    for p in generate(200, seed=5):
        nums = _numbers(p.question)
        if p.kind == "order":
            assert p.answer == _solve_order(p.question)
            assert p.answer in p.choices
        elif p.kind == "arith1":
            # "has a, gets b more" -> a + b; "has a, gives b away" -> a - b
            a, b = nums
            assert int(p.answer) == (a + b if "more" in p.question else a - b)
        elif p.kind == "arith2":
            # packs * per (+ extra | - lost)
            packs, per, last = nums
            assert int(p.answer) == (packs * per + last if "finds" in p.question else packs * per - last)
        else:
            assert int(p.answer) >= 0
            if "times as many" in p.question:
                # (a + b) * times - c, e.g. "has 10, gets 11 more, 4 times, gives away 41" -> 21 * 4 - 41 = 43
                a, b, times, c = nums
                assert int(p.answer) == (a + b) * times - c
            else:
                # (total - used) / groups - eaten
                total, used, groups, eaten = nums
                assert (total - used) % groups == 0
                assert int(p.answer) == (total - used) // groups - eaten


def test_same_seed_same_problems_other_seed_other_problems():
    a, b, c = generate(40, seed=1), generate(40, seed=1), generate(40, seed=2)
    assert a == b
    assert [p.question for p in a] != [p.question for p in c]


def test_kinds_round_robin_and_ids_unique():
    problems = generate(12, seed=0)
    assert [p.kind for p in problems] == list(KINDS) * 3
    assert len({p.id for p in problems}) == 12
    assert len({p.question for p in problems}) == 12


def test_heldout_never_overlaps_training_whatever_the_seeds():
    train = {p.question for s in range(3) for p in generate(300, seed=s)}
    held = {p.question for s in range(3) for p in generate(300, seed=s, split="eval")}
    assert not train & held
    assert all(split_of(q) == "train" for q in train)
    assert all(split_of(q) == "eval" for q in held)


def test_unknown_kind_is_a_user_error():
    with pytest.raises(UserError, match="unknown kind 'algebra'"):
        generate(3, kinds=["algebra"])


def test_write_queries_has_no_answers(tmp_path):
    problems = generate(5, seed=0)
    path = write_queries(tmp_path / "q.jsonl", problems)
    rows = read_jsonl(path)
    assert [r["id"] for r in rows] == [p.id for p in problems]
    assert all(set(r) == {"id", "instruction"} for r in rows)
