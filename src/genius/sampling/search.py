"""Stepwise foresight search over many queries in lockstep, against the Engine protocol only.

One search step of every active query costs two engine calls in all, whatever the number of
queries: one that samples the candidate steps of every beam of every query, one that rolls every
candidate out to the end of its response (plus rare calls that finish blank steps). Every prompt
carries its own seed, keyed by (seed, query, step, candidate): what a query samples does not
depend on the other queries of the call, the batch size, the shard or a resume.
Prompts are token ids: the chat prompt with the assistant prefix, then the generated token ids
of the steps so far, concatenated as generated (no re-tokenisation drift).

Choices the paper leaves open, made here:
- A step that holds nothing but whitespace (the model wrote a blank line) is not a step: its
  sample is continued to the next delimiter. Stopping and resuming a sample does not change its
  distribution, so this equals sampling with the stop rule "delimiter after some text".
- f is the mean log-prob of the rollout tokens only (paper Eq. 1). A candidate whose step ended the
  response (EOS or an end marker) has no rollout; its f is its step's mean log-prob.
- A beam whose step ended the response retires: the next step keeps one beam fewer. A query whose
  beams all retired, or that ran K steps, is done.
- With score=step_logprob (w/o foresight) s stands in for f everywhere; the rollouts are still
  made, unscored, so that its chosen and rejected responses are whole answers like Genius's.
- A beam needs ``STEP_ROOM`` tokens left in the context window to take a step (``has_room``); a
  query whose prompt alone leaves less cannot take any and is the runner's to skip.

Progress: ``advance`` reports the share of the live queries' step done while its engine calls run,
as their sequences finish; the candidates' call and the rollouts' call split each step in
proportion to their token budgets (max_step_tokens : max_rollout_tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from genius.engines.base import Completion, Engine, SamplingParams, derive_seed
from genius.models import chat_prompt_ids
from genius.queries import Query
from genius.sampling.config import SampleConfig
from genius.sampling.scoring import advantages, choose_beams, foresight_score, mean, rng_for

MAX_BLANK_ROUNDS = 4  # a model that writes only blank lines gets this many continuations per step
STEP_ROOM = 2
"""Tokens a sequence needs left in the context window for a step: one for the step, and one more
so that the step's rollout prompt still leaves room to generate."""

Progress = Callable[[float], None]
"""Told how many query-steps were just done (fractions of one while its engine calls run)."""


def has_room(tokens: int, max_context: int) -> bool:
    """Whether a sequence of ``tokens`` tokens (prompt and steps so far) can take another step."""
    return tokens + STEP_ROOM < max_context


@dataclass
class Beam:
    ids: list[int]
    """Generated token ids after the prompt (which already ends with the assistant prefix)."""
    q: float
    """Q: the score of the candidate that made this beam (0 at the root)."""


@dataclass
class QuerySearch:
    """The search state of one query; ``record()`` is its line of trees.jsonl once ``done``."""

    query: Query
    prompt_ids: list[int]
    assistant_prefix: str
    beams: list[Beam]
    width: int
    """How many beams the next selection keeps: M minus the beams retired so far."""
    k: int = 1
    done: bool = False
    steps: list[dict] = field(default_factory=list)
    step_tokens: int = 0
    rollout_tokens: int = 0

    @classmethod
    def start(cls, query: Query, engine: Engine, cfg: SampleConfig) -> "QuerySearch":
        prompt = chat_prompt_ids(engine.tokenizer, query.messages, cfg.assistant_prefix)
        return cls(query=query, prompt_ids=prompt, assistant_prefix=cfg.assistant_prefix,
                   beams=[Beam(ids=[], q=0.0)], width=cfg.beams)

    def fits(self, max_context: int) -> bool:
        """Whether the prompt leaves room in the context window for a first step."""
        return has_room(len(self.prompt_ids), max_context)

    def record(self, tokenizer) -> dict:
        return {
            "query_id": self.query.id,
            "index": self.query.index,
            "messages": self.query.messages,
            "assistant_prefix": self.assistant_prefix,
            "prompt_tokens": len(self.prompt_ids),
            "steps": self.steps,
            "final_beams": [{"text": self.beam_text(b, tokenizer), "Q": b.q} for b in self.beams],
            "ended": not self.beams,
            "generated_tokens": {"step": self.step_tokens, "rollout": self.rollout_tokens},
        }

    def beam_text(self, beam: Beam, tokenizer) -> str:
        return self.assistant_prefix + tokenizer.decode(beam.ids, skip_special_tokens=True)


