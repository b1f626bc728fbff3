"""Judged tasks end to end through run_eval: Arena-Hard and AlpacaEval against a real local HTTP
judge on 127.0.0.1 (canned verdicts by which answer says GOOD), win rates by hand, the cache
proven by counting requests on reruns, a judge that fails for good recorded as failed and asked
again by a rerun, the evaluated model judging itself, and `genius eval compare` and the run
report giving the same numbers for judged tasks."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from genius.cli import main
from genius.engines.base import Completion, SamplingParams
from genius.errors import UserError
from genius.evaluation import EvalConfig, run_eval
from genius.evaluation.compare import RESAMPLES, SEED, compare_runs
from genius.evaluation.judge import ALPACA_SYSTEM, ARENA_HARD_SYSTEM
from genius.evaluation.prompts import build_messages, get_preset
from genius.evaluation.stats import bootstrap_interval
from genius.evaluation.tasks import get_task
from genius.io import write_yaml
from genius.report import build_report
from genius.tiny import byte_tokenizer

# Arena-Hard: (question, baseline answer); the model answers GOOD to questions that ask for it.
ARENA = [("Say hi (write well).", "hi"), ("Name a colour.", "blue"), ("Count to two.", "GOOD: one, two"),
         ("Spell cat (write well).", "c-a-t")]
ALPACA = [("Greet me (write well).", "Hello."), ("Name a fruit.", "Apple.")]


def _data(root: Path) -> Path:
    arena = root / "arena_hard"
    arena.mkdir(parents=True)
    arena.joinpath("question.jsonl").write_text("".join(
        json.dumps({"uid": f"u{k}", "category": "arena-hard-v0.1", "cluster": "c", "prompt": q}) + "\n"
        for k, (q, _) in enumerate(ARENA)))
    arena.joinpath("arena_hard_v0.1.gpt-4-0314.jsonl").write_text("".join(
        json.dumps({"uid": f"u{k}", "model": "gpt-4-0314", "messages": [
            {"role": "user", "content": q}, {"role": "assistant", "content": {"answer": a}}]}) + "\n"
        for k, (q, a) in enumerate(ARENA)))
    (root / "alpaca_eval").mkdir()
    (root / "alpaca_eval" / "alpaca_eval.gpt4_1106_preview.json").write_text(json.dumps(
        [{"dataset": "helpful_base", "instruction": q, "output": a, "generator": "gpt4_1106_preview"}
         for q, a in ALPACA], indent=2))
    return root


class JudgeReplies:
    """An OpenAI-compatible judge's replies (served by the openai_server fixture). Arena-Hard: the
    answer saying GOOD is better, else B (a position bias the two games cancel). AlpacaEval:
    log-probs 0.9 for the output saying GOOD, else 0.6 for the first. ``fail``: questions
    containing it get HTTP 400."""

    def __init__(self, fail: str | None = None):
        self.fail = fail

    def __call__(self, body: dict) -> tuple[int, dict]:
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        if self.fail is not None and self.fail in user:
            return 400, {"error": "bad request"}
        if system == ARENA_HARD_SYSTEM:
            a = user.split("<|The Start of Assistant A's Answer|>")[1].split("<|The End")[0]
            b = user.split("<|The Start of Assistant B's Answer|>")[1].split("<|The End")[0]
            text = "My final verdict is [[A>B]]" if "GOOD" in a and "GOOD" not in b else "My final verdict is [[B>A]]"
            return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}
        assert system == ALPACA_SYSTEM and body["max_tokens"] == 1 and body["top_logprobs"] == 5
        first, second = re.findall(r'"output": """(.*?)"""', user, re.S)
        p_first = 0.9 if "GOOD" in first else 0.1 if "GOOD" in second else 0.6
        tops = [{"token": "m", "logprob": math.log(p_first)}, {"token": "M", "logprob": math.log(1 - p_first)}]
        return 200, {"choices": [{"message": {"role": "assistant", "content": "m" if p_first >= 0.5 else "M"},
                                  "logprobs": {"content": [{"token": "m", "top_logprobs": tops}]}}]}


@pytest.fixture
def judge(openai_server):
    return openai_server(JudgeReplies())


class Answerer:
    """Answers "GOOD answer" where the question asks to write well (``good`` decides), else a
    plain one; as a judge (a prompt holding a judge's system text) it prefers A."""

    def __init__(self, good: Callable[[str], bool] = lambda q: "(write well)" in q):
        self.tokenizer = byte_tokenizer()
        self.max_context = 100_000
        self.good = good
        self.judge_prompts = 0

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for p in prompts:
            text = self.tokenizer.decode(list(p))
            if "impartial judge" in text:
                self.judge_prompts += 1
                reply = "My final verdict is [[A>B]]"
            elif "leaderboard" in text:
                self.judge_prompts += 1
                reply = "m"
            else:
                reply = "GOOD answer" if self.good(text) else "plain answer"
            out.append([Completion(text=reply, token_ids=[1, 2], logprobs=[0.0, 0.0], finish_reason="eos")] * params.n)
        return out


def _cfg(data: Path, **kw) -> EvalConfig:
    return EvalConfig(**{"model": "scripted", "tasks": ["arena_hard", "alpaca_eval"], "data_dir": data, **kw})


def _records(folder: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (folder / task / "samples.jsonl").read_text().splitlines()]


def test_a_judged_question_is_a_plain_user_message(tmp_path: Path) -> None:
    item = get_task("arena_hard").load(_data(tmp_path) / "arena_hard")[0]
    assert item.meta["reference"] == "hi"
    for preset in ("paper", "code", "zero-shot"):
        assert build_messages(get_task("arena_hard"), item, get_preset(preset)) == \
            [{"role": "user", "content": "Say hi (write well)."}]


def test_judged_tasks_need_a_judge_and_only_one(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="arena_hard, alpaca_eval are scored by an LLM judge: pass --judge-url"):
        _cfg(tmp_path).validate()
    with pytest.raises(UserError, match="judge_url and judge_local both given"):
        _cfg(tmp_path, judge_url="http://127.0.0.1:1/v1", judge_local="smollm2-135m").validate()
    # the judgement budget: Arena-Hard's for an API, the evaluation's for a small local model
    assert _cfg(tmp_path, judge_url="http://x/v1").judge_config().max_tokens == 4096
    assert _cfg(tmp_path, judge_local="m", max_new_tokens=96).judge_config().max_tokens == 96
    assert _cfg(tmp_path, judge_local="m", judge_max_tokens=7).judge_config().max_tokens == 7


def test_win_rates_by_hand_and_the_cache_on_reruns(tmp_path: Path, judge) -> None:
    data, out = _data(tmp_path / "data"), tmp_path / "out"
    results = run_eval(_cfg(data, judge_url=judge.url, judge_model="judge-x"), out, engine=Answerer())
    arena, alpaca = results["arena_hard"], results["alpaca_eval"]
    # Arena-Hard, per question (game 1: baseline is A; game 2: the model is A):
    #   u0 GOOD vs "hi": B>A then A>B -> the model wins both: 1.0
    #   u1 plain vs plain: B>A twice -> one game each: 0.5
    #   u2 plain vs GOOD baseline: A>B then B>A -> the baseline wins both: 0.0
    #   u3 GOOD vs plain: 1.0
    assert [r["score"] for r in _records(out, "arena_hard")] == [1.0, 0.5, 0.0, 1.0]
    assert [r["correct"] for r in _records(out, "arena_hard")] == [True, False, False, True]
    assert (arena["metric"], arena["win_rate"], arena["accuracy"]) == ("win_rate", 0.625, 0.625)
    assert (arena["n_judged"], arena["n_judge_failed"], arena["n_no_verdict"], arena["n_won"]) == (4, 0, 0, 2)
    assert arena["ci95"] == list(bootstrap_interval([1.0, 0.5, 0.0, 1.0], rng=__import__("random").Random(SEED),
                                                    resamples=RESAMPLES))
    assert arena["judge"] == f"url={judge.url} model=judge-x" and arena["judge_protocol"] == "arena_hard"
    first = _records(out, "arena_hard")[0]["judge"]
    assert first["games"] == ["B>A", "A>B"] and first["battles"] == [2, 0, 0]
    # AlpacaEval: GOOD vs "Hello.": P(model) = 0.9 in both orders; plain vs plain: 0.4 and 0.6
    assert [r["score"] for r in _records(out, "alpaca_eval")] == pytest.approx([0.9, 0.5])
    assert alpaca["win_rate"] == pytest.approx(0.7) and alpaca["n_judged"] == 2
    assert len(judge.requests) == 4 * 2 + 2 * 2  # two games / two orders per item, every one answered at once
    assert all(r["model"] == "judge-x" and r["temperature"] == 0 for r in judge.requests)
    table = (out / "results.md").read_text()
    assert "| arena_hard | 4 | 62.5 |" in table and "| alpaca_eval | 2 | 70.0 |" in table
    assert "win rate against the reference answers (arena_hard, alpaca_eval)" in table
    assert "arena_hard: judge url=" in table and "4 judged, 0 judge failures" in table

    # A rerun: everything judged, nothing asked.
    again = run_eval(_cfg(data, judge_url=judge.url, judge_model="judge-x"), out, engine=Answerer())
    assert len(judge.requests) == 12 and again["arena_hard"]["win_rate"] == 0.625
    # Killed after the judge answered but before the records were written: the cache answers.
    for task in ("arena_hard", "alpaca_eval"):
        path = out / task / "samples.jsonl"
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in ("judge", "score")}) + "\n"
                                for r in _records(out, task)))
    again = run_eval(_cfg(data, judge_url=judge.url, judge_model="judge-x"), out, engine=Answerer())
    assert len(judge.requests) == 12 and again["alpaca_eval"]["win_rate"] == pytest.approx(0.7)
    assert len((out / "arena_hard" / "judge_cache.jsonl").read_text().splitlines()) == 8
    # Another judge model may not take over a folder judged by the first.
    with pytest.raises(UserError, match="judge_model"):
        run_eval(_cfg(data, judge_url=judge.url, judge_model="judge-y"), out, engine=Answerer())


