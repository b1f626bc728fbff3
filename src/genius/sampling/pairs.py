"""Foresight trees -> preference pairs (METHOD.md section 3). Pure given the config's seed.

At every step of a tree the chosen response is the candidate with the highest score and the
rejected one is drawn from the remaining candidates by ``cfg.negative_rule``. A response is the
whole trajectory T_i = beam prefix + step + rollout (the assistant prefix included), and both
responses share the query's messages as prompt. A candidate whose response is an exact copy of the
chosen one is never the rejected one (the pair would teach nothing); a step with no other
candidate gives no pair.

Each side carries how its response finished (``chosen_finish``/``rejected_finish``: eos, stop,
or length when a token budget or the context cut it); with ``unfinished: drop`` (the default) a
pair with a cut side is left out, and ``unfinished_pairs`` counts what was left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from genius.sampling.config import SampleConfig
from genius.sampling.scoring import choose_pair, rng_for


def candidate_response(step: dict, cand: dict) -> str:
    """T_i: the assistant response of a candidate, from its beam's text, its step and its rollout."""
    return step["beams"][cand["parent"]]["text"] + cand["step"] + cand["rollout"]


def response_finish(cand: dict) -> str:
    """How the whole response of a candidate ended: its step's end when the step ended the
    response, else its rollout's; "length" when it was cut (or had no room for a rollout)."""
    if cand["ended"]:
        return cand["step_finish"]
    return cand.get("rollout_finish") or "length"


def pairs_for_tree(tree: dict, cfg: SampleConfig) -> list[dict]:
    """At most one pair per step of one query's tree (those the ``unfinished`` rule keeps)."""
    return [p for p in all_pairs(tree, cfg) if cfg.unfinished == "keep" or _finished(p)]


def unfinished_pairs(tree: dict, cfg: SampleConfig) -> int:
    """Pairs of the tree with a cut side (left out under ``unfinished: drop``)."""
    return sum(not _finished(p) for p in all_pairs(tree, cfg))


def _finished(pair: dict) -> bool:
    return pair["chosen_finish"] != "length" and pair["rejected_finish"] != "length"


def all_pairs(tree: dict, cfg: SampleConfig) -> list[dict]:
    """At most one pair per step, cut responses included."""
    out = []
    for step in tree["steps"]:
        cands = step["candidates"]
        scores = [c["score"] for c in cands]
        responses = [candidate_response(step, c) for c in cands]
        best = max(range(len(cands)), key=lambda i: (scores[i], -i)) if cands else 0
        eligible = [r != responses[best] for r in responses]
        rng = rng_for(cfg.seed, tree["query_id"], step["k"], "negative")
        pick = choose_pair(scores, cfg.tau, cfg.negative_rule, rng, eligible)
        if pick is None:
            continue
        w, l = pick
        out.append({
            "query_id": tree["query_id"],
            "step": step["k"],
            "prompt": tree["messages"],
            "chosen": responses[w],
            "rejected": responses[l],
            "A_w": cands[w]["A"],
            "A_l": cands[l]["A"],
            "step_mean_advantage": step["mean_A"],
            "f_w": scores[w],
            "f_l": scores[l],
            "chosen_finish": response_finish(cands[w]),
            "rejected_finish": response_finish(cands[l]),
            "method": "genius",
        })
    return out


def build_pairs(trees: Iterable[dict], cfg: SampleConfig) -> list[dict]:
    """Pairs of every tree, in tree order."""
    return [p for tree in trees for p in pairs_for_tree(tree, cfg)]
