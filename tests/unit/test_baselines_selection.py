"""Each baseline's selection rule, a pure function, checked against hand-worked cases."""

from __future__ import annotations

import random

import pytest

from genius.baselines.coh import coh_pair
from genius.baselines.scpo import scpo_select
from genius.baselines.self_rewarding import best_worst, mean_score, parse_score
from genius.baselines.sft import sft_record
from genius.baselines.spin import spin_pair
from genius.baselines.star import majority_members, star_select
from genius.queries import Query

MSG = [{"role": "user", "content": "Q?"}]


# ----------------------------------------------------------------------------- SFT / SPIN
def test_sft_record_uses_the_corpus_response_and_skips_blank_ones() -> None:
    assert sft_record(Query("a", MSG, 0, "Because.")) == {"prompt": MSG, "response": "Because.", "weight": 1.0}
    assert sft_record(Query("b", MSG, 1, "  ")) is None
    assert sft_record(Query("c", MSG, 2, None)) is None


def test_spin_pair_chosen_is_corpus_rejected_is_own() -> None:
    assert spin_pair(MSG, "gold", "mine") == {"prompt": MSG, "chosen": "gold", "rejected": "mine"}
    assert spin_pair(MSG, "gold", " gold ") is None   # the model already says it: no preference
    assert spin_pair(MSG, "gold", "") is None


# ----------------------------------------------------------------------------- STaR
def test_majority_members_needs_a_unique_largest_cluster_of_min_votes() -> None:
    # votes: cluster 0 -> {0, 2, 3} (3 votes), cluster 1 -> {1} -> keep 0, 2, 3
    assert majority_members([0, 1, 0, 0], min_votes=2) == [0, 2, 3]
    assert majority_members([0, 1, 0, 1], min_votes=1) == []      # 2-2 tie: no majority
    assert majority_members([0, 1, 2, None], min_votes=2) == []   # largest has 1 < 2 votes
    assert majority_members([None, None], min_votes=1) == []


def test_star_select_keeps_each_distinct_agreeing_rationale_once() -> None:
    texts = ["x. The answer is 4.", "y. The answer is 5.", "x. The answer is 4.", "z. Answer: 4"]
    # clusters [0, 1, 0, 0]: majority = cluster 0 = {0, 2, 3}; text 2 duplicates text 0.
    assert star_select(texts, [0, 1, 0, 0], min_votes=2) == [0, 3]


# ----------------------------------------------------------------------------- CoH
def test_coh_pair_on_original_query_and_drops_empty_or_equal() -> None:
    p = "The reasoning steps are:\n\n"
    assert coh_pair(MSG, p + "good", p + "bad", p) == {"prompt": MSG, "chosen": p + "good", "rejected": p + "bad"}
    assert coh_pair(MSG, p + "good", p + "  ", p) is None   # nothing beyond the prefix
    assert coh_pair(MSG, p + "same", p + "same", p) is None


# ----------------------------------------------------------------------------- Self-Rewarding
@pytest.mark.parametrize("judgement, expected", [
    ("Relevant and complete. Score: 4", 4.0),
    ("Score: 2 ... on reflection, Score: 3", 3.0),   # the last one counts
    ("**Score:** 5", 5.0),
    ("Score: 7", None),                              # outside the 0-5 scale
    ("I like it.", None),
])
def test_parse_score(judgement: str, expected: float | None) -> None:
    assert parse_score(judgement) == expected


def test_mean_score_ignores_unparsable_judgements() -> None:
    # parsed 4 and 3 (the middle one has no score) -> (4 + 3) / 2 = 3.5
    assert mean_score(["Score: 4", "no idea", "Score: 3"]) == 3.5
    assert mean_score(["no", "idea"]) is None


def test_best_worst_by_hand() -> None:
    # scores 2.5, 4, None, 1, 4: best = first 4 (index 1), worst = 1 (index 3)
    assert best_worst([2.5, 4.0, None, 1.0, 4.0]) == (1, 3)
    assert best_worst([3.0, 3.0, None]) is None   # all scored candidates tie: dropped
    assert best_worst([3.0, None, None]) is None  # one scored candidate: nothing to compare


# ----------------------------------------------------------------------------- ScPO
def test_scpo_most_vs_least_voted_with_margin_weight() -> None:
    # k = 5, clusters [0, 0, 1, 0, 2]: votes {0: 3, 1: 1, 2: 1}; most = cluster 0 (3 votes),
    # least = clusters 1 and 2 (1 vote) -> weight = (3 - 1) / 5 = 0.4
    choice = scpo_select([0, 0, 1, 0, 2], min_votes=2, rng=random.Random(0))
    assert choice is not None
    assert choice.chosen in (0, 1, 3) and choice.rejected in (2, 4)
    assert (choice.votes_w, choice.votes_l) == (3, 1)
    assert choice.weight == pytest.approx(0.4)


def test_scpo_counts_silent_samples_in_k() -> None:
    # k = 4, one sample states nothing: votes {0: 2, 1: 1}; weight = (2 - 1) / 4 = 0.25
    choice = scpo_select([0, None, 0, 1], min_votes=2, rng=random.Random(0))
    assert choice is not None and (choice.chosen, choice.rejected) in {(0, 3), (2, 3)}
    assert choice.weight == pytest.approx(0.25)


@pytest.mark.parametrize("clusters, min_votes", [
    ([0, 0, 1, 1], 1),        # tie for the most votes: no consistent preference
    ([0, 0, 0, 0], 1),        # one answer only: margin 0
    ([0, 1, 2, 3], 1),        # all answers once: margin 0
    ([0, 0, 1, None], 3),     # the most-voted answer has 2 < 3 votes
    ([None, None], 1),        # nobody states an answer
])
def test_scpo_drops_queries_without_a_clear_margin(clusters: list, min_votes: int) -> None:
    assert scpo_select(clusters, min_votes=min_votes, rng=random.Random(0)) is None


def test_scpo_random_pick_follows_the_rng() -> None:
    picks = {scpo_select([0, 0, 0, 1, 2], 2, random.Random(seed)).chosen for seed in range(20)}
    assert picks == {0, 1, 2}   # every member of the winning cluster can be the chosen one