def test_a_judge_that_fails_for_good_is_recorded_and_asked_again(tmp_path: Path, openai_server) -> None:
    data, out = _data(tmp_path / "data"), tmp_path / "out"
    replies = JudgeReplies(fail="Count to two")  # every call about u2 is refused (HTTP 400: not retried)
    failing = openai_server(replies)
    m = run_eval(_cfg(data, tasks=["arena_hard"], judge_url=failing.url), out, engine=Answerer())["arena_hard"]
    records = _records(out, "arena_hard")
    assert "HTTP 400" in records[2]["judge_error"] and records[2]["score"] is None
    assert records[2]["correct"] is None and "judge" not in records[2]
    # left out, not a loss: the win rate is over u0, u1, u3
    assert (m["n_judged"], m["n_judge_failed"], m["win_rate"]) == (3, 1, pytest.approx(2.5 / 3))
    assert "1 judge failures" in (out / "results.md").read_text()
    asked = len(failing.requests)
    replies.fail = None  # the judge is back: a rerun asks about u2 only
    m = run_eval(_cfg(data, tasks=["arena_hard"], judge_url=failing.url), out, engine=Answerer())["arena_hard"]
    assert len(failing.requests) == asked + 2 and (m["n_judged"], m["n_judge_failed"]) == (4, 0)
    assert "judge_error" not in _records(out, "arena_hard")[2] and m["win_rate"] == 0.625


