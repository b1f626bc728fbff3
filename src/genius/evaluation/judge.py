"""LLM judging for the general-domain tasks (paper Table 2: Arena-Hard, AlpacaEval 2.0, WildBench).

A judge is any OpenAI-compatible chat endpoint (a hosted API, or ``vllm serve`` on a local
GPU: ``JudgeConfig.url``) or a local model through our own engines (``JudgeConfig.local``).
Every call is cached on disk by (judge, messages, settings), so a rerun or a resumed evaluation
never pays twice; transient failures (timeouts, HTTP 429 and 5xx) are retried with exponential
backoff and then recorded as failures, never counted as losses.

Protocols, each the benchmark's own (prompt and verdict parsing; both orders are judged to
cancel position bias):

- Arena-Hard v0.1 (lmarena/arena-hard-auto, config/judge_config.yaml and gen_judgment.py @
  7f1b7f5): the system prompt with the five-way verdict [[A>>B]] .. [[B>>A]], two games per
  question (baseline first, then the model first), a second attempt asking the judge to finish
  when no verdict was found, a verdict counted only when one label appears. Scoring as its
  show_result.py: a strong verdict counts 3 times, a tie half to each side; with one model
  against the baseline its Bradley-Terry fit reduces to that win rate.
- AlpacaEval 2.0 (tatsu-lab/alpaca_eval @ cd543a1, evaluators_configs/alpaca_eval_clf_gpt4_turbo
  and weighted_alpaca_eval_gpt4_turbo): the "m or M" leaderboard prompt, one token, the
  preference read from the top-5 log-probs of "m" and "M" (a judge without log-probs: from the
  token it wrote). This is the raw win rate: the length-controlled one needs the GLM weights
  fitted on AlpacaEval's own leaderboard, which are not reproduced here.
- WildBench v2 (allenai/WildBench @ d6b8dca, genius.evaluation.wildbench): WB-Score, one
  answer scored 1-10 against the task's checklist (no reference, so no order); WB-Reward, the
  answer against a reference model's on a five-way scale, both orders judged here.

The HTTP client is urllib, not the ``openai`` package: one POST with JSON is all it needs, and
it keeps the judge free of another dependency.

``judge_records`` puts a protocol's result on evaluation records (samples.jsonl lines): ``judge``
(games and judgements, or preferences), ``score`` (0..1, None without a verdict) and ``correct``
(score > 0.5: the model's answer won), or ``judge_error`` when the judge failed for good (such a
record is judged again by a rerun; it is never a loss). A judge at a URL gets
``JudgeConfig.parallel`` calls at once (Arena-Hard's gen_judgment runs 8 threads); a local
engine answers one call at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from genius.errors import UserError
from genius.evaluation.wildbench import judge_wildbench, judge_wildbench_reward
from genius.io import JsonlAppender, iter_jsonl, truncate_torn_tail

Messages = list[dict[str, str]]


@dataclass
class JudgeConfig:
    url: str | None = None
    """Base URL of an OpenAI-compatible API (".../v1"), e.g. https://api.openai.com/v1 or a local
    ``vllm serve`` at http://127.0.0.1:8000/v1. Unset: judge with ``local``."""
    model: str = "gpt-4-1106-preview"
    """The judge model's name at ``url`` (Arena-Hard v0.1 and AlpacaEval 2.0 used GPT-4-Turbo)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (sent as a bearer token when set; never stored)."""
    local: str | None = None
    """A model spec (embedded name, HF folder) judged through genius's own engine when no url."""
    max_tokens: int = 4096
    """Longest judgement (Arena-Hard's setting; AlpacaEval asks for one token)."""
    retries: int = 4
    """Retries of a failed call (timeouts, HTTP 429 and 5xx) before it is recorded as failed."""
    backoff_s: float = 2.0
    """Wait before the first retry; doubled each time."""
    timeout_s: float = 300.0
    """Seconds one HTTP call may take."""
    cache: Path | None = None
    """JSONL cache of judge replies (default: judge_cache.jsonl in the evaluation folder)."""
    parallel: int = 8
    """Calls in flight at once to a judge at ``url`` (a local judge answers one at a time)."""

    def identity(self) -> str:
        """What makes two judges the same for the cache (the key is not part of it)."""
        return f"url={self.url} model={self.model}" if self.url else f"local={self.local}"


