"""One way from the command line to a config, for every config-taking command: a YAML value
survives when its flag is not given, a flag (or ``--set``) beats the YAML, and every config flag
names a real field of its config class (so none can drift). The commands stop where their
config is complete: the function they hand it to is replaced by one that records it and stops
(a UserError: exit 2), so no model is loaded."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import typing
from pathlib import Path

import pytest
import yaml

from genius import config
from genius.cli import build_parser, main
from genius.commands._common import config_flags
from genius.errors import UserError

CONFIG_COMMANDS = ("run", "train", "sample", "eval", "baseline", "pairs")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _class(name: str) -> type:
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def _sample_argv(action: argparse.Action) -> list[str]:
    """A command-line value this flag accepts (the first choice, or a value of its type)."""
    flag = action.option_strings[0]
    if action.nargs == 0:
        return [flag]
    if action.choices:
        return [flag, str(list(action.choices)[0])]
    typ = action.type or str
    value = {int: "3", float: "0.5"}.get(typ, "x")
    return [flag, value]


def test_every_config_flag_names_a_field_of_its_config_and_parses_to_its_type():
    from genius.config import _coerce

    commands = _subparsers()
    seen = {}
    for name, p in commands.items():
        flags = config_flags(p)
        if name in CONFIG_COMMANDS:
            assert flags, f"genius {name} has no config flags"
            assert "--set" in p._option_string_actions, f"genius {name} has no --set"
        for dest, owner in flags.items():
            cls = _class(owner)
            fields = {f.name for f in dataclasses.fields(cls)}
            assert dest in fields, f"genius {name}: flag for '{dest}', which {cls.__name__} does not have"
            action = next(a for a in p._actions if a.dest == dest)
            assert action.default is None, f"genius {name} {action.option_strings[0]}: a default would beat the YAML"
            value = getattr(p.parse_known_args(_sample_argv(action) + _required(name))[0], dest)
            _coerce(value, typing.get_type_hints(cls)[dest], dest, f"genius {name}")  # the field takes it
            seen.setdefault(name, set()).add(dest)
    assert {"run_dir", "model", "engine"} <= seen["run"]
    assert {"data", "model", "loss", "max_steps", "lr", "cpu"} <= seen["train"]
    assert {"tasks", "data_dir", "preset", "model", "dtype", "device", "engine", "trust_remote_code"} <= seen["eval"]
    assert {"negatives", "tau", "unfinished"} <= seen["pairs"]


def _required(command: str) -> list[str]:
    return {"sample": ["q.jsonl", "--out", "o"], "train": ["--out", "o"], "baseline": ["star", "--queries", "q",
                                                                                       "--out", "o"],
            "pairs": ["t.jsonl", "--out", "o"]}.get(command, [])


def test_generated_help_is_the_first_sentence_of_the_field_docstring():
    from genius.evaluation.evaluate import EvalConfig
    from genius.sampling.config import SampleConfig

    sample = _subparsers()["sample"]
    by_dest = {a.dest: a for a in sample._actions}
    assert by_dest["tau"].help.startswith("Temperature of the re-sampling distribution softmax(score / tau)")
    assert by_dest["tau"].help.endswith("(default: 0.1)")
    assert by_dest["score"].choices == ["foresight", "step_logprob"]
    assert config.first_sentence(config.field_docs(SampleConfig)["beams"]) in by_dest["beams"].help
    evaluate = {a.dest: a for a in _subparsers()["eval"]._actions}
    assert evaluate["top_p"].help.startswith(config.first_sentence(config.field_docs(EvalConfig)["top_p"]))


class _Stop(UserError):
    pass


@pytest.fixture
def seen(monkeypatch):
    """Replaces the functions the commands hand their config to: each records what it got, then stops."""
    got: dict = {}

    def recorder(key: str):
        def record(*args, **kwargs):
            got[key] = (args, kwargs)
            raise _Stop("stopped by the test")
        return record

    for target in ("genius.plan.plan_run", "genius.training.run_train", "genius.sampling.run_sample",
                   "genius.evaluation.run_eval", "genius.baselines.build", "genius.sampling.runner.rewrite_pairs"):
        monkeypatch.setattr(target, recorder(target.rsplit(".", 1)[1]))
    monkeypatch.setattr("genius.engines.make_engine", lambda spec, **kw: object())
    return got


@pytest.fixture
def queries(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "instruction": f"What is {i} + 1?", "output": f"{i + 1}"}) + "\n"
                            for i in range(3)))
    return path


def _yaml(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run(seen, tmp_path):
    cfg = _yaml(tmp_path, {"model": "yaml-model", "run_dir": str(tmp_path / "r"), "queries": {"count": 5},
                           "sample": {"steps": 3}, "engine": "hf"})
    assert main(["run", str(cfg), "--plan"]) == 2
    got = seen["plan_run"][0][0]
    assert (got.model, got.queries.count, got.sample, got.engine, got.run_dir) == (
        "yaml-model", 5, {"steps": 3}, "hf", str(tmp_path / "r"))
    assert main(["run", str(cfg), "--plan", "--model", "flag-model", "--engine", "vllm", "--set", "queries.count=8",
                 "--set", "sample.beams=1", "--run-dir", f"{tmp_path / 'other'}/"]) == 2
    got = seen["plan_run"][0][0]
    assert (got.model, got.queries.count, got.queries.source, got.sample, got.engine) == (
        "flag-model", 8, "synthetic", {"steps": 3, "beams": 1}, "vllm")
    assert got.run_dir == str(tmp_path / "other")  # the trailing '/' is gone


def test_train(seen, tmp_path):
    cfg = _yaml(tmp_path, {"model": "yaml-model", "lr": 0.01, "max_steps": 5, "beta": 0.3, "lora": {"r": 4}})
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    got = seen["run_train"][0][0]
    assert (got.model, got.lr, got.max_steps, got.beta, got.lora.r, got.cpu) == ("yaml-model", 0.01, 5, 0.3, 4, False)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o"), "--lr", "0.02", "--model", "flag",
                 "--cpu", "--data", "a.jsonl", "--set", "lora.r=8", "--set", "beta=0.5"]) == 2
    (got, _), kwargs = seen["run_train"]
    assert (got.model, got.lr, got.max_steps, got.beta, got.lora.r, got.lora.alpha, got.cpu) == (
        "flag", 0.02, 5, 0.5, 8, 32, True)
    assert got.data_files() == [Path("a.jsonl")] and kwargs == {"resume": True, "force": False}


def test_sample(seen, queries, tmp_path):
    cfg = _yaml(tmp_path, {"beams": 1, "candidates": 3, "delimiter": ". ", "engine_options": {"max_model_len": 512}})
    argv = ["sample", str(queries), "--out", str(tmp_path / "s"), "--config", str(cfg)]
    assert main(argv) == 2
    got = seen["run_sample"][0][0]
    assert (got.beams, got.candidates, got.delimiter, got.engine_options.max_model_len) == (1, 3, ". ", 512)
    assert main([*argv, "--candidates", "2", "--delimiter", "\\n\\n", "--set", "engine_options.max_model_len=64",
                 "--end-marker", "<end>", "--force"]) == 2
    (got, *_), kwargs = seen["run_sample"]
    assert (got.beams, got.candidates, got.delimiter, got.engine_options.max_model_len, got.end_markers) == (
        1, 2, "\n\n", 64, ["<end>"])
    assert kwargs["force"] is True


def test_eval(seen, tmp_path):
    cfg = _yaml(tmp_path, {"model": "yaml-model", "tasks": ["synthetic"], "max_new_tokens": 5, "preset": "zero-shot",
                           "dtype": "fp32", "samples": 2})
    assert main(["eval", "--config", str(cfg), "--out", str(tmp_path / "e")]) == 2
    got = seen["run_eval"][0][0]
    assert (got.model, got.tasks, got.max_new_tokens, got.preset, got.dtype, got.samples) == (
        "yaml-model", ["synthetic"], 5, "zero-shot", "fp32", 2)
    assert main(["eval", "--config", str(cfg), "--out", str(tmp_path / "e"), "--tasks", "gsm8k, synthetic",
                 "--max-new-tokens", "3", "--dtype", "bf16", "--set", "seed=4", "--force"]) == 2
    (got, _), kwargs = seen["run_eval"]
    assert (got.tasks, got.max_new_tokens, got.preset, got.dtype, got.seed, got.samples) == (
        ["gsm8k", "synthetic"], 3, "zero-shot", "bf16", 4, 2)
    assert kwargs["force"] is True


def test_baseline(seen, queries, tmp_path):
    cfg = _yaml(tmp_path, {"k": 3, "temperature": 0.2, "judge_samples": 1})
    argv = ["baseline", "star", "--queries", str(queries), "--out", str(tmp_path / "b"), "--config", str(cfg)]
    assert main(argv) == 2
    got = seen["build"][0][1]
    assert (got.k, got.temperature, got.judge_samples) == (3, 0.2, 1)
    assert main([*argv, "--k", "5", "--set", "judge_samples=2", "--system-prompt", "Be brief."]) == 2
    got = seen["build"][0][1]
    assert (got.k, got.temperature, got.judge_samples, got.system_prompt) == (5, 0.2, 2, "Be brief.")


def test_pairs(seen, tmp_path):
    trees = tmp_path / "s" / "trees.jsonl"
    trees.parent.mkdir()
    trees.write_text("")
    config.save(config.from_dict(_class("genius.sampling.config.SampleConfig"), {"negatives": "uniform", "tau": 0.3}),
                trees.parent / "sample_config.yaml")
    argv = ["pairs", str(trees), "--out", str(tmp_path / "p.jsonl")]
    assert main(argv) == 2
    got = seen["rewrite_pairs"][0][2]
    assert (got.negatives, got.tau, got.unfinished) == ("uniform", 0.3, "drop")
    assert main([*argv, "--negatives", "lowest", "--set", "unfinished=keep"]) == 2
    got = seen["rewrite_pairs"][0][2]
    assert (got.negatives, got.tau, got.unfinished) == ("lowest", 0.3, "keep")


def test_a_bad_set_value_is_one_line(seen, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "o"), "--set", "beta=[1,"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set 'beta=[1,': the value is not valid YAML" in err[0]
    listed = tmp_path / "list.yaml"
    listed.write_text("- beta: 1\n")
    assert main(["train", "--out", str(tmp_path / "o"), "--config", str(listed)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected a mapping of config keys at the top level, got a list" in err[0]
    assert "run_train" not in seen
