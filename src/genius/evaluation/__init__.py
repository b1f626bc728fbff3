"""Reasoning benchmarks with the paper's protocol: tasks, answer extraction, the batched runner,
statistics and reports. ``run_eval(EvalConfig(...), out_dir)`` is the entry point."""

from genius.evaluation.compare import Paired, compare_runs, load_eval_dir, paired_difference
from genius.evaluation.evaluate import EvalConfig, evaluate_task, run_eval, task_metrics
from genius.evaluation.report import compare_table, results_table
from genius.evaluation.tasks import HubSource, Item, Task, get_task, list_tasks, register_task

__all__ = ["EvalConfig", "HubSource", "Item", "Paired", "Task", "compare_runs", "compare_table", "evaluate_task",
           "get_task", "list_tasks", "load_eval_dir", "paired_difference", "register_task", "results_table",
           "run_eval", "task_metrics"]