@dataclass(frozen=True)
class Reply:
    text: str
    top_logprobs: dict[str, float] | None = None
    """Log-probs of the most likely first tokens, when the judge returns them."""


class JudgeError(Exception):
    """A judge call that failed for good (after its retries); recorded with the item."""


class Chat(Protocol):
    def __call__(self, messages: Messages, *, max_tokens: int, top_logprobs: int | None = None) -> Reply: ...


def openai_chat(cfg: JudgeConfig, sleep: Callable[[float], None] = time.sleep) -> Chat:
    """Greedy chat completions from ``cfg.url`` with retries and backoff."""
    if not cfg.url:
        raise UserError("judge: no url given (--judge-url) and no local judge model (--judge-local)")
    endpoint = cfg.url.rstrip("/") + "/chat/completions"
    key = os.environ.get(cfg.api_key_env)

    def call(messages: Messages, *, max_tokens: int, top_logprobs: int | None = None) -> Reply:
        body: dict[str, Any] = {"model": cfg.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens}
        if top_logprobs:
            body.update(logprobs=True, top_logprobs=top_logprobs)
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        last = ""
        for attempt in range(cfg.retries + 1):
            if attempt:
                sleep(cfg.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:
                    return _parse_reply(json.loads(response.read().decode("utf-8")))
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}: {e.read()[:200].decode('utf-8', 'replace')}"
                if e.code != 429 and e.code < 500:  # the request itself is wrong: retrying will not help
                    raise JudgeError(f"{endpoint}: {last}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError, KeyError) as e:
                last = f"{type(e).__name__}: {e}"
        raise JudgeError(f"{endpoint}: failed after {cfg.retries + 1} tries ({last})")

    return call


def _parse_reply(data: dict) -> Reply:
    choice = data["choices"][0]
    text = choice["message"]["content"] or ""
    content = ((choice.get("logprobs") or {}).get("content")) or []
    tops = {t["token"]: float(t["logprob"]) for t in content[0].get("top_logprobs", [])} if content else None
    return Reply(text, tops or None)


def engine_chat(engine: Any) -> Chat:
    """Greedy judgements from one of genius's engines (a local judge model; no log-probs).
    Calls from several threads take turns: an engine generates one batch at a time."""
    from genius.engines import SamplingParams
    from genius.models import chat_prompt_ids

    turn = threading.Lock()

    def call(messages: Messages, *, max_tokens: int, top_logprobs: int | None = None) -> Reply:
        prompt = chat_prompt_ids(engine.tokenizer, messages, "")
        if len(prompt) >= engine.max_context:
            raise JudgeError(f"local judge: the judge prompt has {len(prompt)} tokens, its context holds "
                             f"{engine.max_context}")
        with turn:
            [[completion]] = engine.generate([prompt], SamplingParams(n=1, temperature=0.0,
                                                                      max_new_tokens=max_tokens))
        return Reply(completion.text)

    return call


class CachedChat:
    """A Chat whose replies are kept in a JSONL file keyed by (judge, messages, settings).
    Safe to call from several threads (two threads asking the same thing may both call)."""

    def __init__(self, chat: Chat, identity: str, path: Path):
        self.chat, self.identity, self.path = chat, identity, path
        self.calls = 0
        self.replies: dict[str, Reply] = {}
        self._lock = threading.Lock()
        if path.is_file():
            truncate_torn_tail(path)
            for _, r in iter_jsonl(path):
                self.replies[r["key"]] = Reply(r["text"], r.get("top_logprobs"))

    def key(self, messages: Messages, max_tokens: int, top_logprobs: int | None) -> str:
        blob = json.dumps({"judge": self.identity, "messages": messages, "max_tokens": max_tokens,
                           "top_logprobs": top_logprobs}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def __call__(self, messages: Messages, *, max_tokens: int, top_logprobs: int | None = None) -> Reply:
        key = self.key(messages, max_tokens, top_logprobs)
        with self._lock:
            if key in self.replies:
                return self.replies[key]
            self.calls += 1
        reply = self.chat(messages, max_tokens=max_tokens, top_logprobs=top_logprobs)  # outside the lock: in parallel
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with JsonlAppender(self.path) as out:  # failures raise before this: they are not cached
                out.write({"key": key, "text": reply.text, "top_logprobs": reply.top_logprobs})
            self.replies[key] = reply
        return reply


# --- Arena-Hard v0.1 -------------------------------------------------------------------------

ARENA_HARD_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is "
    "to evaluate which assistant's answer is better.\n\nBegin your evaluation by generating your own answer to the "
    "prompt. You must provide your answers before judging any answers.\n\nWhen evaluating the assistants' answers, "
    "compare both assistants' answers with your answer. You must identify and correct any mistakes or inaccurate "
    "information.\n\nThen consider if the assistant's answers are helpful, relevant, and concise. Helpful means the "
    "answer correctly responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or "
    "more than one interpretation, it is more helpful and appropriate to ask for clarifications or more information "
    "from the user than providing an answer based on assumptions. Relevant means all parts of the response closely "
    "connect or are appropriate to what is being asked. Concise means the response is clear and not verbose or "
    "excessive.\n\nThen consider the creativity and novelty of the assistant's answers when needed. Finally, "
    "identify any missing important information in the assistants' answers that would be beneficial to include "
    "when responding to the user prompt.\n\nAfter providing your explanation, you must output only one of the "
    "following choices as your final verdict with a label:\n\n1. Assistant A is significantly better: [[A>>B]]\n2. "
    "Assistant A is slightly better: [[A>B]]\n3. Tie, relatively the same: [[A=B]]\n4. Assistant B is slightly "
    "better: [[B>A]]\n5. Assistant B is significantly better: [[B>>A]]\n\nExample output: \"My final verdict is "
    "tie: [[A=B]]\".")
ARENA_HARD_TEMPLATE = ("<|User Prompt|>\n{question}\n\n<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End "
                       "of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of "
                       "Assistant B's Answer|>")
ARENA_HARD_CONTINUE = "continue your judgment and finish by outputting a final verdict label"
_VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
STRONG_WEIGHT = 3
"""show_result.py's --weight: a significant win counts as three battles."""


def arena_verdict(judgment: str) -> tuple[str | None, bool]:
    """(label, try again): gen_judgment.get_score: no label -> ask again; one distinct label ->
    it; several distinct labels -> no verdict."""
    found = {m for m in _VERDICT.findall(judgment) if m}
    if not found:
        return None, True
    return (found.pop(), False) if len(found) == 1 else (None, False)


def arena_game(chat: Chat, question: str, answer_a: str, answer_b: str, max_tokens: int,
               attempts: int = 2) -> tuple[str | None, str]:
    """One game: (verdict label or None, the judgement text)."""
    messages = [{"role": "system", "content": ARENA_HARD_SYSTEM},
                {"role": "user", "content": ARENA_HARD_TEMPLATE.format(question=question, answer_a=answer_a,
                                                                       answer_b=answer_b)}]
    judgment, label = "", None
    for _ in range(attempts):
        reply = chat(messages, max_tokens=max_tokens).text
        judgment += "\n" + reply
        label, again = arena_verdict(judgment)
        if not again:
            break
        messages = [*messages, {"role": "assistant", "content": reply}, {"role": "user", "content": ARENA_HARD_CONTINUE}]
    return label, judgment


_MODEL_SIDE = {  # label -> (model's wins, baseline's wins, ties) in battles, for the model as B and as A
    "B": {"A>>B": (0, STRONG_WEIGHT, 0), "A>B": (0, 1, 0), "A=B": (0, 0, 1), "B>A": (1, 0, 0),
          "B>>A": (STRONG_WEIGHT, 0, 0)},
    "A": {"A>>B": (STRONG_WEIGHT, 0, 0), "A>B": (1, 0, 0), "A=B": (0, 0, 1), "B>A": (0, 1, 0),
          "B>>A": (0, STRONG_WEIGHT, 0)},
}


def arena_battles(label_baseline_first: str | None, label_model_first: str | None) -> tuple[int, int, int]:
    """(model wins, baseline wins, ties) of one question's two games, weighted as show_result.py;
    a game without a valid verdict adds nothing."""
    total = [0, 0, 0]
    for side, label in (("B", label_baseline_first), ("A", label_model_first)):
        for i, v in enumerate(_MODEL_SIDE[side].get(label or "", (0, 0, 0))):
            total[i] += v
    return total[0], total[1], total[2]


def judge_arena_hard(chat: Chat, question: str, model_answer: str, baseline_answer: str,
                     max_tokens: int) -> dict[str, Any]:
    """Both games of one question; ``score`` is the model's share of the weighted battles
    (ties half), None when neither game gave a verdict."""
    first, text_first = arena_game(chat, question, baseline_answer, model_answer, max_tokens)
    second, text_second = arena_game(chat, question, model_answer, baseline_answer, max_tokens)
    wins, losses, ties = arena_battles(first, second)
    battles = wins + losses + ties
    return {"games": [first, second], "judgments": [text_first, text_second], "battles": [wins, losses, ties],
            "score": (wins + ties / 2) / battles if battles else None}


# --- AlpacaEval 2.0 --------------------------------------------------------------------------

ALPACA_SYSTEM = ("You are a highly efficient assistant, who evaluates and selects the best large language model "
                 "(LLMs) based on the quality of their responses to a given instruction. This process will be used "
                 "to create a leaderboard reflecting the most accurate and human-preferred answers.")
ALPACA_TEMPLATE = (
    "I require a leaderboard for various large language models. I'll provide you with prompts given to these models "
    "and their corresponding outputs. Your task is to assess these responses, and select the model that produces the "
    "best output from a human perspective.\n\n## Instruction\n\n{{\n    \"instruction\": \"\"\"{instruction}\"\"\",\n}}"
    "\n\n## Model Outputs\n\nHere are the unordered outputs from the models. Each output is associated with a "
    "specific model, identified by a unique model identifier.\n\n{{\n    {{\n        \"model_identifier\": \"m\",\n"
    "        \"output\": \"\"\"{output_1}\"\"\"\n    }},\n    {{\n        \"model_identifier\": \"M\",\n        "
    "\"output\": \"\"\"{output_2}\"\"\"\n    }}\n}}\n\n## Task\n\nEvaluate the models based on the quality and "
    "relevance of their outputs, and select the model that generated the best output. Answer by providing the model "
    "identifier of the best model. We will use your output as the name of the best model, so make sure your output "
    "only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, "
    "...): m or M.\n\n## Best Model Identifier")


def alpaca_first_preference(reply: Reply) -> float | None:
    """P(output_1 is better): "m" against "m" + "M" in the top log-probs (logprob_parser with
    is_binarize false); without log-probs, 1 or 0 by the token written; None when neither."""
    if reply.top_logprobs:
        lp = {t.strip(): v for t, v in reply.top_logprobs.items() if t.strip() in ("m", "M")}
        if lp:
            p_m, p_big = (math.exp(lp[t]) if t in lp else 0.0 for t in ("m", "M"))
            return p_m / (p_m + p_big)
    token = reply.text.strip()[:1]
    return {"m": 1.0, "M": 0.0}.get(token)


def judge_alpaca_eval(chat: Chat, instruction: str, model_output: str, reference_output: str) -> dict[str, Any]:
    """Both orders; ``score`` is the mean probability that the model's output is preferred."""
    prefs = []
    for first, second in ((reference_output, model_output), (model_output, reference_output)):
        messages = [{"role": "system", "content": ALPACA_SYSTEM},
                    {"role": "user", "content": ALPACA_TEMPLATE.format(instruction=instruction, output_1=first,
                                                                       output_2=second)}]
        prefs.append(alpaca_first_preference(chat(messages, max_tokens=1, top_logprobs=5)))
    model_wins = [None if prefs[0] is None else 1 - prefs[0], prefs[1]]
    valid = [p for p in model_wins if p is not None]
    return {"preferences": model_wins, "score": sum(valid) / len(valid) if valid else None}


def win_rate(scores: Sequence[float | None]) -> float | None:
    """Mean of the items' scores (a tie is 0.5), over the items the judge gave a verdict on."""
    valid = [s for s in scores if s is not None]
    return sum(valid) / len(valid) if valid else None


# --- records of an evaluation ----------------------------------------------------------------

def _reference(record: dict) -> str:
    reference = (record.get("meta") or {}).get("reference")
    if not isinstance(reference, str):
        raise ValueError(f"record {record.get('id')}: a judged record needs meta.reference (the answer it is "
                         "judged against)")
    return reference


PROTOCOLS: dict[str, Callable[[Chat, dict, int], dict[str, Any]]] = {
    "arena_hard": lambda chat, r, max_tokens: judge_arena_hard(chat, r["question"], r.get("response") or "",
                                                               _reference(r), max_tokens),
    "alpaca_eval": lambda chat, r, max_tokens: judge_alpaca_eval(chat, r["question"], r.get("response") or "",
                                                                 _reference(r)),
    "wildbench": judge_wildbench,
    "wildbench_reward": judge_wildbench_reward,
}
"""Protocol name -> (chat, an evaluation record, max tokens) -> result, with ``score`` in it."""


def make_chat(cfg: JudgeConfig, cache: Path, local_engine: Callable[[str], Any] | None = None) -> CachedChat:
    """The judge of ``cfg`` behind its disk cache: the URL's API, else genius's engine for
    ``cfg.local`` (``local_engine(spec)`` builds or lends it)."""
    if cfg.url:
        return CachedChat(openai_chat(cfg), cfg.identity(), cache)
    if cfg.local and local_engine is not None:
        return CachedChat(engine_chat(local_engine(cfg.local)), cfg.identity(), cache)
    raise UserError("judge: judged tasks need a judge: --judge-url URL (an OpenAI-compatible API, with "
                    "--judge-model) or --judge-local MODEL (a model run by genius)")


def needs_judging(record: dict) -> bool:
    """Not judged yet, or the judge failed on it last time."""
    return "judge" not in record or "judge_error" in record


def judge_record(protocol: str, chat: Chat, record: dict, max_tokens: int) -> dict:
    """``record`` with the judge's result on it (``judge``, ``score``, ``correct``), or with
    ``judge_error`` when the judge failed for good; the record itself is not changed."""
    out = {k: v for k, v in record.items() if k not in ("judge", "judge_error")}
    try:
        result = PROTOCOLS[protocol](chat, record, max_tokens)
    except JudgeError as e:
        return {**out, "score": None, "correct": None, "judge_error": str(e)}
    score = result["score"]
    won = result.get("won", None if score is None else score > 0.5)  # a protocol may say what winning is
    return {**out, "judge": result, "score": score, "correct": won}


def judge_records(protocol: str, chat: Chat, records: list[dict], *, max_tokens: int, parallel: int = 1,
                  progress: Callable[[Iterable[dict]], Iterable[dict]] = lambda it: it) -> list[dict]:
    """Every record, those that need it judged (``parallel`` at once), in the same order."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown judge protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    todo = [k for k, r in enumerate(records) if needs_judging(r)]
    out = list(records)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        judged = pool.map(lambda k: judge_record(protocol, chat, records[k], max_tokens), todo)
        for k, record in zip(todo, progress(judged)):
            out[k] = record
    return out
