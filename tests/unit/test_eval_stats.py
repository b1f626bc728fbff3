"""Evaluation statistics against values worked out by hand."""

from __future__ import annotations

import random

import pytest

from genius.evaluation.extract import numbers_equal
from genius.evaluation.stats import (
    majority_vote,
    mcnemar_exact,
    mean_interval,
    paired_bootstrap,
    pass_at_k,
    wilson_interval,
)


def test_wilson_8_of_10() -> None:
    # p = 0.8, z^2 = 3.8415, denom = 1 + z^2/n = 1.38415
    # centre = (0.8 + 3.8415/20) / 1.38415 = 0.716739
    # half = 1.96 * sqrt(0.8*0.2/10 + 3.8415/400) / 1.38415 = 1.96 * 0.160012 / 1.38415 = 0.226582
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490157, abs=1e-5)
    assert hi == pytest.approx(0.943321, abs=1e-5)


def test_wilson_edges_are_exact() -> None:
    # 0/20: the lower bound is exactly 0 and the upper bound z^2/(n+z^2) = 3.8415/23.8415 = 0.16113.
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.16113, abs=1e-4)
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.16113, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mean_interval() -> None:
    # mean 0.75, sample sd = sqrt((3 * 0.25^2 + 0.75^2) / 3) = 0.5, half = 1.96 * 0.5 / 2 = 0.49
    lo, hi = mean_interval([1.0, 0.0, 1.0, 1.0])
    assert lo == pytest.approx(0.26, abs=1e-3) and hi == pytest.approx(1.24, abs=1e-3)
    assert mean_interval([0.5]) == (0.5, 0.5)


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 2, 2, 0.7),   # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (5, 1, 1, 0.2),   # 1 - C(4,1)/C(5,1) = 1 - 4/5
    (4, 0, 4, 0.0),   # nothing correct
    (4, 1, 4, 1.0),   # all drawn: the correct one is among them
    (10, 3, 5, 1 - 21 / 252),  # C(7,5) = 21, C(10,5) = 252
])
def test_pass_at_k(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_rejects_bad_counts() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_majority_vote_groups_equal_answers_and_breaks_ties_by_first() -> None:
    eq = lambda a, b: a == b  # noqa: E731
    # "1" at 0 and 4, "2" at 1 and 2: a tie, the group seen first wins.
    assert majority_vote(["1", "2", "2", None, "1"], eq) == 0
    assert majority_vote(["1", "2", "2"], eq) == 1
    assert majority_vote([None, None], eq) is None
    # With numeric equality "5.0" and "5" are one group of 2 against "6".
    assert majority_vote(["6", "5.0", "5"], numbers_equal) == 1


def test_paired_bootstrap() -> None:
    # B right everywhere A is wrong: every resample has difference 1.
    assert paired_bootstrap([0.0] * 10, [1.0] * 10, rng=random.Random(0), resamples=200) == (1.0, 1.0, 1.0)
    a = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    b = [1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    diff, lo, hi = paired_bootstrap(a, b, rng=random.Random(3), resamples=2000)
    # diff = (0 + 1 + 0 + 0 - 1 + 0 + 1 + 1) / 8 = 0.25
    assert diff == pytest.approx(0.25)
    assert -1.0 <= lo < 0.25 < hi <= 1.0
    assert paired_bootstrap(a, b, rng=random.Random(3), resamples=2000) == (diff, lo, hi)


@pytest.mark.parametrize("b,c,expected", [
    (1, 6, 0.125),   # n = 7: P(X <= 1) = (1 + 7) / 128 = 0.0625, doubled
    (0, 5, 0.0625),  # 2 * (1/32)
    (3, 3, 1.0),     # P(X <= 3 | n = 6) = 42/64 > 1/2: capped at 1
    (0, 0, 1.0),     # no discordant pairs: no evidence
    (2, 10, 2 * (1 + 12 + 66) / 4096),  # n = 12, P(X <= 2) = (C(12,0) + C(12,1) + C(12,2)) / 2^12
])
def test_mcnemar_exact(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(expected)
    assert mcnemar_exact(c, b) == pytest.approx(expected)  # symmetric


def test_bootstrap_interval_of_a_mean() -> None:
    """Constant scores: every resample has the same mean; none: the (0, 1) of no information;
    two items 0 and 1: a resample's mean is 0, 0.5 or 1 (P = 1/4, 1/2, 1/4), so the 2.5% and
    97.5% percentiles of 10,000 resamples are 0 and 1."""
    from genius.evaluation.stats import bootstrap_interval

    assert bootstrap_interval([0.5] * 7, rng=random.Random(0)) == (0.5, 0.5)
    assert bootstrap_interval([], rng=random.Random(0)) == (0.0, 1.0)
    assert bootstrap_interval([0.0, 1.0], rng=random.Random(0)) == (0.0, 1.0)
    lo, hi = bootstrap_interval([1.0, 0.5, 0.0, 1.0] * 10, rng=random.Random(0))
    assert 0.45 < lo < 0.625 < hi < 0.8
    assert bootstrap_interval([1.0, 0.0] * 5, rng=random.Random(3)) == bootstrap_interval([1.0, 0.0] * 5,
                                                                                          rng=random.Random(3))
