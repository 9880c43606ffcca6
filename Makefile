# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= gatewayz-data
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/gatewayz admin demo-key --data-dir $(DATA_DIR) --base-url http://$(HOST):$(PORT)
	$(BIN)/gatewayz serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	bash .ci/services
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: $(VENV)/.installed-test
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	bash .ci/services
	$(BIN)/python bench/run.py
	$(BIN)/python bench/replay.py
