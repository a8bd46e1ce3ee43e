# Set-up and everyday commands. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install install-test run test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ".[test]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## run: the main job on the bundled defaults (every case x random, thorough, info-gain doctors)
run: install
	$(VENV)/bin/clinic-env run $(ARGS)

## test: the whole test suite
test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(PY) -m ruff check clinic_env tests benchmarks examples

bench: install-test
	$(PY) benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) runs build dist *.egg-info .pytest_cache .ruff_cache
