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


# --- LiveCodeBench: four problems written here in the hub's layout (code_generation_lite) -------

def lcb_row(qid: str, content: str, date: str, difficulty: str, public: list[tuple[str, str]],
            private: list[tuple[str, str]], *, func_name: str | None = None, starter: str = "") -> dict:
    """A code_generation_lite row: test cases as JSON text, the private ones packed the way the
    hub packs them, base64(zlib(pickle(JSON text)))."""
    import base64
    import json
    import pickle
    import zlib

    kind = "functional" if func_name else "stdin"

    def tests(pairs: list[tuple[str, str]]) -> str:
        return json.dumps([{"input": i, "output": o, "testtype": kind} for i, o in pairs])

    return {"question_title": qid, "question_content": content, "platform": "leetcode" if func_name else "atcoder",
            "question_id": qid, "contest_id": "c1", "contest_date": date, "starter_code": starter,
            "difficulty": difficulty, "public_test_cases": tests(public),
            "private_test_cases": base64.b64encode(zlib.compress(pickle.dumps(tests(private)))).decode(),
            "metadata": json.dumps({"func_name": func_name} if func_name else {})}


LCB_ROWS = {
    "test.jsonl": [
        lcb_row("abc001_a", "Read two integers A and B and print A + B.", "2023-05-20T00:00:00", "easy",
                [("1 2\n", "3\n")], [("10 20\n", "30\n"), ("-5 5\n", "0\n")]),
        lcb_row("2824", "Return the indices of the two numbers of nums that add up to target.",
                "2023-07-01T00:00:00", "medium", [("[2,7,11,15]\n9", "[0, 1]")], [("[3,2,4]\n6", "[1, 2]")],
                func_name="twoSum", starter="class Solution:\n    def twoSum(self, nums: List[int], target: int) "
                                            "-> List[int]:\n        "),
        lcb_row("abc002_b", "Read an integer N and print N / 2 with any number of decimals.",
                "2024-03-02T00:00:00", "easy", [("3\n", "1.50\n")], [("1\n", "0.5\n")]),
    ],
    "test2.jsonl": [
        lcb_row("2900", "Return the number of distinct values of nums.", "2024-09-10T00:00:00", "hard",
                [("[1,1,2]", "2")], [("[5]", "1"), ("[1,2,3,3]", "3")], func_name="distinct",
                starter="class Solution:\n    def distinct(self, nums: List[int]) -> int:\n        "),
    ],
}


@pytest.fixture
def livecodebench_data(tmp_path: Path) -> Path:
    """A data dir whose livecodebench/ holds test.jsonl (3 problems) and test2.jsonl (1)."""
    import json

    folder = tmp_path / "lcb-data" / "livecodebench"
    folder.mkdir(parents=True)
    for name, rows in LCB_ROWS.items():
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder.parent
