# meshgate — every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help install lint test test-fast demo clean

help:
	@echo "make demo   - install and run the gateway with demo upstreams"
	@echo "make test   - install, then ruff + mypy --strict + pytest"
	@echo "make lint   - ruff check, ruff format --check, mypy --strict"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meshgate needs Python >= 3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway discovery resilience tests
	$(VENV)/bin/ruff format --check gateway discovery resilience tests
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q

# Skips the multi-hundred-MiB transfer tests; for the edit-test loop only.
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"

demo: $(STAMP)
	$(PY) -m gateway.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
