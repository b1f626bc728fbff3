"""The built-in synthetic reasoning problems (genius.synthetic) as an evaluation task.

Items come from a generator, not a file: the held-out split, ``limit`` problems (default 100)
drawn with the run's seed, so it runs offline with no data at all.

The task mixes two answer types of genius.evaluation.answers.ANSWER_TYPES: an ordering problem
(its ``meta.choices`` lists the people in the question) is answered with a ``name``, the
arithmetic ones with a ``number``. Items are read from ``meta`` (not ``labels``) as the answer
keys of runs (``queries/answers.jsonl``) hold them.
"""

from __future__ import annotations

from genius import synthetic
from genius.evaluation.answers import ANSWER_TYPES, AnswerSpec
from genius.evaluation.tasks.base import Item, Task


def _generator(kinds: tuple[str, ...]):
    def generate(n: int, seed: int) -> list[Item]:
        return [Item(id=p.id, question=p.question, gold=p.answer, meta={"kind": p.kind, "choices": list(p.choices)})
                for p in synthetic.generate(n, seed=seed, split="eval", kinds=kinds)]

    return generate


def _answer(item: Item) -> tuple[AnswerSpec, tuple[str, ...]]:
    """The item's answer type and the names its answer is one of (none for a number)."""
    names = tuple(item.meta.get("choices") or ())
    return (ANSWER_TYPES["name"] if names else ANSWER_TYPES["number"]), names


def extract_answer(response: str, item: Item) -> str | None:
    spec, names = _answer(item)
    return spec.extract(response, names)


def is_correct(extracted: str | None, item: Item) -> bool:
    return extracted is not None and _answer(item)[0].same(extracted, item.gold)


def _task(name: str, kinds: tuple[str, ...], description: str) -> Task:
    return Task(
        name=name, answer_type="text", description=description, generate=_generator(kinds),
        instruction='End your response with "The answer is: X" where X is the final number or name.',
        extract_fn=extract_answer, check_fn=is_correct,
    )


TASK = _task("synthetic", synthetic.KINDS, "built-in synthetic problems (held-out split, offline)")
BY_KIND = [_task(f"synthetic_{kind}", (kind,), f"built-in synthetic problems of kind {kind} only (held-out split)")
           for kind in synthetic.KINDS]
"""One task per problem kind: evaluate on the kind a run's queries were drawn from."""