@dataclass
class _Cand:
    search: QuerySearch
    parent: int
    index: int
    """Its place among the query's candidates of this step: with the query, the step and the
    seed it keys every random draw made for it, so the samples of a query do not depend on which
    other queries share the engine calls (batch size, shards, resume)."""
    step: Completion
    rollout: Completion | None = None

    def seed(self, cfg: SampleConfig, purpose: str) -> int:
        return derive_seed(cfg.seed, self.search.query.id, self.search.k, purpose, self.index)


def advance(searches: Sequence[QuerySearch], engine: Engine, cfg: SampleConfig,
            progress: Progress | None = None) -> int:
    """Run one search step of every search that is not done; return the tokens generated.
    ``progress`` is told the query-steps done as the engine calls' sequences finish (at most one
    per live search in all: the caller counts what an engine did not report)."""
    live = [s for s in searches if not s.done]
    for s in live:  # a beam with no room left in the context window cannot take another step
        room = [b for b in s.beams if has_room(len(s.prompt_ids) + len(b.ids), engine.max_context)]
        s.width -= len(s.beams) - len(room)
        s.beams = room
        if not s.beams or s.width < 1:
            s.done = True
    live = [s for s in live if not s.done]
    if not live:
        return 0
    step_share = len(live) * cfg.max_step_tokens / (cfg.max_step_tokens + cfg.max_rollout_tokens)
    cands = _sample_steps(live, engine, cfg, progress, step_share)
    cands = _finish_blank_steps(cands, engine, cfg)
    # w/o foresight too: they complete the responses, unscored
    _rollouts(cands, engine, cfg, progress, len(live) - step_share)
    by_search: dict[int, list[_Cand]] = {}
    for c in cands:
        by_search.setdefault(id(c.search), []).append(c)
    tokens = 0
    for s in live:
        tokens += _select(s, by_search[id(s)], engine, cfg)
    return tokens


def _reporter(progress: Progress | None, share: float, sequences: int) -> Callable[[int], None] | None:
    """The ``on_finished`` of an engine call whose ``sequences`` sequences make ``share`` query-steps."""
    if progress is None or sequences == 0:
        return None
    return lambda finished: progress(share * finished / sequences)


def _sample_steps(live: list[QuerySearch], engine: Engine, cfg: SampleConfig, progress: Progress | None = None,
                  share: float = 0.0) -> list[_Cand]:
    prompts: list[list[int]] = []
    owners: list[tuple[QuerySearch, int, int]] = []
    seeds: list[int] = []
    for s in live:
        # At the root the M beams are one and the same: M copies of it give the M*N candidates.
        parents = [0] * cfg.beams if s.k == 1 else range(len(s.beams))
        for b, p in enumerate(parents):
            prompts.append(s.prompt_ids + s.beams[p].ids)
            owners.append((s, p, b))
            seeds.append(derive_seed(cfg.seed, s.query.id, s.k, "step", b))
    params = SamplingParams(n=cfg.candidates, temperature=cfg.step_temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_step_tokens, stop=(cfg.delimiter, *cfg.end_markers),
                            seeds=tuple(seeds), on_finished=_reporter(progress, share, len(prompts) * cfg.candidates))
    outs = engine.generate(prompts, params)
    return [_Cand(search=s, parent=p, index=b * cfg.candidates + j, step=c)
            for (s, p, b), group in zip(owners, outs) for j, c in enumerate(group)]


def _is_blank(c: Completion, cfg: SampleConfig) -> bool:
    return c.finish_reason == "stop" and c.stop_string == cfg.delimiter and not c.text.strip()


