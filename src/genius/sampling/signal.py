"""Does the self-reward carry signal? A sampling run checked against answers it never saw.

Genius trains on its own foresight scores, without labels. When the queries do have gold
answers (built-in synthetic problems, or an evaluation task read as a query source), they are
kept aside in an answer key (``queries/answers.jsonl``: id, task, gold, labels, meta) that
sampling and training never read. Afterwards this module extracts the answer of every response
the search produced and reports, in ``stats.json`` under ``signal`` and in the run's report:

- how often the chosen and the rejected response of a pair are correct, and the paired
  difference chosen - rejected with a 95% interval (normal over pairs): a self-reward with signal
  makes it positive;
- how often the final beams are correct;
- the AUROC of the foresight score f (and of the step score s) against the correctness of the
  candidate's whole response (step + rollout): 0.5 is no signal, 1 a perfect ranking;
- the share of rollouts their token budget cut (a cut response rarely states an answer).

Nothing here feeds back into sampling or training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from genius.errors import UserError
from genius.io import dumps, read_json, read_jsonl, write_json
from genius.sampling.pairs import candidate_response

ANSWERS = "answers.jsonl"


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a correct one > score of a wrong one), ties counting 1/2 (Mann-Whitney U / n1 n0);
    None when one class is empty."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    # Rank-sum with average ranks for ties: O(n log n).
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_pos = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def paired_difference(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    """mean(a - b) over pairs with a 95% normal interval; n = 0 gives nulls."""
    from genius.evaluation.stats import mean_interval

    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    if not diffs:
        return {"n": 0, "mean": None, "ci95": None}
    lo, hi = mean_interval(diffs)
    return {"n": len(diffs), "mean": sum(diffs) / len(diffs), "ci95": [lo, hi]}


def _rate(values: Sequence[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def write_answer_key(path: Path, items: Iterable[Any], task: str) -> Path:
    """The answer key of a run's queries (evaluation Items), beside its queries file."""
    from genius.io import atomic_write_text

    atomic_write_text(path, "".join(dumps({"id": it.id, "task": task, "gold": it.gold, "labels": list(it.labels),
                                           "meta": dict(it.meta)}) + "\n" for it in items))
    return path


def read_answer_key(path: Path) -> tuple[Any, dict[str, Any]]:
    """(task, query id -> Item) of an answer key; a bad record is one line naming file, line, field."""
    from genius.errors import where
    from genius.evaluation.tasks import Item, get_task
    from genius.io import iter_jsonl

    key: dict[str, Any] = {}
    task_name = None
    for line, r in iter_jsonl(path):
        for field in ("id", "task", "gold"):
            if r.get(field) is None:
                raise UserError(f"{where(path, line, field)} missing (an answer key line needs id, task and gold)")
        if task_name is not None and r["task"] != task_name:
            raise UserError(f"{where(path, line, 'task')} {r['task']!r}: expected the answers of one task "
                            f"({task_name!r} above)")
        task_name = r["task"]
        key[str(r["id"])] = Item(id=str(r["id"]), question="", gold=str(r["gold"]), labels=tuple(r.get("labels") or ()),
                                 meta=r.get("meta") or {})
    if task_name is None:
        raise UserError(f"{path}: no answers")
    return get_task(str(task_name)), key


