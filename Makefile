# vptlab: two set-up commands.  `make demo` runs the offline miniature study; `make test` runs lint + tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vptlab-installed

.PHONY: demo test lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch/torchvision first, at the versions that lie on this workplace's disk (any torch >= 2.1 works).
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

test: lint
	$(BIN)/python -m pytest -q -m "not gpu"

demo: $(STAMP)
	$(BIN)/vptlab demo

clean:
	rm -rf $(VENV) demo-out .pytest_cache .ruff_cache
