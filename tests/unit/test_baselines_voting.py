"""Label-free voting (genius.baselines.voting): extraction, normalisation, Jaccard clustering."""

from __future__ import annotations

import pytest

from genius.baselines.voting import (agree, answer_key, cluster, final_answer, final_sentence, jaccard, normalise_answer,
                                     tokens, vote, vote_counts)


@pytest.mark.parametrize("text, expected", [
    ("Add them. The answer is 3.5. Done.", "3.5"),          # a decimal point does not end the answer
    ("so \\boxed{\\frac{1}{2}} and the answer is 7", "\\frac{1}{2}"),  # a box wins over "answer is"
    ("Answer: Paris\nThanks", "Paris"),
    ("So the answer is Mia, who is the tallest.", "Mia"),   # a clause after a comma is not the answer
    ("The answer is 1,000 apples.", "1,000 apples"),        # a thousands comma is no clause break
    ("no stated answer here", None),
])
def test_final_answer(text: str, expected: str | None) -> None:
    assert final_answer(text) == expected


def test_final_sentence_skips_trailing_punctuation_only_pieces() -> None:
    assert final_sentence("First point. Second point!\n\n...") == "Second point!"
    assert final_sentence("  \n ") == ""


@pytest.mark.parametrize("raw, expected", [
    ("$1,000.0", "1000"),            # parsed as a number: canonical form
    ("\\frac{3}{6}", "0.5"),       # 3/6 = 1/2, a finite decimal
    ("\\text{Paris}.", "paris"),     # text: wrapper, braces, trailing period and case dropped
    ("2.0 Apples", "2 apples"),
])
def test_normalise_answer(raw: str, expected: str) -> None:
    assert normalise_answer(raw) == expected


def test_answer_key_prefers_the_stated_answer_over_the_final_sentence() -> None:
    assert answer_key("Work. The answer is 12.\nHope this helps.") == "12"
    assert answer_key("Cats sleep a lot. They are Lazy.") == "they are lazy"


def test_jaccard_by_hand() -> None:
    # {the, sky, is, blue} vs {the, sky, is, grey}: 3 shared of 5 distinct -> 0.6
    assert jaccard(tokens("the sky is blue"), tokens("the sky is grey")) == pytest.approx(0.6)
    assert jaccard(tokens("42"), tokens("43")) == 0.0
    assert jaccard(frozenset(), tokens("x")) == 0.0


def test_cluster_is_greedy_against_each_clusters_first_member() -> None:
    # a={the,sky,is,blue}; b={the,sky,is,grey}: J(a,b)=0.6 -> joins 0.
    # c={sky,grey}: J(c,a)=1/5=0.2, so it starts cluster 1 even though J(c,b)=2/4=0.5 (b is not a representative).
    # d="" has no tokens -> None. e={the,sky,is,blue} -> 0.
    keys = ["the sky is blue", "the sky is grey", "sky grey", "", "The sky is blue"]
    assert cluster(keys, threshold=0.5) == [0, 0, 1, None, 0]
    # At threshold 1.0 only identical token sets agree.
    assert cluster(keys, threshold=1.0) == [0, 1, 2, None, 0]


def test_vote_counts_ignore_responses_without_tokens() -> None:
    assert vote_counts([0, 0, 1, None, 0]) == {0: 3, 1: 1}


def test_vote_groups_equal_numbers_written_differently() -> None:
    texts = ["The answer is 1,000.", "\\boxed{1000}", "The answer is 999.", "Answer: 1000.0"]
    assert vote(texts, threshold=0.5) == [0, 0, 1, 0]


def test_sentences_with_different_numbers_disagree() -> None:
    # {so, wendy, has, 21, books, left} vs {therefore, wendy, has, 3, books, left}: Jaccard 4/8 = 0.5
    # reaches the threshold, but the numbers differ ({21} != {3}): two clusters.
    keys = ["so wendy has 21 books left", "therefore wendy has 3 books left", "thus wendy has 21 books left"]
    assert cluster(keys, threshold=0.5) == [0, 1, 0]
    assert agree(tokens("has 3 books"), tokens("has 3 books now"), 0.5)   # 3/4 shared, same numbers
