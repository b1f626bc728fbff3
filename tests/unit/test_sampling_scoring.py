"""The pure math of the search against values worked out by hand."""

from __future__ import annotations

import math
import random

import pytest

from genius.sampling.config import SampleConfig
from genius.sampling.scoring import (advantages, choose_beams, choose_pair, draw_distinct, foresight_score,
                                     quantiles, rng_for, softmax, top_indices)
from genius.errors import UserError


def test_foresight_score_is_the_rollout_mean_or_the_step_mean_without_rollout() -> None:
    """Rollout [-1, -2, -3] -> -2 (the step's [-9] is not part of f); no rollout -> step mean -4.5."""
    assert foresight_score([-9.0], [-1.0, -2.0, -3.0]) == -2.0
    assert foresight_score([-4.0, -5.0], []) == -4.5


def test_advantages_subtract_the_parent_value() -> None:
    """A = f - Q: [-1 - 0, -2 - (-0.5), 0.5 - (-0.5)] = [-1, -1.5, 1]."""
    assert advantages([-1.0, -2.0, 0.5], [0.0, -0.5, -0.5]) == [-1.0, -1.5, 1.0]


def test_softmax_with_temperature() -> None:
    """softmax([0, -0.1] / 0.1) = [1, e^-1] / (1 + e^-1) = [0.7311, 0.2689]; huge gaps do not overflow."""
    p = softmax([0.0, -0.1], 0.1)
    assert p == pytest.approx([1 / (1 + math.e ** -1), math.e ** -1 / (1 + math.e ** -1)])
    assert softmax([-1000.0, 0.0], 0.1) == pytest.approx([0.0, 1.0])
    assert softmax([], 0.1) == []


class FixedRandom(random.Random):
    """Returns the given numbers from random(), in order."""

    def __init__(self, values: list[float]) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def test_draw_distinct_renormalises_after_each_draw() -> None:
    """p = [0.5, 0.3, 0.2]. u = 0.6: 0.6 * 1.0 = 0.6 falls in [0.5, 0.8) -> index 1. Left [0, 2]
    with mass 0.7; u = 0.8: 0.56 falls in [0.5, 0.7) -> index 2."""
    assert draw_distinct([0.5, 0.3, 0.2], 2, FixedRandom([0.6, 0.8])) == [1, 2]
    assert draw_distinct([0.5, 0.3, 0.2], 5, FixedRandom([0.0, 0.0, 0.0])) == [0, 1, 2]


def test_draw_distinct_frequencies_follow_the_probabilities() -> None:
    """First draws from p = [0.7, 0.2, 0.1] over 20000 tries land within 0.02 of p."""
    rng = random.Random(1)
    counts = [0, 0, 0]
    for _ in range(20000):
        counts[draw_distinct([0.7, 0.2, 0.1], 1, rng)[0]] += 1
    assert [c / 20000 for c in counts] == pytest.approx([0.7, 0.2, 0.1], abs=0.02)


def test_choose_beams_greedy_and_sampled() -> None:
    """Greedy top 2 of [-1, -0.2, -3, -0.2] = [1, 3] (tie -> lower index first). Sampled with
    u = 0.99: softmax([-1, -0.2, -3, -0.2] / 0.1) ~ [0.0002, 0.5, 0, 0.5]; 0.99 lands in index 3's
    range [0.5002, 1), then index 1 holds all but 0.0003 of what is left -> [3, 1]."""
    scores = [-1.0, -0.2, -3.0, -0.2]
    assert choose_beams(scores, 2, 0.1, "greedy", random.Random(0)) == [1, 3]
    assert choose_beams(scores, 2, 0.1, "sample", FixedRandom([0.99, 0.5])) == [3, 1]
    assert top_indices(scores, 3) == [1, 3, 0]


def test_choose_pair_rules() -> None:
    """Scores [-1, -0.5, -2, -0.6]: chosen 1. Rest [0, 2, 3] with scores [-1, -2, -0.6].
    lowest -> 2. uniform with u = 0.5 -> rest[floor(1.5)] = rest[1] = 2. categorical:
    softmax([-1, -2, -0.6] / 0.1) = [e^-4, e^-14, 1] / Z ~ [0.018, 0.000001, 0.982], u = 0.5 -> 3;
    u = 0.01 -> 0. Excluding 3 (eligible False) leaves categorical over [0, 2] -> 0 almost surely."""
    s = [-1.0, -0.5, -2.0, -0.6]
    assert choose_pair(s, 0.1, "lowest", random.Random(0)) == (1, 2)
    assert choose_pair(s, 0.1, "uniform", FixedRandom([0.5])) == (1, 2)
    assert choose_pair(s, 0.1, "categorical", FixedRandom([0.5])) == (1, 3)
    assert choose_pair(s, 0.1, "categorical", FixedRandom([0.01])) == (1, 0)
    assert choose_pair(s, 0.1, "categorical", FixedRandom([0.5]), [True, True, True, False]) == (1, 0)
    assert choose_pair([-1.0], 0.1, "lowest", random.Random(0)) is None
    assert choose_pair([-1.0, -1.0], 0.1, "lowest", random.Random(0), [True, False]) is None


def test_rng_for_is_stable_and_separates_its_inputs() -> None:
    a = rng_for(0, "q1", 2, "beams").random()
    assert a == rng_for(0, "q1", 2, "beams").random()
    others = {rng_for(1, "q1", 2, "beams").random(), rng_for(0, "q2", 2, "beams").random(),
              rng_for(0, "q1", 3, "beams").random(), rng_for(0, "q1", 2, "negative").random()}
    assert a not in others and len(others) == 4


def test_quantiles_interpolate_linearly() -> None:
    """[1, 2, 3, 4, 5]: q50 = 3, q25 = 2, q10 at position 0.4 -> 1.4; None/nan are ignored."""
    q = quantiles([5.0, 1.0, 3.0, None, float("nan"), 2.0, 4.0])
    assert (q["q0"], q["q10"], q["q25"], q["q50"], q["q100"]) == (1.0, pytest.approx(1.4), 2.0, 3.0, 5.0)
    assert math.isnan(quantiles([])["q50"])


@pytest.mark.parametrize("settings, message", [
    ({"tau": 0.0}, "tau must be > 0"),
    ({"beams": 1, "candidates": 1}, "at least 2 candidates"),
    ({"beams": 0}, "beams must be >= 1"),
    ({"step_temperature": -1.0}, "step_temperature must be >= 0"),
    ({"delimiter": ""}, "delimiter must be a non-empty"),
    ({"batch_sequences": 4}, "batch_sequences (4) must hold"),
])
def test_invalid_settings_give_one_line(settings: dict, message: str) -> None:
    with pytest.raises(UserError) as e:
        SampleConfig(**settings).validate()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_negative_rule_auto_follows_selection() -> None:
    assert SampleConfig().negative_rule == "categorical"
    assert SampleConfig(selection="greedy").negative_rule == "lowest"
    assert SampleConfig(selection="greedy", negatives="uniform").negative_rule == "uniform"
