# One venv, created on first use. Its stamp re-installs when pyproject.toml (or setup.py)
# changes, and records the interpreter that made the venv ("path version"): asking for
# another one (PYTHON=python3.12) rebuilds the venv with it, so a venv made by a wrong
# Python (3.10, whose install failed) is never reused. Without PYTHON, a working venv is kept.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MADE_BY := $(VENV)/.interpreter
HOST   ?= 127.0.0.1
PORT   ?= 8080
SEED   ?= 0
TIME_SCALE ?= 10
SCENARIO ?=
STORE  ?=
PROCESSES ?=
# Given on the command line or in the environment (not the defaults above)?
given = $(filter command environment,$(firstword $(origin $(1))))
# A SCENARIO's own seed and time scale hold unless SEED= or TIME_SCALE= is given
SERVE_ARGS = --host $(HOST) --port $(PORT) $(if $(SCENARIO),--scenario $(SCENARIO) \
  $(if $(call given,SEED),--seed $(SEED)) $(if $(call given,TIME_SCALE),--time-scale $(TIME_SCALE)),\
  --seed $(SEED) --time-scale $(TIME_SCALE)) $(if $(STORE),--store $(STORE)) \
  $(if $(PROCESSES),--processes $(PROCESSES))
# "path version" of $(PYTHON); it exits 1 when that Python is older than the package allows
IDENTIFY := import sys; print(sys.executable, sys.version.split()[0]); sys.exit(sys.version_info < (3, 11))
# Was PYTHON given (command line or environment), or is it the default?
ASKED  := $(call given,PYTHON)

.PHONY: venv serve test redis-server chromium lint typecheck import-contracts conformance clean fuzz bench soak FORCE

# Rewritten only when the venv is (re)made, so that only then is the stamp out of date. A
# working venv is kept when PYTHON was not given (the default python3 may be too old for it).
$(MADE_BY): FORCE
	@if [ -z "$(ASKED)" ] && [ -f $(STAMP) ] && [ -x $(BIN)/python ]; then \
	  [ -f $@ ] || { echo "an unrecorded Python" > $@ && touch -r $(STAMP) $@; }; exit 0; fi; \
	want=$$($(PYTHON) -c '$(IDENTIFY)') || { \
	  if [ -n "$$want" ]; then echo "make: $(PYTHON) is Python $${want##* }: 3.11 or newer is needed"; \
	  else echo "make: $(PYTHON) did not run: a Python 3.11 or newer is needed"; fi >&2; \
	  echo "make: give one with PYTHON=, e.g. make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }; \
	have=$$(cat $@ 2>/dev/null || echo "an unrecorded Python"); \
	if [ -x $(BIN)/python ] && [ "$$have" = "$$want" ]; then exit 0; fi; \
	if [ -d $(VENV) ]; then echo "$(VENV) was made by $$have: remaking it with $$want"; fi; \
	rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && echo "$$want" > $@

$(STAMP): pyproject.toml $(wildcard setup.py) $(MADE_BY)
	@echo "installing nanobanana-mock and its dependencies into $(VENV) with $$(cat $(MADE_BY)) (about a minute the first time)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[test,fast]'
	@touch $(STAMP)

venv: $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m nanobanana_mock $(strip $(SERVE_ARGS))

# Lint first: CI runs `make test` (.ci/run), so the rules the tools check hold there too.
# The store's tests run against a real Redis (tests/redis_server.py starts its own): Debian's
# redis-server is installed first if it is missing, as `make bench` installs wrk.
# The tests run on every core (pytest-xdist; WORKERS=1 runs them in one process).
WORKERS ?= auto
test: lint redis-server chromium
	$(BIN)/python -m pytest $(if $(filter 1,$(WORKERS)),,-n $(WORKERS) --dist worksteal)

redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server from Debian's packages (the store's tests need it)"; \
	  apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q redis-server; }; }

# The dashboard's tests drive Debian's chromium headless (Playwright, pointed at the system
# browser: nothing is downloaded): installed first if it is missing.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium from Debian's packages (the dashboard's tests need it)"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium; }; }

fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --max-examples $(or $(EXAMPLES),100) --seed $(SEED)

# The conformance suite against a fresh in-process mock, all three providers.
conformance: $(STAMP)
	$(BIN)/nanobanana-conformance --target mock

bench: $(STAMP) redis-server
	@command -v wrk >/dev/null || { echo "installing wrk from Debian's packages"; \
	  apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk; }; }
	$(BIN)/python bench/run.py

soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(or $(SECONDS),120) $(if $(STORE),--store $(STORE))

# ruff, mypy --strict, the import contracts and no lines shared by two provider modules. Each says one line when clean; all of them run,
# so one pass shows every problem, and a failure ends with the steps that failed.
lint: $(STAMP)
	@failed=; \
	$(BIN)/ruff check . || failed="$$failed, ruff check"; \
	$(BIN)/ruff format --check . || failed="$$failed, ruff format (run $(BIN)/ruff format .)"; \
	$(BIN)/python tools/typecheck.py || failed="$$failed, mypy --strict"; \
	$(BIN)/python tools/import_contracts.py || failed="$$failed, import contracts"; \
	$(BIN)/python tools/provider_duplicates.py || failed="$$failed, provider duplicates"; \
	if [ -n "$$failed" ]; then echo "make lint FAILED: $${failed#, }" >&2; exit 1; fi

# mypy --strict on all product code, under its import names (tools/typecheck.py says how)
typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

# who may import whom: pyproject.toml [tool.importlinter] (tools/import_contracts.py says how)
import-contracts: $(STAMP)
	$(BIN)/python tools/import_contracts.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info

FORCE:
