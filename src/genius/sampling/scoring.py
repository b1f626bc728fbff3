"""Pure math of the search: scores, advantages, re-sampling probabilities, beam and pair choice.

No model, no I/O. Randomness comes in as a ``random.Random``; ``rng_for`` derives one from
(seed, query id, step, purpose) so that a query's draws do not depend on which other queries
shared its batches, nor on how often the process was restarted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from genius.engines.base import derive_seed


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; nan for an empty list (callers decide what an empty score means)."""
    return sum(values) / len(values) if values else math.nan


def foresight_score(step_logprobs: Sequence[float], rollout_logprobs: Sequence[float]) -> float:
    """f = mean token log-prob of the rollout (paper Eq. 1: the step's own tokens are not in it).

    A rollout of 0 tokens means the step itself ended the response (EOS or end marker): nothing is
    left to foresee, so the step's own mean log-prob stands in for f.
    """
    return mean(rollout_logprobs) if rollout_logprobs else mean(step_logprobs)


def advantages(scores: Sequence[float], parent_q: Sequence[float]) -> list[float]:
    """A_i = f_i - Q(parent of i) (paper Eq. 6); Q of the root is 0, of a beam its own f."""
    if len(scores) != len(parent_q):
        raise ValueError("one parent value per candidate expected")
    return [f - q for f, q in zip(scores, parent_q)]


def softmax(values: Sequence[float], tau: float) -> list[float]:
    """softmax(values / tau), shifted by the max so that tau = 0.1 cannot overflow."""
    if not values:
        return []
    top = max(values)
    e = [math.exp((v - top) / tau) for v in values]
    total = sum(e)
    return [x / total for x in e]


def rng_for(seed: int, query_id: str, step: int, purpose: str) -> random.Random:
    """A generator that depends only on its arguments (not on Python's per-process hash seed)."""
    return random.Random(derive_seed(seed, query_id, step, purpose))


def draw_distinct(probs: Sequence[float], m: int, rng: random.Random) -> list[int]:
    """Draw min(m, len(probs)) distinct indices: one categorical draw at a time, the drawn index
    removed and the rest renormalised (sampling without replacement, paper Eq. 4)."""
    left = list(range(len(probs)))
    weights = [float(p) for p in probs]
    chosen: list[int] = []
    while left and len(chosen) < m:
        total = sum(weights[i] for i in left)
        if total <= 0:  # every remaining weight underflowed: fall back to uniform over the rest
            pick = left[int(rng.random() * len(left))]
        else:
            u = rng.random() * total
            pick = left[-1]
            acc = 0.0
            for i in left:
                acc += weights[i]
                if u < acc:
                    pick = i
                    break
        chosen.append(pick)
        left.remove(pick)
    return chosen


def top_indices(values: Sequence[float], m: int) -> list[int]:
    """Indices of the m largest values, largest first; ties go to the lower index."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))[:m]


def choose_beams(scores: Sequence[float], m: int, tau: float, selection: str, rng: random.Random) -> list[int]:
    """Which candidates become the next beams: m distinct draws from softmax(scores / tau)
    ("sample") or the m highest scores ("greedy")."""
    if selection == "greedy":
        return top_indices(scores, m)
    if selection == "sample":
        return draw_distinct(softmax(scores, tau), m, rng)
    raise ValueError(f"unknown selection {selection!r}")


def choose_pair(scores: Sequence[float], tau: float, rule: str, rng: random.Random,
                eligible: Sequence[bool] | None = None) -> tuple[int, int] | None:
    """(chosen, rejected) indices among one step's candidates, or None with fewer than two.

    chosen = highest score (lowest index on ties). rejected, among the other candidates marked
    eligible (e.g. not an exact copy of the chosen response): "categorical" draws from
    softmax(scores / tau) renormalised over them (paper Eq. 5), "uniform" draws uniformly
    (reference code), "lowest" takes the lowest score (paper Table 3, w/o sampling).
    """
    if len(scores) < 2:
        return None
    w = top_indices(scores, 1)[0]
    rest = [i for i in range(len(scores)) if i != w and (eligible is None or eligible[i])]
    if not rest:
        return None
    if rule == "lowest":
        low = min(scores[i] for i in rest)
        return w, next(i for i in rest if scores[i] == low)
    if rule == "uniform":
        return w, rest[int(rng.random() * len(rest))]
    if rule == "categorical":
        probs = softmax([scores[i] for i in rest], tau)
        return w, rest[draw_distinct(probs, 1, rng)[0]]
    raise ValueError(f"unknown negative rule {rule!r}")


def quantiles(values: Sequence[float], qs: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)) -> dict[str, float]:
    """Linear-interpolated quantiles (numpy's default rule) of the finite values, keyed "q50"..."""
    xs = sorted(v for v in values if v is not None and math.isfinite(v))
    out: dict[str, float] = {}
    for q in qs:
        key = f"q{round(q * 100)}"
        if not xs:
            out[key] = math.nan
            continue
        pos = q * (len(xs) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(xs) - 1)
        out[key] = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
    return out
