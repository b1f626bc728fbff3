"""Statistics for evaluation results: pure functions on counts and lists, randomness passed in.

- ``wilson_interval``: 95% interval of a proportion (well behaved at 0/n and n/n, unlike the
  normal approximation);
- ``mean_interval``: normal 95% interval of a mean of per-item scores (sampled accuracy);
- ``pass_at_k``: the unbiased estimator of Chen et al. (2021);
- ``majority_vote``: the answer most samples agree on (maj@n), with a caller-given equality;
- ``bootstrap_interval``: percentile bootstrap interval of a mean of per-item scores (win rate);
- ``paired_bootstrap``: interval of the difference of two paired accuracies (or scores);
- ``mcnemar_exact``: exact two-sided McNemar test on the discordant pairs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials; (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 or k = n the bound is exactly 0 or 1; floating point leaves crumbs like 1e-17.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """mean +- z * sd / sqrt(n) (sample sd, n - 1); the mean itself for n = 1; (0, 1) for n = 0."""
    n = len(values)
    if n == 0:
        return 0.0, 1.0
    mean = sum(values) / n
    if n == 1:
        return mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean - z * sd / math.sqrt(n), mean + z * sd / math.sqrt(n)


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn from n, c of them correct, is correct) = 1 - C(n-c,k)/C(n,k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_vote(answers: Sequence[T | None], same: Callable[[T, T], bool]) -> int | None:
    """Index of a representative of the largest group of equal answers (None answers do not vote).

    Ties go to the group whose first member comes first. Returns None when nobody answered.
    """
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if same(answers[g[0]], a):  # type: ignore[arg-type]
                g.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return None
    best = max(groups, key=lambda g: (len(g), -g[0]))
    return best[0]


def _percentiles(means: list[float], resamples: int, level: float) -> tuple[float, float]:
    means.sort()
    tail = (1 - level) / 2
    return means[int(math.floor(tail * (resamples - 1)))], means[int(math.ceil((1 - tail) * (resamples - 1)))]


def bootstrap_interval(values: Sequence[float], *, rng: random.Random, resamples: int = 10000,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(values) (items resampled with replacement); (0, 1)
    for no values, as ``wilson_interval`` gives for n = 0."""
    n = len(values)
    if n == 0:
        return 0.0, 1.0
    return _percentiles([sum(rng.choices(values, k=n)) / n for _ in range(resamples)], resamples, level)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, rng: random.Random,
                     resamples: int = 10000, z_level: float = 0.95) -> tuple[float, float, float]:
    """mean(b) - mean(a) over paired items, and its percentile bootstrap interval (items resampled
    with replacement, the pairing kept)."""
    if len(a) != len(b):
        raise ValueError("paired_bootstrap needs two lists of equal length")
    n = len(a)
    if n == 0:
        return 0.0, 0.0, 0.0
    d = [y - x for x, y in zip(a, b)]
    diff = sum(d) / n
    lo, hi = _percentiles([sum(rng.choices(d, k=n)) / n for _ in range(resamples)], resamples, z_level)
    return diff, lo, hi


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b = pairs only A got right, c = pairs only B got right.

    Under H0 the b + c discordant pairs split Binomial(b + c, 1/2); p = min(1, 2 * P(X <= min(b, c))).
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)
