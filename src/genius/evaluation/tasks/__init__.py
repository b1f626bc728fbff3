"""Benchmark tasks: one module per benchmark, all registered here (``list_tasks()``).

Other code adds a task with ``register_task(Task(...))``; a task whose items come from a
generator function (``Task(generate=...)``) needs no data file.
"""

from genius.evaluation.tasks import (aime24, arc_challenge, code, gpqa, gsm8k, judged, livecodebench, logiqa, math,
                                    mmlu, reclor, strategyqa, synthetic, wildbench)
from genius.evaluation.tasks.base import AnswerType, HubSource, Item, Task, get_task, list_tasks, register_task

for _task in (gsm8k.TASK, math.MATH, math.MATH500, reclor.TASK, logiqa.TASK, strategyqa.TASK, gpqa.GPQA_DIAMOND,
              gpqa.GPQA_MAIN, arc_challenge.TASK, aime24.TASK, synthetic.TASK, *synthetic.BY_KIND,
              # general domain and code (paper Tables 2 and 6)
              mmlu.MMLU, mmlu.MMLU_PRO, code.MBPP, code.HUMANEVAL, livecodebench.TASK, judged.ARENA_HARD,
              judged.ALPACA_EVAL, wildbench.TASK, wildbench.REWARD):
    register_task(_task)

__all__ = ["AnswerType", "HubSource", "Item", "Task", "get_task", "list_tasks", "register_task"]
