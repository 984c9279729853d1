# One venv, created on first use; a stamp re-installs when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080
SEED   ?= 0
TIME_SCALE ?= 10

.PHONY: venv serve test lint conformance clean fuzz bench

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,fast]'
	@touch $(STAMP)

venv: $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m nanobanana_mock --host $(HOST) --port $(PORT) --seed $(SEED) --time-scale $(TIME_SCALE)

test: $(STAMP)
	$(BIN)/python -m pytest

fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --max-examples $(or $(EXAMPLES),100) --seed $(SEED)

# The conformance suite against a fresh in-process mock, all three providers.
conformance: $(STAMP)
	$(BIN)/nanobanana-conformance --target mock

bench: $(STAMP)
	@command -v wrk >/dev/null || { echo "installing wrk from Debian's packages"; \
	  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk; }; }
	$(BIN)/python bench/run.py

soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(or $(SECONDS),120)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
