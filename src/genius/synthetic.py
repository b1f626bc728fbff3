"""Built-in reasoning problems, generated on the fly: seeded, unlimited, offline.

Kinds (difficulty grows with the number of operations):

- ``arith1``: one step ("has a, gets b more" / "has a, gives b away");
- ``arith2``: two steps (packs of items, then a gain or a loss);
- ``arith3``: three steps mixing +, -, x and exact division;
- ``order``: comparison logic over 3-4 people ("A is taller than B, ..., who is shortest?").

The ground truth is used only for evaluation: as training queries the problems are written
without answers (``write_queries``). Answers are read from responses by the evaluation task
``synthetic`` (genius.evaluation.tasks.synthetic, through genius.evaluation.extract).

Train / held-out split: every question text is hashed into a bucket, and a text belongs to
exactly one split (``split_of``). Each generator keeps drawing until it has ``n`` problems of its
own split, so the held-out set never shares a question with any training set, whatever seeds
the two use; the seeds only decide which problems of the split come out.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from genius.errors import UserError
from genius.io import JsonlAppender

Split = Literal["train", "eval"]
KINDS = ("arith1", "arith2", "arith3", "order")
# One text in EVAL_BUCKETS of every BUCKETS goes to the held-out split.
BUCKETS = 4
EVAL_BUCKETS = 1

NAMES = ("Ava", "Ben", "Chloe", "Dan", "Emma", "Finn", "Grace", "Hugo", "Ivy", "Jack", "Kara", "Leo",
         "Mia", "Noah", "Olga", "Pete", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wendy", "Zoe")
ITEMS = ("apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "coins", "shells", "cards")
COMPARISONS = (  # (relation "X is ... than Y", question for the maximum, question for the minimum)
    ("taller", "Who is the tallest?", "Who is the shortest?"),
    ("older", "Who is the oldest?", "Who is the youngest?"),
    ("faster", "Who is the fastest?", "Who is the slowest?"),
    ("heavier", "Who is the heaviest?", "Who is the lightest?"),
)


@dataclass(frozen=True)
class Problem:
    id: str
    kind: str
    question: str
    answer: str
    """The ground truth: an integer written in digits, or a name (kind ``order``)."""
    choices: tuple[str, ...] = ()
    """For ``order``: the names that appear in the question (for answer extraction)."""
    solution: str = ""
    """A worked, step-by-step reference response ending in "The answer is X." (the labelled
    corpus the supervised baselines SFT and SPIN train on; Genius never sees it)."""


class _Made(NamedTuple):
    question: str
    answer: str
    working: str
    """The solution's steps, without the final sentence."""
    choices: tuple[str, ...] = ()


def split_of(question: str) -> Split:
    """The split a question text belongs to, fixed by a hash of the text alone."""
    bucket = int.from_bytes(hashlib.sha256(question.encode("utf-8")).digest()[:8], "big") % BUCKETS
    return "eval" if bucket < EVAL_BUCKETS else "train"


def _arith1(rng: random.Random) -> _Made:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(3, 40)
    if rng.random() < 0.5:
        b = rng.randint(2, 30)
        return _Made(f"{name} has {a} {item}. {name} gets {b} more. How many {item} does {name} have now?", str(a + b),
                     f"{name} starts with {a} {item} and gets {b} more, so {a} + {b} = {a + b}.")
    b = rng.randint(1, a - 1)
    return _Made(f"{name} has {a} {item} and gives {b} of them away. How many {item} does {name} have left?",
                 str(a - b), f"{name} starts with {a} {item} and gives {b} away, so {a} - {b} = {a - b}.")


def _arith2(rng: random.Random) -> _Made:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    packs, per = rng.randint(2, 6), rng.randint(2, 12)
    total = packs * per
    if rng.random() < 0.5:
        extra = rng.randint(1, 20)
        return _Made(f"{name} buys {packs} packs of {item} with {per} {item} in each pack, then finds {extra} more "
                     f"{item}. How many {item} does {name} have?", str(total + extra),
                     f"{packs} packs with {per} {item} each make {packs} x {per} = {total} {item}.\n\n"
                     f"Finding {extra} more gives {total} + {extra} = {total + extra}.")
    lost = rng.randint(1, total - 1)
    return _Made(f"{name} buys {packs} boxes of {item}. Each box holds {per} {item}. {name} loses {lost} {item}. "
                 f"How many {item} are left?", str(total - lost),
                 f"{packs} boxes with {per} {item} each hold {packs} x {per} = {total} {item}.\n\n"
                 f"After losing {lost}, {total} - {lost} = {total - lost} are left.")