def _finish_blank_steps(cands: list[_Cand], engine: Engine, cfg: SampleConfig) -> list[_Cand]:
    for round_ in range(MAX_BLANK_ROUNDS):
        blank = [c for c in cands if _is_blank(c.step, cfg) and len(c.step.token_ids) < cfg.max_step_tokens]
        if not blank:
            break
        # One call per budget left, so that no step's budget depends on the others in the call.
        by_room: dict[int, list[_Cand]] = {}
        for c in blank:
            by_room.setdefault(cfg.max_step_tokens - len(c.step.token_ids), []).append(c)
        for room, group in by_room.items():
            prompts = [c.search.prompt_ids + c.search.beams[c.parent].ids + c.step.token_ids for c in group]
            params = SamplingParams(n=1, temperature=cfg.step_temperature, top_p=cfg.top_p, max_new_tokens=room,
                                    stop=(cfg.delimiter, *cfg.end_markers),
                                    seeds=tuple(c.seed(cfg, f"blank{round_}") for c in group))
            for c, [more] in zip(group, engine.generate(prompts, params)):
                c.step = Completion(text=c.step.text + more.text, token_ids=c.step.token_ids + more.token_ids,
                                    logprobs=c.step.logprobs + more.logprobs, finish_reason=more.finish_reason,
                                    stop_string=more.stop_string, prompt_tokens=c.step.prompt_tokens)
    return cands


def _ends_response(c: Completion, cfg: SampleConfig) -> bool:
    return c.finish_reason == "eos" or (c.finish_reason == "stop" and c.stop_string in cfg.end_markers)


def _rollouts(cands: list[_Cand], engine: Engine, cfg: SampleConfig, progress: Progress | None = None,
              share: float = 0.0) -> None:
    todo = []
    for c in cands:
        prompt = c.search.prompt_ids + c.search.beams[c.parent].ids + c.step.token_ids
        # Nothing to foresee after the end of the response, or with no room left in the context.
        if not _ends_response(c.step, cfg) and len(prompt) + 1 < engine.max_context:
            todo.append((c, prompt))
    if not todo:
        return
    params = SamplingParams(n=1, temperature=cfg.rollout_temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_rollout_tokens, stop=tuple(cfg.end_markers),
                            seeds=tuple(c.seed(cfg, "rollout") for c, _ in todo),
                            on_finished=_reporter(progress, share, len(todo)))
    outs = engine.generate([p for _, p in todo], params)
    for (c, _), [r] in zip(todo, outs):
        c.rollout = r


def _select(s: QuerySearch, cands: list[_Cand], engine: Engine, cfg: SampleConfig) -> int:
    """Score this step's candidates, record the step and move the query's beams forward."""
    tok = engine.tokenizer
    s_vals = [mean(c.step.logprobs) for c in cands]
    if cfg.score == "foresight":
        scores = [foresight_score(c.step.logprobs, c.rollout.logprobs if c.rollout else []) for c in cands]
    else:
        scores = s_vals
    adv = advantages(scores, [s.beams[c.parent].q for c in cands])
    rng = rng_for(cfg.seed, s.query.id, s.k, "beams")
    picked = choose_beams(scores, min(s.width, len(cands)), cfg.tau, cfg.selection, rng)
    ended = [_ends_response(c.step, cfg) for c in cands]
    step_tokens = sum(len(c.step.token_ids) for c in cands)
    rollout_tokens = sum(len(c.rollout.token_ids) for c in cands if c.rollout)
    s.steps.append({
        "k": s.k,
        "beams": [{"text": s.beam_text(b, tok), "Q": b.q} for b in s.beams],
        "candidates": [{
            "parent": c.parent,
            "step": c.step.text,
            "s": s_vals[i],
            "step_tokens": len(c.step.token_ids),
            "step_finish": c.step.finish_reason,
            "rollout": c.rollout.text if c.rollout else "",
            "rollout_tokens": len(c.rollout.token_ids) if c.rollout else 0,
            "rollout_finish": c.rollout.finish_reason if c.rollout else None,
            "f": scores[i] if cfg.score == "foresight" else None,
            "score": scores[i],
            "A": adv[i],
            "ended": ended[i],
            "beam": i in picked,
        } for i, c in enumerate(cands)],
        "selected": picked,
        "mean_A": mean(adv),
    })
    s.step_tokens += step_tokens
    s.rollout_tokens += rollout_tokens
    new_beams = []
    for i in picked:
        if ended[i]:
            s.width -= 1
        else:
            c = cands[i]
            new_beams.append(Beam(ids=s.beams[c.parent].ids + c.step.token_ids, q=scores[i]))
    s.beams = new_beams
    s.k += 1
    s.done = s.k > cfg.steps or not s.beams
    return step_tokens + rollout_tokens
