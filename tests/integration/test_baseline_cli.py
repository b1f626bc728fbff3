"""`genius baseline` end to end on a tiny random model: every builder writes valid files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from genius.cli import main
from genius.io import read_jsonl
from genius.schema import check_pair, check_sft

METHODS = ["sft", "spin", "star", "coh", "self-rewarding", "scpo"]


@pytest.fixture(scope="module")
def long_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with a 4096-token context: the byte-level judge prompt is ~1.9k tokens."""
    from genius.tiny import byte_tokenizer, tiny_llama

    folder = tmp_path_factory.mktemp("tiny-long")
    tok = byte_tokenizer()
    tiny_llama(eos_token_id=tok.eos_token_id, max_positions=4096).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    rows = [{"instruction": f"What is {i} plus {i}?", "input": "", "output": f"{i} plus {i} is {2 * i}."} for i in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(method: str, model: Path, corpus: Path, out: Path, *extra: str) -> int:
    cfg = out.parent / f"{out.name}.yaml"
    # spin_greedy off: a random model's greedy reply is all newlines, which SPIN rightly drops.
    cfg.write_text("spin_greedy: false\njudge_samples: 1\njudge_max_new_tokens: 8\nstar_min_votes: 1\n"
                   "vote_threshold: 0.2\n")
    return main(["baseline", method, "--model", str(model), "--dtype", "fp32", "--device", "cpu",
                 "--queries", str(corpus), "--out", str(out), "--config", str(cfg), "--k", "3",
                 "--max-new-tokens", "8", *extra])


@pytest.mark.parametrize("method", METHODS)
def test_each_builder_writes_schema_valid_data(method: str, long_tiny_model: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / method
    assert _run(method, long_tiny_model, corpus, out) == 0
    output = "sft" if method in ("sft", "star") else "pairs"
    records = read_jsonl(out / f"{output}.jsonl")
    for r in records:
        (check_sft if output == "sft" else check_pair)(r)
        assert r["method"] == method.replace("-", "_")
    details = read_jsonl(out / "candidates.jsonl")
    assert [d["query_id"] for d in details] == ["corpus-1", "corpus-2"]
    assert sum(d["kept"] for d in details) == len(records)
    if method == "sft":
        assert [r["response"] for r in records] == ["0 plus 0 is 0.", "1 plus 1 is 2."]
    if method == "self-rewarding":
        assert all(len(d["judgements"]) == 3 for d in details)   # every candidate was judged
    # A rerun resumes: nothing new is generated and the files stay the same.
    before = (out / f"{output}.jsonl").read_text()
    assert _run(method, long_tiny_model, corpus, out) == 0
    assert (out / f"{output}.jsonl").read_text() == before


def test_train_flag_runs_the_trainer_on_the_built_pairs(long_tiny_model: Path, corpus: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text("max_steps: 1\nlr: 1.0e-3\nsave_every: 0\n")
    out = tmp_path / "sft"   # deterministic data: the random model's own pairs may all be dropped
    assert _run("sft", long_tiny_model, corpus, out, "--train", "--train-config", str(train_cfg)) == 0
    done = json.loads((out / "round1" / "train" / "DONE.json").read_text())["result"]
    assert done["started_from"] == str(long_tiny_model) and done["reference"] is None
    train_copy = yaml.safe_load((out / "round1" / "train" / "train_config.yaml").read_text())
    assert train_copy["loss"] == "sft" and train_copy["max_steps"] == 1
    assert not (out / "eval").exists()  # --train trains; it does not evaluate
    before = load_file(long_tiny_model / "model.safetensors")
    after = load_file(Path(done["model"]) / "model.safetensors")
    assert any(not (before[k] == after[k]).all() for k in before)


def test_cli_errors_are_one_line(long_tiny_model: Path, corpus: Path, tmp_path: Path, capsys) -> None:
    assert _run("dpo", long_tiny_model, corpus, tmp_path / "x") == 2
    assert "unknown baseline 'dpo'" in capsys.readouterr().err
    assert _run("scpo", long_tiny_model, corpus, tmp_path / "y", "--iterations", "2") == 2
    assert "--iterations needs --train" in capsys.readouterr().err


def test_help_names_every_builder() -> None:
    from genius.baselines import BUILDERS
    from genius.commands.baseline import NAMES_HELP

    assert all(name in NAMES_HELP for name in BUILDERS)


def test_genius_run_with_a_baseline_method(tiny_model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    """`method: sft` in a run config: the pipeline's queries.jsonl keeps ids and instructions only,
    so the corpus responses come from the query source; the round trains with the sft loss."""
    import yaml

    cfg = {"model": str(tiny_model_dir), "run_dir": str(tmp_path / "run"), "dtype": "fp32", "device": "cpu",
           "rounds": 1, "method": "sft", "queries": {"source": str(corpus), "count": 2},
           "train": {"lr": 1e-3, "max_steps": 1, "max_length": 128},
           "eval": {"tasks": ["synthetic"], "limit": 2, "max_new_tokens": 4, "batch_size": 2}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    data = read_jsonl(tmp_path / "run" / "round1" / "sample" / "sft.jsonl")
    assert [r["response"] for r in data] == ["0 plus 0 is 0.", "1 plus 1 is 2."]
    saved = yaml.safe_load((tmp_path / "run" / "round1" / "train" / "train_config.yaml").read_text())
    assert saved["loss"] == "sft"


def test_spin_two_rounds_trains_the_same_from_both_entry_points(long_tiny_model: Path, corpus: Path,
                                                                tmp_path: Path) -> None:
    """`genius baseline spin --train --iterations 2` is `genius run` with method spin and rounds 2:
    the same round driver, so the same data seeds, start models and references (SPIN's: the
    previous round's model), and the same train configs up to the folders."""
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text("max_steps: 1\nlr: 1.0e-3\nsave_every: 0\nmax_length: 256\n")
    out = tmp_path / "spin"
    assert _run("spin", long_tiny_model, corpus, out, "--train", "--iterations", "2",
                "--train-config", str(train_cfg)) == 0
    second = json.loads((out / "round2" / "train" / "DONE.json").read_text())["result"]
    first = json.loads((out / "round1" / "train" / "DONE.json").read_text())["result"]
    assert second["started_from"] == first["model"] and second["reference"] is None  # None: the start model itself

    run_cfg = yaml.safe_load((out / "config.yaml").read_text())
    run_cfg["run_dir"] = str(tmp_path / "run")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run_cfg))
    assert main(["run", str(path)]) == 0
    for r in (1, 2):
        a = yaml.safe_load((out / f"round{r}" / "train" / "train_config.yaml").read_text())
        b = yaml.safe_load((tmp_path / "run" / f"round{r}" / "train" / "train_config.yaml").read_text())
        same = {k for k in a if k not in ("data", "model", "reference_model")}
        assert {k: a[k] for k in same} == {k: b[k] for k in same} and a["loss"] == "dpo"
        assert (out / f"round{r}" / "sample" / "pairs.jsonl").read_text() == \
            (tmp_path / "run" / f"round{r}" / "sample" / "pairs.jsonl").read_text()


def test_a_resume_with_another_query_file_is_refused(long_tiny_model: Path, corpus: Path, tmp_path: Path,
                                                   capsys) -> None:
    out = tmp_path / "sft"
    assert _run("sft", long_tiny_model, corpus, out) == 0
    other = tmp_path / "other.jsonl"
    other.write_text(corpus.read_text().replace("plus", "and"))
    assert _run("sft", long_tiny_model, other, out) == 2
    assert "queries" in capsys.readouterr().err
    assert _run("sft", long_tiny_model, other, out, "--force") == 0
