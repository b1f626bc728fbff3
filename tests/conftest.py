"""Shared fixtures: a tiny random Llama folder (fast tests) and the embedded model (slow tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama (hidden 64) with a byte-level ChatML tokenizer, as an HF folder."""
    from genius.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path):
    from genius.engines.hf import HFEngine

    return HFEngine.from_spec(str(tiny_model_dir), dtype="fp32", device="cpu")


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The real embedded model (converted once into the genius cache). Slow tests only."""
    from genius.models import EMBEDDED, convert_embedded

    return convert_embedded(EMBEDDED["smollm2-135m"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the project checkout)")
    return SHARED_DATA
