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

``check_tree`` tells a tree record that lacks a field these functions read (a hand-made or
damaged trees file) in one line naming the file, line and field, before any of them runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from genius.errors import UserError
from genius.sampling.config import SampleConfig
from genius.sampling.scoring import choose_pair, rng_for

_NUMBER = (int, float)
_NUMBER_OR_NULL = (int, float, type(None))  # a NaN advantage is written as null
# What the readers of a tree (pairs, summaries, merge) take from it, and the JSON type of each.
TREE_FIELDS: dict[str, Any] = {"query_id": str, "index": int, "messages": list, "steps": list, "ended": bool,
                               "generated_tokens": dict}
TOKEN_FIELDS: dict[str, Any] = {"step": int, "rollout": int}
STEP_FIELDS: dict[str, Any] = {"k": int, "beams": list, "candidates": list, "mean_A": _NUMBER_OR_NULL}
BEAM_FIELDS: dict[str, Any] = {"text": str}
CANDIDATE_FIELDS: dict[str, Any] = {"parent": int, "step": str, "rollout": str, "score": _NUMBER,
                                    "A": _NUMBER_OR_NULL, "ended": bool, "step_finish": str}


def check_tree(tree: dict, loc: str) -> dict:
    """``tree`` when it holds every field the readers take (a tree record of genius sample), else
    a UserError naming ``loc`` (``file:line:``) and the first field missing or of the wrong type."""
    _check_fields(tree, TREE_FIELDS, loc, "")
    _check_fields(tree["generated_tokens"], TOKEN_FIELDS, loc, "generated_tokens.")
    for i, step in enumerate(tree["steps"]):
        _check_fields(step, STEP_FIELDS, loc, f"steps[{i}].")
        for j, beam in enumerate(step["beams"]):
            _check_fields(beam, BEAM_FIELDS, loc, f"steps[{i}].beams[{j}].")
        for j, cand in enumerate(step["candidates"]):
            name = f"steps[{i}].candidates[{j}]."
            _check_fields(cand, CANDIDATE_FIELDS, loc, name)
            if not 0 <= cand["parent"] < len(step["beams"]):
                raise UserError(f"{loc} field '{name}parent': {cand['parent']} names no beam of the step "
                                f"(it has {len(step['beams'])}); expected a tree record written by genius sample")
    return tree


def _check_fields(record: Any, fields: dict[str, Any], loc: str, prefix: str) -> None:
    if not isinstance(record, dict):
        raise UserError(f"{loc} field '{prefix.rstrip('.')}': expected an object, got {type(record).__name__}")
    for name, kind in fields.items():
        if name not in record:
            raise UserError(f"{loc} field '{prefix}{name}' missing: expected a tree record written by genius sample")
        value = record[name]
        # JSON true/false are ints to Python: a bool passes only where a bool is expected.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise UserError(f"{loc} field '{prefix}{name}': expected {_kind_name(kind)}, "
                            f"got {type(value).__name__}")


def _kind_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "true or false"}
    if kind is _NUMBER:
        return "a number"
    if kind is _NUMBER_OR_NULL:
        return "a number or null"
    return names[kind]


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
