"""The real embedded model: conversion cache reuse and a sensible answer (slow; CI runs it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from genius import models


@pytest.mark.slow
def test_cached_folder_is_reused_and_loads_fast(embedded_model_dir: Path) -> None:
    assert models.is_complete_model_dir(embedded_model_dir)
    stamp = (embedded_model_dir / models.COMPLETE_MARKER).stat().st_mtime
    t0 = time.perf_counter()
    model, tok = models.load_model("smollm2-135m", dtype="fp32", device="cpu")
    assert time.perf_counter() - t0 < 60  # a guard against re-converting, not a speed target
    assert (embedded_model_dir / models.COMPLETE_MARKER).stat().st_mtime == stamp
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert tok.chat_template and "<|im_start|>" in tok.decode(models.chat_prompt_ids(tok, [{"role": "user", "content": "hi"}]))
