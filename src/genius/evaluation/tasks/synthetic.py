"""The built-in synthetic reasoning problems (genius.synthetic) as an evaluation task.

Items come from a generator, not a file: the held-out split, ``limit`` problems (default 100)
drawn with the run's seed, so it runs offline with no data at all.
"""

from __future__ import annotations

from genius import synthetic
from genius.evaluation.tasks.base import Item, Task


def _generator(kinds: tuple[str, ...]):
    def generate(n: int, seed: int) -> list[Item]:
        return [Item(id=p.id, question=p.question, gold=p.answer, meta={"kind": p.kind, "choices": list(p.choices)})
                for p in synthetic.generate(n, seed=seed, split="eval", kinds=kinds)]

    return generate


def _problem(item: Item) -> synthetic.Problem:
    return synthetic.Problem(id=item.id, kind=str(item.meta.get("kind", "")), question=item.question,
                             answer=item.gold, choices=tuple(item.meta.get("choices", ())))


def _task(name: str, kinds: tuple[str, ...], description: str) -> Task:
    return Task(
        name=name, answer_type="text", description=description, generate=_generator(kinds),
        instruction='End your response with "The answer is: X" where X is the final number or name.',
        extract_fn=lambda response, item: synthetic.extract(_problem(item), response),
        check_fn=lambda extracted, item: extracted is not None and extracted == item.gold,
    )


TASK = _task("synthetic", synthetic.KINDS, "built-in synthetic problems (held-out split, offline)")
BY_KIND = [_task(f"synthetic_{kind}", (kind,), f"built-in synthetic problems of kind {kind} only (held-out split)")
           for kind in synthetic.KINDS]
"""One task per problem kind: evaluate on the kind a run's queries were drawn from."""
