"""Training data: read pairs/SFT records, tokenize, apply the length policy, batch, collate.

A sequence is ``chat_prompt_ids(tokenizer, prompt_messages) + response tokens + [EOS]``:

- the prompt goes through the model's chat template with the generation prompt (so the model
  is trained on pi(T | x): the question stays in the input; it is only masked out of the loss);
- the response is tokenized on its own, without special tokens, the way the sampler produced
  it after the prompt; its text already starts with the assistant prefix when one was used;
- EOS is ``tokenizer.eos_token_id`` (for chat models the end-of-turn token, e.g. <|im_end|>,
  <|eot_id|>), so the model also learns where the answer stops; a response that a token budget
  cut (``chosen_finish``/``rejected_finish`` = length) gets none: it did not stop there.

Labels are -100 on prompt and padding tokens: the loss sees response tokens only. Sequences
longer than ``max_length`` are dropped, or (policy ``truncate``) cut at the response end;
a prompt that leaves no room for one response token is always dropped. Both are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from genius.errors import UserError, where
from genius.io import iter_jsonl
from genius.models import chat_prompt_ids, load_tokenizer
from genius.schema import check_pair, check_sft, is_finite_pair, prompt_messages

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from genius.training.config import TrainConfig
    from genius.training.losses import LossSpec

IGNORE = -100


@dataclass
class Example:
    prompt_ids: list[int]
    chosen_ids: list[int]
    """Response tokens (SFT: the response) ending in EOS unless truncated."""
    rejected_ids: list[int] | None = None
    adv_chosen: float = 0.0
    adv_rejected: float = 0.0
    weight: float = 1.0

    @property
    def length(self) -> int:
        """Longest of the sequences this example adds to a batch (the padding cost)."""
        longest = max(len(self.chosen_ids), len(self.rejected_ids or []))
        return len(self.prompt_ids) + longest


@dataclass
class DataStats:
    records: int = 0
    kept: int = 0
    dropped_invalid: int = 0
    """NaN/inf advantage or empty response."""
    dropped_long: int = 0
    truncated: int = 0

    def summary(self) -> str:
        return (f"{self.kept}/{self.records} examples kept ({self.dropped_invalid} invalid dropped, "
                f"{self.dropped_long} too long dropped, {self.truncated} truncated)")


@dataclass
class Records:
    kind: str
    """pairs or sft."""
    rows: list[tuple[str, int, dict]] = field(default_factory=list)
    """(file, line, record) after validation and the invalid-record filter."""
    dropped_invalid: int = 0


def detect_format(path: Path) -> str:
    for line, record in iter_jsonl(path):
        if "chosen" in record or "rejected" in record:
            return "pairs"
        if "response" in record:
            return "sft"
        raise UserError(f"{where(path, line)} neither a pair (chosen, rejected) nor an SFT example (response)")
    raise UserError(f"{path}: no records")


def read_records(paths: list[Path], data_format: str, *, need_advantages: bool, drop_invalid: bool) -> Records:
    """Read and validate every record; a bad field raises UserError naming file, line and field."""
    if not paths:
        raise UserError("train: no data file given (set 'data' in the config or pass --data)")
    kind = data_format if data_format != "auto" else detect_format(paths[0])
    out = Records(kind=kind)
    for path in paths:
        for line, record in iter_jsonl(path):
            if kind == "pairs":
                check_pair(record, path, line, need_advantages=need_advantages)
                valid = is_finite_pair(record)
            else:
                check_sft(record, path, line)
                valid = bool(record["response"].strip())
            if not valid:
                if not drop_invalid:
                    raise UserError(f"{where(path, line)} NaN/inf advantage or empty response "
                                    "(set drop_invalid: true to drop such records)")
                out.dropped_invalid += 1
                continue
            out.rows.append((str(path), line, record))
    return out


def _response_ids(tokenizer: Any, text: str, finish: str | None = None) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids if finish == "length" else ids + [tokenizer.eos_token_id]


def fit_length(prompt_len: int, response: list[int], max_length: int, policy: str) -> tuple[list[int] | None, bool]:
    """(response kept, was truncated); None when the sequence must be dropped."""
    if prompt_len + len(response) <= max_length:
        return response, False
    room = max_length - prompt_len
    if policy == "truncate" and room >= 1:
        return response[:room], True
    return None, False


def tokenize(records: Records, tokenizer: Any, *, max_length: int, length_policy: str,
             with_rejected: bool) -> tuple[list[Example], DataStats]:
    """Records -> examples under the length policy, with counts of what was dropped or cut."""
    if tokenizer.eos_token_id is None:
        raise UserError("the tokenizer has no EOS token; training needs one to end responses")
    stats = DataStats(records=len(records.rows) + records.dropped_invalid, dropped_invalid=records.dropped_invalid)
    examples = []
    for path, line, rec in records.rows:
        prompt = chat_prompt_ids(tokenizer, prompt_messages(rec["prompt"], path, line))
        sides = ([(rec["chosen"], rec.get("chosen_finish")), (rec["rejected"], rec.get("rejected_finish"))]
                 if records.kind == "pairs" else [(rec["response"], rec.get("finish"))])
        if not with_rejected:
            sides = sides[:1]
        fitted = [fit_length(len(prompt), _response_ids(tokenizer, text, finish), max_length, length_policy)
                  for text, finish in sides]
        if any(ids is None for ids, _ in fitted):
            stats.dropped_long += 1
            continue
        stats.truncated += any(cut for _, cut in fitted)
        examples.append(Example(
            prompt_ids=prompt, chosen_ids=fitted[0][0], rejected_ids=fitted[1][0] if len(fitted) > 1 else None,
            adv_chosen=float(rec.get("A_w") or 0.0), adv_rejected=float(rec.get("A_l") or 0.0),
            weight=float(rec["weight"]) if rec.get("weight") is not None else 1.0,
        ))
    stats.kept = len(examples)
    return examples, stats


def load_examples(cfg: TrainConfig, loss: LossSpec) -> tuple[Any, list[Example], DataStats]:
    """(tokenizer, tokenized examples, their counts) of a train config's data files, in the
    shape ``loss`` needs; bad records, SFT data for a pair loss and no usable example are
    UserErrors."""
    tokenizer = load_tokenizer(cfg.model, trust_remote_code=cfg.trust_remote_code)
    records = read_records(cfg.data_files(), cfg.data_format, need_advantages=loss.needs_advantages,
                           drop_invalid=cfg.drop_invalid)
    if loss.needs_rejected and records.kind != "pairs":
        raise UserError(f"loss '{cfg.loss}' needs preference pairs (chosen, rejected); the data holds SFT examples")
    examples, stats = tokenize(records, tokenizer, max_length=cfg.max_length, length_policy=cfg.length_policy,
                               with_rejected=loss.needs_rejected)
    if not examples:
        raise UserError(f"train: no usable examples left after the length policy and the invalid-record filter "
                        f"({stats.summary()})")
    return tokenizer, examples, stats


def batch_order(lengths: list[int], batch_size: int, *, seed: int, epoch: int,
                group_by_length: bool, window_batches: int = 32) -> list[list[int]]:
    """Micro-batches of example indices for one epoch; the same (seed, epoch) gives the same order.

    Shuffle; then, to cut padding, sort each window of ``window_batches`` batches by length
    (longest first) and cut it into batches; finally shuffle the batch order so that lengths
    do not drift through the epoch.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(lengths), generator=g).tolist()
    if group_by_length:
        window = batch_size * window_batches
        perm = [i for s in range(0, len(perm), window)
                for i in sorted(perm[s:s + window], key=lambda i: -lengths[i])]
    batches = [perm[s:s + batch_size] for s in range(0, len(perm), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
    return batches


class BatchList(list):
    """A fixed list of micro-batches; ``batch_size`` tells accelerate how to even out processes."""

    def __init__(self, batches: list[list[int]], batch_size: int):
        super().__init__(batches)
        self.batch_size = batch_size


def epoch_loader(examples: list[Example], pad_id: int, *, with_rejected: bool, batch_size: int, seed: int,
                 epoch: int, group_by_length: bool) -> DataLoader:
    """The collated micro-batches of one epoch in ``batch_order``; each also carries the
    ``index`` of its examples (to look up their precomputed reference log-probs)."""
    from torch.utils.data import DataLoader

    def collate_fn(idx: list[int]) -> dict[str, Tensor]:
        return {**collate([examples[i] for i in idx], pad_id, with_rejected=with_rejected), "index": torch.tensor(idx)}

    order = BatchList(batch_order([e.length for e in examples], batch_size, seed=seed, epoch=epoch,
                                  group_by_length=group_by_length), batch_size)
    return DataLoader(range(len(examples)), batch_sampler=order, collate_fn=collate_fn)


def _pad(seqs: list[list[int]], value: int) -> Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


def collate(examples: list[Example], pad_id: int, *, with_rejected: bool) -> dict[str, Tensor]:
    """Right-padded batch: chosen sequences first, then rejected ones (one forward for both).

    ``input_ids``/``attention_mask``/``labels`` have 2B rows for pairs (B for SFT); labels are
    -100 on prompt and padding. Advantages and weights are [B].
    """
    responses = [e.chosen_ids for e in examples]
    prompts = [e.prompt_ids for e in examples]
    if with_rejected:
        if any(e.rejected_ids is None for e in examples):
            raise ValueError("collate: with_rejected on examples without a rejected response")
        responses += [e.rejected_ids for e in examples]  # type: ignore[misc]
        prompts += prompts
    ids = [p + r for p, r in zip(prompts, responses)]
    labels = [[IGNORE] * len(p) + r for p, r in zip(prompts, responses)]
    return {
        "input_ids": _pad(ids, pad_id),
        "attention_mask": _pad([[1] * len(s) for s in ids], 0),
        "labels": _pad(labels, IGNORE),
        "adv_chosen": torch.tensor([e.adv_chosen for e in examples], dtype=torch.float32),
        "adv_rejected": torch.tensor([e.adv_rejected for e in examples], dtype=torch.float32),
        "weight": torch.tensor([e.weight for e in examples], dtype=torch.float32),
    }


def sequence_logps(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Summed log p(label token) over unmasked positions, and the token counts, per row.

    logits[:, t] predicts token t+1, so labels are shifted left by one. Computed as
    logit[label] - logsumexp(logits) in fp32 without materialising a second [N, T, V] tensor.
    """
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE
    safe = targets.masked_fill(~mask, 0)
    picked = torch.gather(logits, -1, safe.unsqueeze(-1)).squeeze(-1)
    token_logps = picked - torch.logsumexp(logits, dim=-1)
    token_logps = torch.where(mask, token_logps, torch.zeros_like(token_logps))
    return token_logps.sum(-1), mask.sum(-1)


def forward_logps(model: Any, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """One forward pass over a collated batch -> (summed response log-probs, token counts) per row."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    return sequence_logps(logits, batch["labels"])
