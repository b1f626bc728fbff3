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


class FakeOpenAI:
    """A local OpenAI-compatible endpoint on 127.0.0.1 (real HTTP, several calls at once):
    ``answer(body) -> (HTTP status, JSON reply)`` decides each reply; ``requests`` holds the
    request bodies and ``auths`` their Authorization headers, in arrival order."""

    def __init__(self, answer):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        self.auths: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.auths.append(self.headers.get("Authorization"))
                status, reply = answer(body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def openai_server():
    """``openai_server(answer)`` starts a FakeOpenAI; every one started is closed after the test."""
    started: list[FakeOpenAI] = []

    def start(answer) -> FakeOpenAI:
        started.append(FakeOpenAI(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()
