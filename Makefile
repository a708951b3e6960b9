# Two commands for a fresh machine with Python 3.11+ and make:
#   make reproduce   the paper's study, both modes, report under results/paper
#   make test        the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: reproduce test install install-test bench clean readme-table

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

reproduce: install
	$(BIN)/sgdlab reproduce --out results/paper

test: install-test
	$(BIN)/python -m pytest -q

readme-table: install
	$(BIN)/python scripts/readme_results.py results/paper --readme README.md

bench: install-test
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) results .pytest_cache
