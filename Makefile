# The two commands of the README: `make demo` and `make test`. Both set the machine up first.
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo test lint patterns-check unit bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(BIN)/python scripts/demo.py

lint: setup
	$(BIN)/ruff check qubinode_recovery_provider dags plugins tests bench scripts
	$(BIN)/ruff format --check qubinode_recovery_provider dags plugins tests bench scripts

patterns-check: setup
	$(BIN)/qubinode-recovery patterns check

test: setup lint patterns-check
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python bench/bench_analyzer.py
	$(BIN)/python bench/accuracy.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