def test_everything_failing_gives_no_score_rather_than_zero(tmp_path: Path, openai_server) -> None:
    failing = openai_server(JudgeReplies(fail=""))  # every request
    m = run_eval(_cfg(_data(tmp_path / "data"), tasks=["alpaca_eval"], judge_url=failing.url), tmp_path / "o",
                 engine=Answerer())["alpaca_eval"]
    assert m["win_rate"] is None and m["accuracy"] is None and m["n_judge_failed"] == 2
    assert "| alpaca_eval | 2 | - |" in (tmp_path / "o" / "results.md").read_text()


def test_the_evaluated_model_judges_itself_on_its_own_engine(tmp_path: Path, monkeypatch) -> None:
    import genius.engines

    monkeypatch.setattr(genius.engines, "make_engine", lambda *a, **k: pytest.fail("no second engine"))
    engine = Answerer()
    m = run_eval(_cfg(_data(tmp_path / "data"), tasks=["arena_hard"], judge_local="scripted", judge_max_tokens=16),
                 tmp_path / "o", engine=engine)["arena_hard"]
    # This judge always says A>B: game 1 favours the baseline, game 2 the model -> 0.5 each
    assert engine.judge_prompts == 8 and m["win_rate"] == 0.5 and m["judge"] == "local=scripted"


