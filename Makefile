# The commands of the README: `make demo` and `make test` (both set the machine up first), and
# `make standalone` (airflow standalone with the provider and every DAG loaded, for the UI).
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo standalone test lint patterns-check unit bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(BIN)/python scripts/demo.py

standalone: setup
	@$(BIN)/python scripts/standalone.py

lint: setup
	$(BIN)/ruff check qubinode_recovery_provider dags plugins tests bench scripts
	$(BIN)/ruff format --check qubinode_recovery_provider dags plugins tests bench scripts

patterns-check: setup
	$(BIN)/qubinode-recovery patterns check

test: setup lint patterns-check
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup
	$(BIN)/python bench/accuracy.py --split dev
	$(BIN)/python bench/accuracy.py --split heldout --overlap
	$(BIN)/python bench/bench_analyzer.py
	$(BIN)/python bench/bench_notifier.py
	$(BIN)/python bench/bench_shadow.py
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
