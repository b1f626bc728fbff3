"""Progress that moves with the work done: engines report finished sequences while a generate call
runs (``SamplingParams.on_finished``), and the sampling bar advances within each search step."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from tqdm import tqdm

from genius.engines.base import SamplingParams
from genius.engines.vllm import _progress_bar
from genius.queries import Query
from genius.sampling import SampleConfig, run_sample


def _prompt(engine, length: int) -> list[int]:
    return engine.tokenizer.encode("x" * length, add_special_tokens=False)


def test_hf_engine_reports_rows_as_they_finish(tiny_engine) -> None:
    """Two prompts, 2 samples each, greedy with an 8-token budget; the first prompt sits 4 tokens
    below the context, so its rows stop after 4 tokens: two reports of 2 (unless EOS ends a row
    earlier), and all 4 rows reported before generate returns."""
    reports: list[int] = []
    near_end = tiny_engine.max_context - 4
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=8, on_finished=reports.append)
    outs = tiny_engine.generate([_prompt(tiny_engine, near_end), _prompt(tiny_engine, 10)], params)
    assert [len(c.token_ids) for c in outs[0]] == [4, 4] and [len(c.token_ids) for c in outs[1]] == [8, 8]
    assert reports == [2, 2]
    # The callback takes no part in what is sampled, nor in comparing two settings.
    plain = tiny_engine.generate([_prompt(tiny_engine, near_end), _prompt(tiny_engine, 10)],
                                 SamplingParams(n=2, temperature=0.0, max_new_tokens=8))
    assert [c.token_ids for g in plain for c in g] == [c.token_ids for g in outs for c in g]
    assert params == SamplingParams(n=2, temperature=0.0, max_new_tokens=8)


def _run_like_vllm(use_tqdm, prompts: list[str], finish_order: list[int]) -> list[str]:
    """What vLLM 0.32's ``LLM.generate`` does with ``use_tqdm`` (entrypoints/common/offline.py): a
    bar over the prompts it renders, then a bar of the requests advanced by each finished one."""
    make = use_tqdm if callable(use_tqdm) else tqdm
    rendered = list(make(prompts, desc="Rendering prompts")) if use_tqdm else list(prompts)
    if use_tqdm:
        pbar = make(total=len(rendered), desc="Processed prompts", dynamic_ncols=True, postfix="est. speed")
    for _ in finish_order:
        if use_tqdm:
            _ = pbar.format_dict["elapsed"]  # vLLM reads the clock for its tokens/s postfix
            pbar.postfix = "est. speed input: 1.00 toks/s"
            pbar.update(1)
            if pbar.n == len(rendered):
                pbar.refresh()
    if use_tqdm:
        pbar.close()
    return rendered


@pytest.mark.parametrize("show", [False, True])
def test_vllm_requests_are_reported_as_vllm_finishes_them(show: bool, capsys: pytest.CaptureFixture) -> None:
    reports: list[int] = []
    assert _run_like_vllm(_progress_bar(show, reports.append), ["a", "b", "c"], [2, 0, 1]) == ["a", "b", "c"]
    assert reports == [1, 1, 1]  # one per request as it finishes; the rendering bar reports nothing
    assert ("Processed prompts" in capsys.readouterr().err) is show
    assert _progress_bar(show, None) is show  # nobody listening: vLLM's own bar, or none


def _queries(n: int, long: set[int] = frozenset(), context: int = 0) -> list[Query]:
    return [Query(id=f"t{i}", index=i, messages=[{"role": "user", "content": "y" * (context + 10) if i in long
                                                  else f"What is {i} + {2 * i}?"}]) for i in range(n)]


class _Recorder(tqdm):
    """A tqdm that records the count after every update, and how many trees were written by then."""

    seen: list[tuple[float, int]] = []
    trees: Path

    def update(self, n: float | None = 1) -> bool | None:
        out = super().update(n)
        written = len(self.trees.read_text().splitlines()) if self.trees.is_file() else 0
        _Recorder.seen.append((self.n, written))
        return out


def test_sampling_bar_moves_within_each_search_step(tiny_engine, tmp_path: Path, monkeypatch) -> None:
    """Real tiny model, 2 queries in one lockstep group, K = 2: the bar counts 4 query-steps. The
    candidates' call of a step holds 4 / (4 + 12) of it, the rollouts' call the rest, so the bar
    stands between 0 and 2 while the first step runs, at 2 once it ended (no tree written yet: the
    queries end together) and at 4 once both trees are written."""
    import genius.sampling.runner as runner

    _Recorder.seen, _Recorder.trees = [], tmp_path / "trees.jsonl"
    monkeypatch.setattr(runner, "tqdm", lambda **kw: _Recorder(**kw, file=io.StringIO()))
    cfg = SampleConfig(beams=2, candidates=2, steps=2, max_step_tokens=4, max_rollout_tokens=12,
                       step_temperature=1.0, rollout_temperature=1.0)
    stats = run_sample(cfg, _queries(2), tmp_path, tiny_engine)
    counts = [n for n, _ in _Recorder.seen]
    before_any_tree = [n for n, written in _Recorder.seen if written == 0]
    assert stats["queries_this_run"] == 2 and counts[-1] == pytest.approx(4.0)
    assert any(0 < n < 2 for n in before_any_tree)  # inside the first step
    assert any(n == pytest.approx(2.0) for n in before_any_tree)  # the first step done, no query done
    assert any(2 < n < 4 for n in before_any_tree)  # inside the second step
    assert counts == sorted(counts)


def test_no_progress_draws_nothing(tiny_engine, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = SampleConfig(beams=1, candidates=2, steps=1, max_step_tokens=4, max_rollout_tokens=4)
    run_sample(cfg, _queries(1), tmp_path / "quiet", tiny_engine, progress=False)
    assert "query-steps" not in capsys.readouterr().err
    run_sample(cfg, _queries(1), tmp_path / "shown", tiny_engine)
    assert "query-steps" in capsys.readouterr().err


def test_a_query_longer_than_the_context_is_skipped_counted_and_checked_again(tiny_engine, tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    """Real tiny model (context 1024 tokens, byte-level): the query t1 of 1034 characters cannot take
    a step. It is skipped before any generation, never written as a (empty) tree, counted in
    stats.json and warned about; a rerun checks it again (skipped, counted, nothing generated)."""
    queries = _queries(3, long={1}, context=tiny_engine.max_context)
    cfg = SampleConfig(beams=1, candidates=2, steps=1, max_step_tokens=4, max_rollout_tokens=4)
    calls: list[int] = []
    generate = tiny_engine.generate

    def counting(prompts, params):
        calls.append(max(len(p) for p in prompts))
        return generate(prompts, params)

    tiny_engine.generate = counting
    try:
        stats = run_sample(cfg, queries, tmp_path, tiny_engine, progress=False)
        assert [t["query_id"] for t in map(json.loads, (tmp_path / "trees.jsonl").read_text().splitlines())] == [
            "t0", "t2"]
        assert calls and max(calls) < 200  # the long prompt never reached the engine
        assert stats["queries_too_long"] == 1 and stats["queries_too_long_ids"] == ["t1"]
        assert stats["queries"] == 2 and stats["queries_this_run"] == 2 and stats["queries_without_steps"] == 0
        assert json.loads((tmp_path / "stats.json").read_text())["queries_too_long"] == 1
        err = capsys.readouterr().err
        assert "warning: 1 queries skipped" in err and "context of 1024 tokens (t1;" in err
        calls.clear()
        again = run_sample(cfg, queries, tmp_path, tiny_engine, progress=False)
    finally:
        del tiny_engine.generate
    assert calls == [] and again["queries_this_run"] == 0 and again["queries_resumed"] == 2
    assert again["queries_too_long"] == 1 and again["queries"] == 2
    assert "warning: 1 queries skipped" in capsys.readouterr().err


def test_baseline_builders_count_responses_while_a_batch_runs(tiny_engine, tmp_path: Path, monkeypatch) -> None:
    """A builder's batch of queries finishes at once, after its engine calls: beside the bar of
    queries the responses are counted as the engine finishes them (2 queries x 3 samples, 4-token
    budget), while the builder's generate calls run."""
    from genius.baselines import common
    from genius.baselines.config import BaselineConfig

    postfixes: list[str] = []

    class Bar(tqdm):
        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            postfixes.append(s)
            super().set_postfix_str(s, refresh)

    monkeypatch.setattr("tqdm.tqdm", Bar)
    monkeypatch.setattr(common._ResponseCounter, "REDRAW_S", 0.0)
    seen_during_call: list[int] = []

    def process(batch, engine, cfg, seed):
        outs = common.sample(engine, cfg, [q.messages for q in batch], n=3, seed=seed)
        seen_during_call.append(len(postfixes))
        return [common.QueryResult(q.id, [], {"n": len(o)}) for q, o in zip(batch, outs)]

    queries = [Query(id=f"b{i}", messages=[{"role": "user", "content": f"Say {i}."}], index=i) for i in range(2)]
    common.run_builder("probe", "pairs", process, BaselineConfig(k=3, max_new_tokens=4, batch_size=2), queries,
                       tiny_engine, tmp_path)
    assert seen_during_call == [len(postfixes)] and postfixes[-1].startswith("6 responses")
