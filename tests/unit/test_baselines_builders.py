"""Builders end to end over a scripted engine (no model): wiring, files, resume, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from genius.baselines import BaselineConfig, as_queries, build
from genius.baselines.common import load_baseline_queries
from genius.engines.base import Completion, SamplingParams
from genius.errors import UserError
from genius.io import read_jsonl
from genius.queries import Query
from genius.schema import check_pair, check_sft

PREFIX = BaselineConfig().assistant_prefix


class ScriptedEngine:
    """An Engine whose replies are a function of the decoded prompt; records every call."""

    def __init__(self, reply: Callable[[str, int], list[str]]):
        from genius.tiny import byte_tokenizer

        self.tokenizer = byte_tokenizer()
        self.reply = reply
        self.calls: list[SamplingParams] = []

    @property
    def max_context(self) -> int:
        return 1 << 20

    def generate(self, prompts, params: SamplingParams) -> list[list[Completion]]:
        self.calls.append(params)
        outs = []
        for p in prompts:
            texts = self.reply(self.tokenizer.decode(p), params.n)
            assert len(texts) == params.n
            outs.append([Completion(t, [], [], "eos") for t in texts])
        return outs

    def logprobs(self, prompts, completions):
        raise AssertionError("builders never need teacher-forced log-probs")


def queries(n: int = 2, response: str | None = None) -> list[Query]:
    return [Query(f"q{i}", [{"role": "user", "content": f"question {i}"}], i, response) for i in range(n)]


def test_scpo_writes_a_weighted_pair_of_most_and_least_voted(tmp_path: Path) -> None:
    # k = 4 answers 4, 4, 5 and one without any token: votes {4: 2, 5: 1}, weight (2 - 1) / 4 = 0.25
    engine = ScriptedEngine(lambda prompt, n: ["The answer is 4.", "So the answer is 4.", "The answer is 5.", "..."])
    path = build("scpo", BaselineConfig(k=4), queries(1), engine, tmp_path)
    [pair] = read_jsonl(path)
    check_pair(pair)
    assert pair["chosen"] in (PREFIX + "The answer is 4.", PREFIX + "So the answer is 4.")
    assert pair["rejected"] == PREFIX + "The answer is 5."
    assert (pair["weight"], pair["votes_w"], pair["votes_l"], pair["method"]) == (0.25, 2, 1, "scpo")


def test_self_rewarding_pairs_the_best_and_worst_judged_candidates(tmp_path: Path) -> None:
    scores = {"alpha": ["Score: 2", "Score: 3"], "beta": ["Score: 5", "Score: 4"], "gamma": ["Score: 1", "bad"]}

    def reply(prompt: str, n: int) -> list[str]:
        judged = re.search(r"<response>.*?(alpha|beta|gamma)</response>", prompt, re.S)
        if judged:  # a judge prompt: the additive 5-point text wraps the candidate
            assert "additive 5-point scoring system" in prompt
            return scores[judged.group(1)][:n]
        return ["alpha", "beta", "gamma"]

    engine = ScriptedEngine(reply)
    cfg = BaselineConfig(k=3, judge_samples=2)
    [pair] = read_jsonl(build("self_rewarding", cfg, queries(1), engine, tmp_path))
    # means: alpha 2.5, beta 4.5, gamma 1 (the unparsable judgement is ignored)
    assert (pair["chosen"], pair["rejected"]) == (PREFIX + "beta", PREFIX + "gamma")
    assert (pair["score_w"], pair["score_l"]) == (4.5, 1.0)
    assert engine.calls[1].n == 2 and engine.calls[1].temperature == cfg.judge_temperature


def test_coh_trains_the_self_prompted_pair_on_the_original_query(tmp_path: Path) -> None:
    engine = ScriptedEngine(lambda prompt, n: ["fine answer" if "good response" in prompt else "poor answer"])
    [pair] = read_jsonl(build("coh", BaselineConfig(), queries(1), engine, tmp_path))
    assert pair["prompt"] == [{"role": "user", "content": "question 0"}]
    assert (pair["chosen"], pair["rejected"]) == (PREFIX + "fine answer", PREFIX + "poor answer")


def test_star_keeps_majority_rationales_as_sft_examples(tmp_path: Path) -> None:
    engine = ScriptedEngine(lambda prompt, n: ["a. The answer is 7.", "b. The answer is 7.", "c. The answer is 8."])
    records = read_jsonl(build("star", BaselineConfig(k=3), queries(1), engine, tmp_path))
    for r in records:
        check_sft(r)
    assert [r["response"] for r in records] == [PREFIX + "a. The answer is 7.", PREFIX + "b. The answer is 7."]


def test_spin_rejects_the_greedy_own_response_without_prefix(tmp_path: Path) -> None:
    engine = ScriptedEngine(lambda prompt, n: ["my own words"])
    [pair] = read_jsonl(build("spin", BaselineConfig(), queries(1, response="corpus words"), engine, tmp_path))
    assert (pair["chosen"], pair["rejected"]) == ("corpus words", "my own words")
    assert engine.calls[0].temperature == 0.0


def test_supervised_baselines_need_corpus_responses(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="query 'q0' has no corpus response"):
        build("sft", BaselineConfig(), queries(1), None, tmp_path)
    with pytest.raises(UserError, match="unknown baseline 'dpo'"):
        build("dpo", BaselineConfig(), queries(1), None, tmp_path)


def test_a_killed_build_resumes_without_duplicates(tmp_path: Path) -> None:
    qs = queries(3, response="resp")
    cfg = BaselineConfig(batch_size=1)
    path = build("sft", cfg, qs, None, tmp_path)
    # Simulate a kill after q2's record was written but before its candidates line, plus a torn line.
    cand = tmp_path / "candidates.jsonl"
    cand.write_text("".join(cand.read_text().splitlines(keepends=True)[:2]))
    with path.open("a") as f:
        f.write('{"query_id": "q2", "prom')
    build("sft", cfg, qs, None, tmp_path)
    assert [r["query_id"] for r in read_jsonl(path)] == ["q0", "q1", "q2"]


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    build("sft", BaselineConfig(), queries(1, response="r"), None, tmp_path)
    with pytest.raises(UserError, match=r"other settings \(k: 4 -> 5\)"):
        build("sft", BaselineConfig(k=5), queries(1, response="r"), None, tmp_path)


def test_as_queries_accepts_records_and_query_objects() -> None:
    [a, b] = as_queries([{"instruction": "Do X", "input": "data", "output": "done"},
                         Query(id="z", messages=[{"role": "user", "content": "Y?"}], index=0)], system_prompt="Be brief.")
    assert a == Query("q0", [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Do X\n\ndata"}], 0, "done")
    assert b.id == "z" and b.messages[-1]["content"] == "Y?" and b.response is None
    with pytest.raises(UserError, match="'a' appears twice"):
        as_queries([{"id": "a", "prompt": "p"}, {"id": "a", "prompt": "q"}])


def test_corpus_responses_join_queries_by_their_ids(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"instruction": "A?", "output": "a"}) + "\n\n"
                      + json.dumps({"instruction": "B?", "input": "", "output": "b"}) + "\n")
    qs = load_baseline_queries(corpus, supervised=True)
    assert [(q.id, q.messages[-1]["content"], q.response) for q in qs] == [("corpus-1", "A?", "a"),
                                                                           ("corpus-3", "B?", "b")]


# ------------------------------------------------------------------------------------ rounds
@pytest.mark.parametrize("method, rule, expected", [
    ("star", "method", ("base", None)),        # restarts from the base; SFT has no reference
    ("spin", "method", ("m1", None)),          # the previous round's model is start and reference
    ("scpo", "method", ("m1", None)),
    ("genius", "method", ("m1", "base")),      # Genius: the starting model is the reference
    ("spin", "initial", ("m1", "base")),       # a run config's rule beats the method's
    ("genius", "previous", ("m1", None)),
])
def test_round_models_is_the_one_rule_of_start_and_reference(method: str, rule: str, expected: tuple) -> None:
    from genius.run_config import PipelineConfig, round_models

    cfg = PipelineConfig(model="base", method=method, reference=rule, rounds=2)
    assert round_models(cfg, 2, previous="m1") == expected
    assert round_models(cfg, 1, previous="base")[1] is None  # round 1: the reference is the model itself


def test_a_fixed_corpus_method_refuses_a_second_round() -> None:
    from genius.config import from_dict
    from genius.run_config import PipelineConfig

    with pytest.raises(UserError, match="fixed corpus data"):
        from_dict(PipelineConfig, {"method": "sft", "rounds": 2})


def test_pipeline_method_builds_one_round_from_the_run_config(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from genius.baselines import pipeline_method

    qfile = tmp_path / "queries.jsonl"
    qfile.write_text(json.dumps({"id": "a", "instruction": "Q?", "output": "gold"}) + "\n")
    engine = ScriptedEngine(lambda prompt, n: ["mine"])
    run_cfg = SimpleNamespace(seed=3, baseline={"spin_greedy": False, "temperature": 0.5},
                              queries=SimpleNamespace(source="unused: the query file has the outputs"))
    from genius.methods import MethodContext

    path = pipeline_method("spin")(MethodContext(cfg=run_cfg, round=2, out_dir=tmp_path / "r2", queries=qfile,
                                                 engine=engine))
    assert path == tmp_path / "r2" / "pairs.jsonl"
    [pair] = read_jsonl(path)
    assert (pair["query_id"], pair["chosen"], pair["rejected"]) == ("a", "gold", "mine")
    assert engine.calls[0].temperature == 0.5
    # round 2 of a run with seed 3 samples with seed 5 (Genius: seed + round); query 0 starts the batch
    assert engine.calls[0].seed == 5 * 1_000_003


def test_ballots_drop_the_prefix_and_silence_cut_off_responses() -> None:
    from genius.baselines.common import Response, ballots

    rs = [Response("P: The answer is 3.", True), Response("P: The answer is 4", False)]
    assert ballots(rs, "P: ") == ["The answer is 3.", ""]


def test_scpo_cut_off_samples_cast_no_vote(tmp_path: Path) -> None:
    class CutOff(ScriptedEngine):
        def generate(self, prompts, params):
            outs = super().generate(prompts, params)
            for o in outs:  # the two "5" samples hit the token budget
                o[2].finish_reason = o[3].finish_reason = "length"
            return outs

    engine = CutOff(lambda prompt, n: ["The answer is 4.", "Answer: 4", "The answer is 5.", "The answer is 5."])
    # Only 4, 4 vote: a single answer, margin 0 -> no pair although "5" has as many samples.
    assert read_jsonl(build("scpo", BaselineConfig(k=4), queries(1), engine, tmp_path)) == []
    [detail] = read_jsonl(tmp_path / "candidates.jsonl")
    assert detail["clusters"] == [0, 0, None, None]


def test_judge_prefix_starts_every_judgement(tmp_path: Path) -> None:
    def reply(prompt: str, n: int) -> list[str]:
        if "<response>" in prompt:
            assert prompt.endswith("Score: ")          # the judgement continues the prefix
            return ["5" if "long answer" in prompt else "2"] * n
        return ["long answer", "short"]

    cfg = BaselineConfig(k=2, judge_samples=1, judge_prefix="Score: ", judge_max_new_tokens=4)
    [pair] = read_jsonl(build("self_rewarding", cfg, queries(1), ScriptedEngine(reply), tmp_path))
    assert (pair["chosen"], pair["rejected"], pair["score_w"], pair["score_l"]) == (
        PREFIX + "long answer", PREFIX + "short", 5.0, 2.0)
    [detail] = read_jsonl(tmp_path / "candidates.jsonl")
    assert detail["judgements"] == [["Score: 5"], ["Score: 2"]]


def test_pipeline_method_finds_corpus_responses_in_the_query_source(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from genius.baselines import pipeline_method

    source = tmp_path / "alpaca.sft.jsonl"
    source.write_text(json.dumps({"instruction": "Q?", "output": "gold"}) + "\n")
    run_queries = tmp_path / "queries.jsonl"   # what the pipeline writes: ids and instructions only
    run_queries.write_text(json.dumps({"id": "alpaca.sft-1", "instruction": "Q?"}) + "\n")
    run_cfg = SimpleNamespace(seed=0, baseline={}, queries=SimpleNamespace(source=str(source)))
    from genius.methods import MethodContext

    path = pipeline_method("sft")(MethodContext(cfg=run_cfg, round=1, out_dir=tmp_path / "r1", queries=run_queries,
                                                engine=None))
    assert [(r["query_id"], r["response"]) for r in read_jsonl(path)] == [("alpaca.sft-1", "gold")]


def test_as_query_reads_the_query_text_as_genius_queries_does() -> None:
    [q] = as_queries([{"id": 7, "question": "Why?", "response": "Because."}])
    assert (q.id, q.messages, q.index, q.response) == ("7", [{"role": "user", "content": "Why?"}], 0, "Because.")
    with pytest.raises(UserError, match="item 1: ambiguous: the record has instruction and question"):
        as_queries([{"instruction": "A?", "question": "B?"}])
    with pytest.raises(UserError, match="item 2: field 'output': expected a string, got int"):
        as_queries([{"prompt": "p"}, {"prompt": "q", "output": 3}])


def test_corpus_responses_use_the_query_ids_and_refuse_a_non_string_output(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"uuid": "u1", "instruction": "A?", "response": "a"}) + "\n"
                      + json.dumps({"instruction": "B?", "output": None}) + "\n")
    qs = load_baseline_queries(corpus, supervised=True)
    assert [(q.id, q.response) for q in qs] == [("u1", "a"), ("c-2", None)]
    assert [q.response for q in load_baseline_queries(corpus, supervised=False)] == [None, None]
    corpus.write_text(json.dumps({"instruction": "A?", "output": ["a"]}) + "\n")
    with pytest.raises(UserError, match=r"c.jsonl:1: field 'output': expected a string, got list"):
        load_baseline_queries(corpus, supervised=True)


def test_a_methods_default_loss_is_its_builders_else_the_trainers() -> None:
    from genius.baselines import BUILDERS, default_loss
    from genius.training import TrainConfig

    assert [default_loss(m) for m in ("sft", "spin", "scpo")] == ["sft", "dpo", "dpo_nll"]
    assert default_loss("genius") == TrainConfig().loss == "aco"
    assert all(default_loss(name) == b.loss for name, b in BUILDERS.items())
