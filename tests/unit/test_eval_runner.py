"""The batched runner with a scripted engine: metrics, files, batching, resume, sampling, limits."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from genius.engines.base import Completion, SamplingParams
from genius.errors import UserError
from genius.evaluation import EvalConfig, run_eval
from genius.evaluation.tasks import Item, Task, register_task
from genius.evaluation.tasks.base import _REGISTRY
from genius.tiny import byte_tokenizer

TASK = "_scripted"


def _items(n: int, seed: int) -> list[Item]:
    return [Item(id=f"s{i}", question=f"Question number {i}: what is {i} + 1?", gold=str(i + 1)) for i in range(n)]


@pytest.fixture(autouse=True)
def scripted_task():
    register_task(Task(name=TASK, answer_type="number", description="scripted", generate=_items), replace=True)
    yield
    _REGISTRY.pop(TASK, None)


def default_answers(i: int, n: int) -> list[str]:
    """Item i: even -> right; 1 -> wrong; 3 and 5 -> no answer at all."""
    if i % 2 == 0:
        text = f"{i} + 1 = {i + 1}. The answer is: {i + 1}"
    elif i == 1:
        text = "The answer is: 99"
    else:
        text = "I am not sure."
    return [text] * n


class ScriptedEngine:
    """Answers by reading the item number from the prompt; records the size of every call."""

    def __init__(self, answers=default_answers, max_context: int = 100_000):
        self.tokenizer = byte_tokenizer()
        self.answers = answers
        self.max_context = max_context
        self.calls: list[int] = []

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append(len(prompts))
        out = []
        for p in prompts:
            i = int(re.findall(r"Question number (\d+)", self.tokenizer.decode(list(p)))[-1])
            out.append([Completion(text=t, token_ids=list(range(len(t.split()))), logprobs=[0.0] * len(t.split()),
                                   finish_reason="eos") for t in self.answers(i, params.n)])
        return out


def cfg(**kw) -> EvalConfig:
    base = dict(model="scripted", tasks=[TASK], limit=6, preset="zero-shot", batch_size=4)
    return EvalConfig(**{**base, **kw})


def test_metrics_and_files(tmp_path: Path) -> None:
    engine = ScriptedEngine()
    metrics = run_eval(cfg(), tmp_path, engine=engine)[TASK]
    # Items 0, 2, 4 right; 1 wrong; 3 and 5 without an answer: 3/6 correct, 2 unanswered.
    assert metrics["accuracy"] == 0.5 and metrics["n"] == 6 and metrics["n_no_answer"] == 2
    assert metrics["ci95"][0] < 0.5 < metrics["ci95"][1]
    assert engine.calls == [4, 2]  # batches of 4 items
    records = [json.loads(line) for line in (tmp_path / TASK / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"s{i}" for i in range(6)]
    assert {"id", "question", "gold", "response", "extracted", "correct", "tokens"} <= set(records[0])
    assert records[1]["extracted"] == "99" and records[1]["correct"] is False and records[3]["extracted"] is None
    assert json.loads((tmp_path / TASK / "metrics.json").read_text())["accuracy"] == 0.5
    assert f"| {TASK} | 6 | 50.0 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "config.yaml").is_file()


def test_resume_skips_done_items_and_survives_a_torn_line(tmp_path: Path) -> None:
    run_eval(cfg(limit=3), tmp_path, engine=ScriptedEngine())
    with (tmp_path / TASK / "samples.jsonl").open("a") as f:
        f.write('{"id": "s3", "quest')  # a killed writer's last line
    engine = ScriptedEngine()
    metrics = run_eval(cfg(limit=6), tmp_path, engine=engine)[TASK]
    assert engine.calls == [3]  # only s3, s4, s5
    assert metrics["n"] == 6 and metrics["accuracy"] == 0.5
    # A smaller limit reports on its items only, generating nothing.
    engine = ScriptedEngine()
    assert run_eval(cfg(limit=2), tmp_path, engine=engine)[TASK]["n"] == 2 and engine.calls == []


def test_changed_settings_refuse_to_resume(tmp_path: Path) -> None:
    run_eval(cfg(limit=2), tmp_path, engine=ScriptedEngine())
    with pytest.raises(UserError, match=r"config\.yaml: this folder was started with other settings \(preset"):
        run_eval(cfg(limit=2, preset="paper"), tmp_path, engine=ScriptedEngine())


def test_samples_give_sampled_accuracy_majority_and_pass(tmp_path: Path) -> None:
    def answers(i: int, n: int) -> list[str]:
        # right, wrong, right for every item: sampled accuracy 2/3, majority right, pass@3 = 1.
        return [f"The answer is: {i + 1}", "The answer is: 0", f"The answer is {i + 1}.0"][:n]

    m = run_eval(cfg(samples=3, limit=4), tmp_path, engine=ScriptedEngine(answers))[TASK]
    assert m["accuracy"] == pytest.approx(2 / 3) and m["maj@3"] == 1.0 and m["pass@3"] == 1.0
    record = json.loads((tmp_path / TASK / "samples.jsonl").read_text().splitlines()[0])
    assert len(record["samples"]) == 3 and record["majority"] == "1" and record["n_correct"] == 2
    assert "maj@3" in (tmp_path / "results.md").read_text()


def test_prompt_longer_than_the_context_counts_as_unanswered(tmp_path: Path) -> None:
    engine = ScriptedEngine(max_context=20)
    m = run_eval(cfg(limit=2), tmp_path, engine=engine)[TASK]
    assert engine.calls == [] and m["n_no_answer"] == 2 and m["n_prompt_too_long"] == 2 and m["accuracy"] == 0.0


@pytest.mark.parametrize("bad,match", [
    (dict(tasks=["nope"]), "unknown task 'nope'"),
    (dict(samples=0), "samples must be >= 1"),
    (dict(limit=0), "limit must be >= 1"),
    (dict(preset="x"), "unknown prompt preset"),
])
def test_bad_settings(tmp_path: Path, bad: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        run_eval(cfg(**bad), tmp_path, engine=ScriptedEngine())
    assert not (tmp_path / "config.yaml").exists()


def test_the_bar_counts_responses_as_the_engine_finishes_them(tiny_engine, tmp_path: Path, monkeypatch) -> None:
    """Real tiny model, greedy, 3 items in one batch: item 0's prompt sits 3 tokens below the context,
    so its answer stops after 3 tokens while the others run to 12. The bar (3 responses) moves
    twice while the one generate call runs: by 1 at token 3, by 2 at token 12."""
    import genius.evaluation.evaluate as evaluate

    long_task = "_long_and_short"
    question = "Question number {}: what?"
    filler = tiny_engine.max_context - 3 - len(chat_ids(tiny_engine, question.format(0)))
    items = [Item(id=f"l{i}", question=question.format(i) + (" " + "z" * (filler - 1) if i == 0 else ""), gold="1")
             for i in range(3)]
    register_task(Task(name=long_task, answer_type="number", description="lengths", generate=lambda n, seed: items),
                  replace=True)
    in_generate, updates = [False], []

    class Bar(evaluate.tqdm):
        def update(self, n=1):
            updates.append((n, in_generate[0]))
            return super().update(n)

    def generate(prompts, params):
        in_generate[0] = True
        try:
            return type(tiny_engine).generate(tiny_engine, prompts, params)
        finally:
            in_generate[0] = False

    monkeypatch.setattr(evaluate, "tqdm", Bar)
    monkeypatch.setattr(tiny_engine, "generate", generate)
    try:
        m = run_eval(cfg(tasks=[long_task], limit=3, max_new_tokens=12, batch_size=3), tmp_path,
                     engine=tiny_engine)[long_task]
    finally:
        _REGISTRY.pop(long_task, None)
    records = [json.loads(line) for line in (tmp_path / long_task / "samples.jsonl").read_text().splitlines()]
    assert [r["tokens"] for r in records] == [3, 12, 12] and m["n"] == 3
    assert [(n, inside) for n, inside in updates if n] == [(1, True), (2, True)]


def chat_ids(engine, question: str) -> list[int]:
    """The prompt of a zero-shot item asking ``question`` (what the runner sends)."""
    from genius.evaluation.prompts import build_messages, get_preset
    from genius.models import chat_prompt_ids

    task = Task(name="_probe", answer_type="number", description="", generate=_items)
    return chat_prompt_ids(engine.tokenizer, build_messages(task, Item(id="p", question=question, gold="1"),
                                                            get_preset("zero-shot")))