def _arith3(rng: random.Random) -> _Made:
    name, friend = rng.sample(NAMES, 2)
    item = rng.choice(ITEMS)
    if rng.random() < 0.5:
        a, b = rng.randint(5, 30), rng.randint(2, 15)
        times = rng.randint(2, 4)
        c = rng.randint(1, (a + b) * times - 1)
        return _Made(f"{name} has {a} {item} and gets {b} more. {friend} has {times} times as many {item} as {name}, "
                     f"then gives away {c}. How many {item} does {friend} have now?", str((a + b) * times - c),
                     f"{name} has {a} + {b} = {a + b} {item}.\n\n{friend} has {times} x {a + b} = "
                     f"{(a + b) * times} {item}.\n\nAfter giving away {c}, {friend} has {(a + b) * times} - {c} = "
                     f"{(a + b) * times - c}.")
    groups, per = rng.randint(2, 6), rng.randint(3, 9)
    used = rng.randint(1, 10)
    eaten = rng.randint(1, per - 1)
    start = groups * per + used
    return _Made(f"{name} has {start} {item} and uses {used} of them. {name} shares the rest equally "
                 f"among {groups} friends, and each friend gives {eaten} of their share to {friend}'s sister. "
                 f"How many {item} does each friend keep?", str(per - eaten),
                 f"After using {used}, {name} has {start} - {used} = {groups * per} {item}.\n\nShared among "
                 f"{groups} friends, each gets {groups * per} / {groups} = {per}.\n\nEach friend gives away "
                 f"{eaten} and keeps {per} - {eaten} = {per - eaten}.")


def _order(rng: random.Random) -> _Made:
    size = rng.choice((3, 4))
    people = rng.sample(NAMES, size)  # people[0] has the most of the quality
    relation, ask_max, ask_min = rng.choice(COMPARISONS)
    facts = [f"{people[i]} is {relation} than {people[i + 1]}." for i in range(size - 1)]
    rng.shuffle(facts)
    want_max = rng.random() < 0.5
    question = " ".join(facts) + " " + (ask_max if want_max else ask_min)
    answer = people[0] if want_max else people[-1]
    solution = (f"Chaining the facts, each person is {relation} than the next: {', '.join(people)}.\n\n"
                f"So the {'first' if want_max else 'last'} one, {answer}, is the answer to the question.")
    return _Made(question, answer, solution, tuple(sorted(people)))


_MAKERS: dict[str, Callable[[random.Random], _Made]] = {
    "arith1": _arith1, "arith2": _arith2, "arith3": _arith3, "order": _order,
}


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    if not kinds:
        raise UserError(f"synthetic: kinds is empty; expected some of {', '.join(KINDS)}")
    for k in kinds:
        if k not in _MAKERS:
            raise UserError(f"synthetic: unknown kind '{k}'; expected one of {', '.join(KINDS)}")
    return tuple(kinds)


def generate(n: int, *, seed: int = 0, split: Split = "train", kinds: Sequence[str] = KINDS) -> list[Problem]:
    """``n`` distinct problems of ``split``, kinds in turn (round robin), deterministic in ``seed``."""
    kinds = check_kinds(kinds)
    if split not in ("train", "eval"):
        raise UserError(f"synthetic: split must be 'train' or 'eval', got {split!r}")
    rng = random.Random(f"genius-synthetic/{split}/{seed}")
    problems: list[Problem] = []
    seen: set[str] = set()
    misses = 0
    while len(problems) < n:
        kind = kinds[len(problems) % len(kinds)]
        made = _MAKERS[kind](rng)
        question = made.question
        if question in seen or split_of(question) != split:
            misses += 1
            # The kinds hold millions of texts; this only trips when n exceeds a kind's range.
            if misses > 1000 * (n + 10):
                raise UserError(f"synthetic: cannot draw {n} distinct {split} problems of kinds {', '.join(kinds)}")
            continue
        seen.add(question)
        problems.append(Problem(id=f"syn-{split}-{seed}-{len(problems)}", kind=kind, question=question,
                                answer=made.answer, choices=made.choices,
                                solution=f"{made.working}\n\nThe answer is {made.answer}."))
    return problems


def write_queries(path: str | Path, problems: Sequence[Problem], *, solutions: bool = False) -> Path:
    """Write problems as unlabeled queries (``id``, ``instruction``; no answer) to a new JSONL
    file; with ``solutions`` each also carries its worked solution as ``output`` (a labelled
    corpus for the supervised baselines)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.unlink(missing_ok=True)
    with JsonlAppender(tmp, fsync=False) as out:
        out.write_many({"id": p.id, "instruction": p.question, **({"output": p.solution} if solutions else {})}
                       for p in problems)
    tmp.replace(path)
    return path