def diagnose(trees: Iterable[dict], pairs: Iterable[dict], task: Any, key: dict[str, Any]) -> dict[str, Any]:
    """The signal diagnostics (module docstring) of trees and pairs whose queries are in ``key``."""

    def correct(text: str, item: Any) -> bool:
        return bool(task.check(task.extract(text, item), item))

    f_scores: list[float] = []
    s_scores: list[float] = []
    cand_ok: list[bool] = []
    s_ok: list[bool] = []
    beams_ok: list[bool] = []
    rollouts = cut = queries = 0
    for tree in trees:
        item = key.get(tree["query_id"])
        if item is None:
            continue
        queries += 1
        for step in tree["steps"]:
            for c in step["candidates"]:
                ok = correct(candidate_response(step, c), item)
                if c.get("f") is not None:
                    f_scores.append(c["f"])
                    cand_ok.append(ok)
                if c.get("s") is not None and math.isfinite(c["s"]):
                    s_scores.append(c["s"])
                    s_ok.append(ok)
                if c.get("rollout_finish") is not None:
                    rollouts += 1
                    cut += c["rollout_finish"] == "length"
        beams_ok += [correct(b["text"], item) for b in tree["final_beams"]]
    chosen_ok, rejected_ok = [], []
    for p in pairs:
        item = key.get(p["query_id"])
        if item is not None:
            chosen_ok.append(correct(p["chosen"], item))
            rejected_ok.append(correct(p["rejected"], item))
    out = {
        "task": task.name, "queries": queries, "pairs": len(chosen_ok),
        "chosen_correct": _rate(chosen_ok), "rejected_correct": _rate(rejected_ok),
        "chosen_minus_rejected": paired_difference(chosen_ok, rejected_ok),
        "final_beams": len(beams_ok), "final_beams_correct": _rate(beams_ok),
        "candidates": len(s_ok), "candidates_correct": _rate(s_ok),
        "auroc_f": auroc(f_scores, cand_ok), "auroc_s": auroc(s_scores, s_ok),
        "rollouts": rollouts, "rollouts_cut_share": cut / rollouts if rollouts else None,
    }
    out["headline"] = headline(out)
    out["f_by_correctness"] = {"correct": [f for f, ok in zip(f_scores, cand_ok) if ok],
                               "wrong": [f for f, ok in zip(f_scores, cand_ok) if not ok]}
    return out


def _pct(x: float | None) -> str:
    from genius.evaluation.report import pct

    return "-" if x is None else pct(x) + "%"


def headline(d: dict[str, Any]) -> str:
    """One line: what a user needs to judge the signal at a glance."""
    diff = d["chosen_minus_rejected"]
    gap = ("-" if diff["mean"] is None else
           f"{100 * diff['mean']:+.1f} pts [{100 * diff['ci95'][0]:+.1f}, {100 * diff['ci95'][1]:+.1f}]")
    au = "-" if d["auroc_f"] is None else f"{d['auroc_f']:.3f}"
    au_s = "-" if d["auroc_s"] is None else f"{d['auroc_s']:.3f}"
    return (f"signal: chosen correct {_pct(d['chosen_correct'])} vs rejected {_pct(d['rejected_correct'])} "
            f"over {d['pairs']} pairs (diff {gap}); AUROC f {au}, s {au_s}; final beams correct "
            f"{_pct(d['final_beams_correct'])}; rollouts cut {_pct(d['rollouts_cut_share'])}")


def plot_f(d: dict[str, Any], path: Path) -> bool:
    """Histogram of f for candidates whose response is correct vs wrong."""
    from genius.report.plots import _pyplot

    right, wrong = d["f_by_correctness"]["correct"], d["f_by_correctness"]["wrong"]
    if not right and not wrong:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    shown = [(v, f"{name} ({len(v)})", color) for v, name, color in
             ((right, "correct", "tab:green"), (wrong, "wrong", "tab:red")) if v]  # an empty class has no density
    ax.hist([v for v, _, _ in shown], bins=20, density=True, label=[lab for _, lab, _ in shown],
            color=[c for _, _, c in shown], alpha=0.7)
    ax.set_xlabel("foresight score f (mean rollout log-prob)")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title("f of correct vs wrong responses" + ("" if d["auroc_f"] is None else f" (AUROC {d['auroc_f']:.3f})"))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_signal(sample_dir: Path, answers: Path) -> dict[str, Any]:
    """Diagnose a finished sampling folder against an answer key: ``signal`` in stats.json, the
    f histogram as signal_f.png; returns the diagnostics (without the raw f lists)."""
    from genius.sampling.runner import iter_trees

    task, key = read_answer_key(answers)
    pairs = read_jsonl(sample_dir / "pairs.jsonl") if (sample_dir / "pairs.jsonl").is_file() else []
    d = diagnose(iter_trees(sample_dir / "trees.jsonl"), pairs, task, key)
    plot_f(d, sample_dir / "signal_f.png")
    d.pop("f_by_correctness")
    stats_path = sample_dir / "stats.json"
    stats = read_json(stats_path) if stats_path.is_file() else {}
    write_json(stats_path, {**stats, "signal": d})
    return d
