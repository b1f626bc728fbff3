"""Label-free answer voting for STaR and ScPO: extract, normalise, cluster, count.

Without gold labels the only signal is agreement between the model's own samples. Each
response is reduced to an *answer key*:

1. the final answer, when the response states one: the content of the last brace-balanced
   ``\\boxed{...}``, else the text after the last "answer is" / "Answer:" up to the end of
   that line, sentence or clause (the formats the evaluation asks for; the boxed and "answer is"
   finders are genius.evaluation.extract's);
2. otherwise (open-ended instructions such as Alpaca's) the response's final sentence.

Keys are normalised (numbers in canonical form through genius.evaluation.extract, so
``1,000.0`` and ``1000`` agree; other text lower case without LaTeX wrappers and ``$``)
and split into word/number tokens. Two keys *agree* when they hold the same numbers and the
Jaccard similarity of their token sets, |A & B| / |A | B|, is at least a threshold (default
0.5): "Wendy has 21 books left" and "Wendy has 3 books left" share most words but disagree.
Clustering is greedy in sample order: a key joins the first cluster whose first member
(its representative) it agrees with, else it starts a new cluster. For short exact answers
("42" vs "43": Jaccard 0) this is exact-match voting; for sentences it merges paraphrases
that share most of their words. Empty keys (nothing to vote on) never join a cluster.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from genius.evaluation.extract import after_answer_is, format_number, last_boxed, parse_number

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_TOKEN = re.compile(r"[a-z0-9]+(?:[./][0-9]+)*")  # "3.5" and "1/2" are one token each
_LATEX_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|displaystyle)\s*")


def final_answer(text: str) -> str | None:
    """The stated final answer (boxed, else after the last "answer is"), or None."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    rest = after_answer_is(text)
    if rest is None:
        return None
    # The answer ends at the line, a sentence end or a clause break: "Mia, who is the tallest."
    # is "Mia". A period or comma counts only before a space, so "3.5" and "1,000" stay whole.
    answer = re.split(r"\n|\.(?=\s|$)|[,;](?=\s)", rest, maxsplit=1)[0]
    return answer.strip() or None


def final_sentence(text: str) -> str:
    """The last sentence/line that holds a letter or digit ("" when there is none)."""
    for piece in reversed(_SENTENCE_END.split(text.strip())):
        if any(ch.isalnum() for ch in piece):
            return piece.strip()
    return ""


def normalise_answer(answer: str) -> str:
    """A number in canonical form (``"$1,000.0"`` -> ``1000``, ``"3/6"`` -> ``0.5``); other text
    lower case without LaTeX wrappers, braces and ``$``, thousands separators removed."""
    number = parse_number(answer)
    if number is not None:
        return format_number(number)
    s = _LATEX_WRAPPERS.sub("", answer.lower())
    s = s.replace("$", "").replace("{", "").replace("}", "")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"\b(\d+)\.0+\b", r"\1", s)
    s = s.strip().rstrip(".").strip()
    return re.sub(r"\s+", " ", s)


def answer_key(text: str) -> str:
    """The normalised thing a response votes for: its final answer, else its final sentence."""
    answer = final_answer(text)
    return normalise_answer(answer if answer is not None else final_sentence(text))


def tokens(key: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(key.lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|; 0 when either set is empty (an empty answer agrees with nothing)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def agree(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    """Same numbers, and Jaccard similarity at least ``threshold``."""
    numbers = {t for t in a if t[0].isdigit()}, {t for t in b if t[0].isdigit()}
    return numbers[0] == numbers[1] and jaccard(a, b) >= threshold


def cluster(keys: Sequence[str], threshold: float = 0.5) -> list[int | None]:
    """Greedy clustering in order: cluster id per key (None for a key without tokens)."""
    reps: list[frozenset[str]] = []
    ids: list[int | None] = []
    for key in keys:
        toks = tokens(key)
        if not toks:
            ids.append(None)
            continue
        for cid, rep in enumerate(reps):
            if agree(toks, rep, threshold):
                ids.append(cid)
                break
        else:
            reps.append(toks)
            ids.append(len(reps) - 1)
    return ids


def vote_counts(cluster_ids: Sequence[int | None]) -> Counter[int]:
    """Votes per cluster id (keys without tokens cast no vote)."""
    return Counter(c for c in cluster_ids if c is not None)


def vote(texts: Sequence[str], threshold: float = 0.5) -> list[int | None]:
    """Cluster id of every response's answer key."""
    return cluster([answer_key(t) for t in texts], threshold)
