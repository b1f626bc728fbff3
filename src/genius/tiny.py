"""A tiny random Llama and a byte-level chat tokenizer, built in-process with no download.

Used by the test suite and for trying the pipeline in seconds: ``save_tiny_model(folder)``
writes a normal HF folder that every command accepts as a model spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_tokenizer(chat_template: str | None = CHATML_TEMPLATE) -> Any:
    """A byte-level BPE tokenizer with no merges: 256 byte tokens + ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(sorted(alphabet))}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIALS)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=None, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", unk_token=None)
    tok.chat_template = chat_template
    return tok


def tiny_llama(vocab_size: int = 320, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
               seed: int = 0, eos_token_id: int | None = None, max_positions: int = 1024) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
        tie_word_embeddings=True, eos_token_id=eos_token_id, pad_token_id=None, bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Random weights give near-uniform next-token distributions; scale up so that sampling has
    # structure (greedy and sampled outputs differ, some rows hit EOS).
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(4.0)
    return model.eval()


def save_tiny_model(folder: str | Path, *, seed: int = 0, layers: int = 2, hidden: int = 64) -> Path:
    """Write a tiny random Llama + byte tokenizer as a normal HF folder; return the folder."""
    folder = Path(folder)
    tok = byte_tokenizer()
    model = tiny_llama(seed=seed, layers=layers, hidden=hidden, eos_token_id=tok.eos_token_id)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def write_tiny_pairs(path: str | Path, n: int) -> Path:
    """``n`` ACO pairs of small sums (right vs wrong answer, varied advantages) for training tests."""
    import json

    path = Path(path)
    with path.open("w") as f:
        for i in range(n):
            a, b = 2 + i, 30 - i
            f.write(json.dumps({"query_id": f"q{i}", "step": 1, "prompt": f"What is {a} + {b}?",
                                "chosen": f"{a} + {b} = {a + b}. The answer is: {a + b}",
                                "rejected": f"{a} + {b} = {a * b}. The answer is: {a * b + 1}",
                                "A_w": 0.1 * (i % 3), "A_l": -0.1 * (i % 4)}) + "\n")
    return path
