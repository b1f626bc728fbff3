"""The judge: the benchmarks' verdict parsing and scoring by hand, and the HTTP path against a
real local server (canned verdicts, a call that fails twice, the cache proven by counting)."""

from __future__ import annotations

import math

import pytest

from genius.evaluation.judge import (CachedChat, JudgeConfig, JudgeError, Reply, alpaca_first_preference,
                                     arena_battles, arena_verdict, judge_alpaca_eval, judge_arena_hard, openai_chat,
                                     win_rate)


def test_arena_verdict_follows_gen_judgment_get_score():
    assert arena_verdict("... My final verdict is [[B>A]].") == ("B>A", False)
    assert arena_verdict("no label yet") == (None, True)
    assert arena_verdict("[[A>B]] then again [[A>B]]") == ("A>B", False)
    assert arena_verdict("[[A>B]] or maybe [[B>A]]") == (None, False)


def test_arena_battles_weight_strong_wins_three_times_and_mirror_the_second_game():
    # game 1: baseline is A; game 2: the model is A
    assert arena_battles("B>>A", "A>>B") == (6, 0, 0)
    assert arena_battles("A>B", "A=B") == (0, 1, 1)
    assert arena_battles("A>>B", None) == (0, 3, 0)
    assert arena_battles(None, None) == (0, 0, 0)


def test_alpaca_preference_from_logprobs_and_from_text():
    reply = Reply("m", {"m": math.log(0.75), "M": math.log(0.25), "The": -9.0})
    assert alpaca_first_preference(reply) == pytest.approx(0.75)
    assert alpaca_first_preference(Reply("M")) == 0.0
    assert alpaca_first_preference(Reply("Both are good")) is None


def test_alpaca_both_orders_cancel_a_position_bias():
    always_first = lambda messages, max_tokens, top_logprobs=None: Reply("m")  # noqa: E731
    assert judge_alpaca_eval(always_first, "q", "model", "reference")["score"] == 0.5


def test_win_rate_ignores_items_without_a_verdict():
    assert win_rate([1.0, 0.0, 0.5, None]) == pytest.approx(0.5)
    assert win_rate([None]) is None


def _verdicts(fail_first: int = 0, status: int = 503):
    """A judge's replies: the first ``fail_first`` calls fail with ``status``, then the answer
    saying GOOD in assistant A's place wins."""
    left = [fail_first]

    def answer(body: dict) -> tuple[int, dict]:
        if left[0] > 0:
            left[0] -= 1
            return status, {"error": "busy"}
        a_part = body["messages"][1]["content"].split("Assistant A's Answer|>")[1]
        text = "My final verdict is [[A>B]]" if "GOOD" in a_part.split("<|The End")[0] else \
            "My final verdict is [[B>A]]"
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}}]}

    return answer


def test_arena_hard_over_http_with_retries_and_a_cache(tmp_path, monkeypatch, openai_server):
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    server = openai_server(_verdicts(fail_first=2))
    cfg = JudgeConfig(url=server.url, model="judge-x", api_key_env="JUDGE_KEY", backoff_s=0.0)
    waits: list[float] = []
    chat = CachedChat(openai_chat(cfg, sleep=waits.append), cfg.identity(), tmp_path / "cache.jsonl")
    result = judge_arena_hard(chat, "Say hi", "GOOD answer", "plain answer", max_tokens=64)
    assert result["games"] == ["B>A", "A>B"] and result["score"] == 1.0
    assert len(server.requests) == 4 and waits == [0.0, 0.0]  # two failures retried, then two games
    assert server.auths[-1] == "Bearer sk-test"
    assert server.requests[-1]["model"] == "judge-x" and server.requests[-1]["temperature"] == 0

    again = CachedChat(openai_chat(cfg), cfg.identity(), tmp_path / "cache.jsonl")  # a rerun
    assert judge_arena_hard(again, "Say hi", "GOOD answer", "plain answer", max_tokens=64) == result
    assert again.calls == 0 and len(server.requests) == 4
    assert "sk-test" not in (tmp_path / "cache.jsonl").read_text()


def test_a_judge_that_keeps_failing_is_an_error_not_a_loss(tmp_path, openai_server):
    server = openai_server(_verdicts(fail_first=10))
    cfg = JudgeConfig(url=server.url, retries=2, backoff_s=0.0)
    chat = CachedChat(openai_chat(cfg, sleep=lambda s: None), cfg.identity(), tmp_path / "cache.jsonl")
    with pytest.raises(JudgeError, match="failed after 3 tries"):
        judge_arena_hard(chat, "q", "a", "b", max_tokens=8)
    assert not (tmp_path / "cache.jsonl").exists()  # nothing cached: a rerun asks again


def test_a_client_error_is_not_retried(tmp_path, openai_server):
    server = openai_server(_verdicts(fail_first=1, status=401))
    cfg = JudgeConfig(url=server.url, retries=3, backoff_s=0.0)
    with pytest.raises(JudgeError, match="HTTP 401"):
        openai_chat(cfg, sleep=lambda s: None)([{"role": "user", "content": "x"}], max_tokens=4)
    assert len(server.requests) == 1


def test_records_get_the_verdict_or_the_failure_and_a_failure_is_judged_again():
    from genius.evaluation.judge import judge_records, needs_judging

    def chat(messages, *, max_tokens, top_logprobs=None):
        if "BROKEN" in messages[1]["content"]:
            raise JudgeError("judge down")
        return Reply("m")  # always the first output: the two orders cancel to 0.5

    records = [{"id": "a", "question": "q1", "response": "r", "meta": {"reference": "ref"}},
               {"id": "b", "question": "BROKEN q", "response": "r", "meta": {"reference": "ref"}},
               {"id": "c", "question": "q3", "response": "r", "meta": {"reference": "ref"},
                "judge": {"score": 1.0}, "score": 1.0, "correct": True}]
    out = judge_records("alpaca_eval", chat, records, max_tokens=1, parallel=2)
    assert [r["id"] for r in out] == ["a", "b", "c"] and out[2] is records[2]  # judged before: left as it was
    assert (out[0]["score"], out[0]["correct"], out[0]["judge"]["preferences"]) == (0.5, False, [0.0, 1.0])
    assert (out[1]["score"], out[1]["correct"], out[1]["judge_error"]) == (None, None, "judge down")
    assert [needs_judging(r) for r in out] == [False, True, False] and "judge" not in records[0]
    with pytest.raises(ValueError, match="unknown judge protocol"):
        judge_records("mt_bench", chat, records, max_tokens=1)


def test_a_local_judge_refuses_a_prompt_longer_than_its_context():
    from genius.evaluation.judge import engine_chat
    from genius.tiny import byte_tokenizer

    class Small:
        tokenizer, max_context = byte_tokenizer(), 64

        def generate(self, prompts, params):
            raise AssertionError("not called")

    with pytest.raises(JudgeError, match="its context holds 64"):
        engine_chat(Small())([{"role": "user", "content": "x" * 100}], max_tokens=4)
