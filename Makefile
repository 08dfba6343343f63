# newswatch — two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/newswatch.yaml

.PHONY: run test lint typecheck pytest bench clean venv venv-run

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the project metadata changes. `make run` needs only the
# runtime dependencies; `make test` (and lint, bench) adds the dev extras.
$(VENV)/.installed-run: pyproject.toml $(BIN)/activate
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed: pyproject.toml $(BIN)/activate
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

venv-run: $(VENV)/.installed-run
venv: $(VENV)/.installed

run: venv-run
	$(BIN)/newswatch run --config $(CONFIG)

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/pytest

test: lint typecheck pytest

bench: venv
	$(BIN)/python benchmarks/poll.py
	$(BIN)/python benchmarks/match.py
	$(BIN)/python benchmarks/config.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