def test_compare_and_the_run_report_give_the_same_judged_numbers(tmp_path: Path, judge,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data, run = _data(tmp_path / "data"), tmp_path / "run"
    write_yaml(run / "config.yaml", {"model": "tiny", "method": "genius"})
    base, trained = run / "eval" / "base", run / "round1" / "eval"
    run_eval(_cfg(data, judge_url=judge.url), base, engine=Answerer(good=lambda q: False))
    run_eval(_cfg(data, judge_url=judge.url), trained, engine=Answerer())
    rows = compare_runs(base, trained)
    # arena_hard: base scores [0.5, 0.5, 0.0, 0.5], trained [1.0, 0.5, 0.0, 1.0]: +0.25 on average;
    # wins (score > 0.5): base none, trained u0 and u3 -> only B won 2, McNemar p = 0.5
    arena = rows["arena_hard"]
    assert (arena.metric, arena.n, arena.acc_a, arena.acc_b) == ("win_rate", 4, 0.375, 0.625)
    assert arena.diff == pytest.approx(0.25) and (arena.only_a, arena.only_b, arena.p_value) == (0, 2, 0.5)
    assert arena.low <= arena.diff <= arena.high
    capsys.readouterr()
    assert main(["eval", "compare", str(base), str(trained)]) == 0
    printed = capsys.readouterr().out
    report = build_report(run)
    for task in ("arena_hard", "alpaca_eval"):
        r = rows[task]
        cells = next(line for line in printed.splitlines() if line.startswith(f"| {task} |")).split(" | ")
        assert cells[4:9] == [f"{100 * r.diff:+.1f}", f"{100 * r.low:+.1f} to {100 * r.high:+.1f}", str(r.only_a),
                              str(r.only_b), f"{r.p_value:.3g} |"]
        line = next(x for x in report.splitlines() if x.startswith(f"| {task} |"))
        assert f"{100 * r.diff:+.1f} [{100 * r.low:+.1f}, {100 * r.high:+.1f}] | {r.only_a} / {r.only_b} | " \
               f"{r.p_value:.3g} |" in line
    assert "win rates over the items both judged" in printed
    assert "the win rate against the reference" in report


def test_genius_run_hands_the_code_and_judge_settings_to_its_evaluation() -> None:
    from genius.pipeline import PipelineConfig, eval_config

    cfg = PipelineConfig(eval={"tasks": ["mbpp", "arena_hard"], "allow_code_execution": True,
                               "judge_local": "smollm2-135m", "judge_max_tokens": 64})
    ev = eval_config(cfg, "runs/x/round1/checkpoint")
    assert ev.allow_code_execution and ev.judge_local == "smollm2-135m"
    assert ev.judge_config().max_tokens == 64 and ev.judge_config().identity() == "local=smollm2-135m"
    with pytest.raises(UserError, match="task mbpp is scored by running the model's programs"):
        eval_config(PipelineConfig(eval={"tasks": ["mbpp"]}), "m")
    with pytest.raises(UserError, match="arena_hard are scored by an LLM judge"):
        eval_config(PipelineConfig(eval={"tasks": ["arena_hard"]}), "m")
