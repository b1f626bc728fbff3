"""The engine on the real embedded model answers a simple arithmetic question (slow; CI runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genius.engines.base import SamplingParams
from genius.engines.hf import HFEngine
from genius.models import chat_prompt_ids


@pytest.mark.slow
def test_embedded_model_answers_arithmetic(embedded_model_dir: Path) -> None:
    engine = HFEngine.from_spec(str(embedded_model_dir), dtype="fp32", device="cpu")
    assert engine.use_lean  # SmolLM2 is a Llama: the fast path is the one under test
    question = [{"role": "user", "content": "What is 2 + 3? Answer with the number only."}]
    prompt = chat_prompt_ids(engine.tokenizer, question)
    [[greedy]] = engine.generate([prompt], SamplingParams(temperature=0, max_new_tokens=24))
    assert "5" in greedy.text, greedy.text
    assert greedy.finish_reason == "eos"  # a short answer, then <|im_end|>
    # The reported log-probs are the model's: teacher forcing the same tokens gives them back.
    [forced] = engine.logprobs([prompt], [greedy.token_ids])
    assert greedy.logprobs == pytest.approx(forced, abs=1e-4)
    # Samples stop at a newline when asked to, and the n samples share one prefill.
    [samples] = engine.generate([prompt], SamplingParams(n=4, temperature=0.7, max_new_tokens=24,
                                                        stop=("\n",), seed=0))
    assert len(samples) == 4
    assert all(c.finish_reason in ("stop", "eos", "length") for c in samples)
    assert all("\n" not in engine.tokenizer.decode(c.token_ids[:-1]) for c in samples)  # none before the last token
