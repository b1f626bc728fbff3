"""Training data: tokenization, masks, length policy, bad input, batching; schedule and config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from genius.config import from_dict
from genius.errors import UserError
from genius.models import chat_prompt_ids
from genius.tiny import byte_tokenizer
from genius.training import TrainConfig
from genius.training.data import (IGNORE, Example, batch_order, collate, fit_length, read_records,
                                  sequence_logps, tokenize)
from genius.training.loop import linear_warmup_decay


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


PAIR = {"prompt": "2+2?", "chosen": "4", "rejected": "five", "A_w": 0.1, "A_l": -0.2}


def test_sequence_is_prompt_plus_response_plus_eos_with_prompt_masked(tmp_path, tok):
    """Byte tokenizer: 'five' is 4 tokens, + EOS = 5. The prompt (the question x) stays in the
    input - the reference code's bug dropped it - and only its labels are -100."""
    recs = read_records([write(tmp_path / "p.jsonl", [PAIR])], "auto", need_advantages=True, drop_invalid=True)
    [ex], stats = tokenize(recs, tok, max_length=512, length_policy="drop", with_rejected=True)
    prompt = chat_prompt_ids(tok, [{"role": "user", "content": "2+2?"}])
    assert ex.prompt_ids == prompt
    assert ex.chosen_ids == tok("4", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(ex.rejected_ids) == 5 and ex.rejected_ids[-1] == tok.eos_token_id
    assert (ex.adv_chosen, ex.adv_rejected, ex.weight) == (0.1, -0.2, 1.0)
    batch = collate([ex], tok.pad_token_id, with_rejected=True)
    assert batch["input_ids"].shape == (2, len(prompt) + 5)
    assert batch["input_ids"][0, :len(prompt)].tolist() == prompt
    labels = batch["labels"]
    assert (labels[:, :len(prompt)] == IGNORE).all()
    assert labels[1, len(prompt):].tolist() == ex.rejected_ids
    # the chosen row is 3 tokens shorter: right padding, masked, attention 0
    assert labels[0, -3:].tolist() == [IGNORE] * 3
    assert batch["attention_mask"][0].sum().item() == len(prompt) + 2
    assert batch["input_ids"][0, -1].item() == tok.pad_token_id
    assert stats.kept == 1


def test_length_policy_drop_and_truncate():
    """prompt 6 + response 5 = 11 > max 8: drop -> None; truncate keeps the first 8-6 = 2 response
    tokens; a prompt of 8 leaves no room and is dropped under either policy."""
    resp = [1, 2, 3, 4, 5]
    assert fit_length(6, resp, 8, "drop") == (None, False)
    assert fit_length(6, resp, 8, "truncate") == ([1, 2], True)
    assert fit_length(8, resp, 8, "truncate") == (None, False)
    assert fit_length(3, resp, 8, "drop") == (resp, False)


def test_length_policy_is_counted(tmp_path, tok):
    long = dict(PAIR, rejected="x" * 200)
    path = write(tmp_path / "p.jsonl", [PAIR, long, PAIR])
    recs = read_records([path], "pairs", need_advantages=False, drop_invalid=True)
    prompt_len = len(chat_prompt_ids(tok, [{"role": "user", "content": "2+2?"}]))
    _, dropped = tokenize(recs, tok, max_length=prompt_len + 20, length_policy="drop", with_rejected=True)
    assert (dropped.kept, dropped.dropped_long, dropped.truncated) == (2, 1, 0)
    ex, cut = tokenize(recs, tok, max_length=prompt_len + 20, length_policy="truncate", with_rejected=True)
    assert (cut.kept, cut.dropped_long, cut.truncated) == (3, 0, 1)
    assert len(ex[1].rejected_ids) == 20 and ex[1].rejected_ids[-1] != tok.eos_token_id
    assert "1 truncated" in cut.summary()


def test_missing_field_names_field_and_line(tmp_path):
    path = write(tmp_path / "p.jsonl", [PAIR, {"prompt": "q", "chosen": "a"}])
    with pytest.raises(UserError, match=r"p\.jsonl:2: field 'rejected'"):
        read_records([path], "pairs", need_advantages=False, drop_invalid=True)
    no_adv = write(tmp_path / "q.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(UserError, match=r"q\.jsonl:1: field 'A_w'"):
        read_records([no_adv], "pairs", need_advantages=True, drop_invalid=True)


def test_nan_advantage_and_empty_response_dropped_or_refused(tmp_path):
    """NaN is written as null by genius.io; an empty rejected response is unusable too."""
    rows = [PAIR, dict(PAIR, A_l=None), dict(PAIR, rejected="  "), PAIR]
    path = write(tmp_path / "p.jsonl", rows)
    recs = read_records([path], "pairs", need_advantages=True, drop_invalid=True)
    assert (len(recs.rows), recs.dropped_invalid) == (2, 2)
    with pytest.raises(UserError, match=r"p\.jsonl:2: NaN/inf"):
        read_records([path], "pairs", need_advantages=True, drop_invalid=False)


def test_sft_records_detected(tmp_path, tok):
    path = write(tmp_path / "s.jsonl", [{"prompt": "hi", "response": "hello", "weight": 2}])
    recs = read_records([path], "auto", need_advantages=False, drop_invalid=True)
    [ex], _ = tokenize(recs, tok, max_length=128, length_policy="drop", with_rejected=False)
    assert recs.kind == "sft" and ex.rejected_ids is None and ex.weight == 2.0


def test_batch_order_is_seeded_complete_and_groups_lengths():
    lengths = [(i * 37) % 101 for i in range(64)]
    a = batch_order(lengths, 4, seed=1, epoch=0, group_by_length=True)
    assert a == batch_order(lengths, 4, seed=1, epoch=0, group_by_length=True)
    assert a != batch_order(lengths, 4, seed=1, epoch=1, group_by_length=True)
    assert sorted(i for b in a for i in b) == list(range(64))
    plain = batch_order(lengths, 4, seed=1, epoch=0, group_by_length=False)

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padding(a) < padding(plain) / 2


def test_sequence_logps_hand_value():
    """Vocab 2, one row [a, b, b] with logits giving p(b)=e/(1+e) at every position.
    Labels [-100, b, b]: two counted tokens, sum = 2*log(e/(1+e)) = 2*(1 - log(1+e)) = -0.6265234."""
    logits = torch.tensor([[[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]])
    labels = torch.tensor([[IGNORE, 1, 1]])
    total, count = sequence_logps(logits, labels)
    assert total.item() == pytest.approx(2 * (1 - math.log(1 + math.e)), abs=1e-6)
    assert count.item() == 2


def test_linear_warmup_decay():
    """total 10, warmup 2: steps 0,1 -> 1/3, 2/3; step 2 -> (10-2)/8 = 1; step 6 -> 0.5; step 10 -> 0."""
    values = [linear_warmup_decay(s, 10, 2) for s in (0, 1, 2, 6, 10)]
    assert values == pytest.approx([1 / 3, 2 / 3, 1.0, 0.5, 0.0])


def test_config_errors():
    with pytest.raises(UserError, match="unknown loss 'kto'.*aco, dpo"):
        from_dict(TrainConfig, {"loss": "kto"})
    with pytest.raises(UserError, match="unknown key 'betta'"):
        from_dict(TrainConfig, {"betta": 0.1})
    cfg = from_dict(TrainConfig, {"global_batch_size": 128, "per_device_batch_size": 2, "data": "p.jsonl"})
    assert cfg.grad_accum_for(8) == 8 and cfg.data_files() == [Path("p.jsonl")]
    with pytest.raises(UserError, match="not a multiple"):
        cfg.grad_accum_for(3)


def test_example_length_is_longest_sequence():
    assert Example([1, 2], [3], [4, 5, 6]).length == 5


def test_a_cut_response_gets_no_eos_and_a_finished_one_does() -> None:
    """rejected_finish "length": the budget cut it, so its tokens end without EOS; the chosen
    (eos) and a record without finish fields (older files) end with EOS."""
    from genius.tiny import byte_tokenizer
    from genius.training.data import Records, tokenize

    tok = byte_tokenizer()
    rec = {"prompt": "q", "chosen": "ab", "rejected": "cd", "chosen_finish": "eos", "rejected_finish": "length"}
    old = {"prompt": "q", "chosen": "ab", "rejected": "cd"}
    examples, _ = tokenize(Records("pairs", [("f", 1, rec), ("f", 2, old)]), tok, max_length=512,
                           length_policy="drop", with_rejected=True)
    eos = tok.eos_token_id
    assert examples[0].chosen_ids[-1] == eos and examples[0].rejected_ids[-1] != eos
    assert examples[0].rejected_ids == tok("cd", add_special_tokens=False)["input_ids"]
    assert examples[1].chosen_ids[-1] == eos and examples[1].rejected_ids[-1] == eos


def test_a_finish_field_that_is_not_a_finish_is_refused() -> None:
    from genius.schema import check_pair

    with pytest.raises(UserError, match="rejected_finish.*expected one of eos, stop, length"):
        check_pair({"prompt": "q", "chosen": "a", "rejected": "b", "rejected_finish": "cut"}, "p.jsonl", 3)


def test_a_resumed_training_may_change_only_how_it_runs_and_logs(tmp_path: Path) -> None:
    import dataclasses

    from genius.config import check_resume, fixed_keys, save

    movable = {f.name for f in dataclasses.fields(TrainConfig)} - set(fixed_keys(TrainConfig))
    assert movable == {"save_every", "keep_checkpoints", "log_every", "trackers", "reference_cache_dir", "cpu",
                       "save_dtype", "process_group_timeout_minutes"}
    saved = tmp_path / "train_config.yaml"
    save(from_dict(TrainConfig, {"data": "p.jsonl", "lr": 1e-6}), saved)
    check_resume(saved, from_dict(TrainConfig, {"data": "p.jsonl", "lr": 1e-6, "log_every": 5, "cpu": True}))
    with pytest.raises(UserError, match=r"other settings \(beta: 0.1 -> 0.2\)"):
        check_resume(saved, from_dict(TrainConfig, {"data": "p.jsonl", "lr": 1e-6, "beta": 0.2}))
