# The commands of the README: `make demo` and `make test` (both set the machine up first), and
# `make standalone` (airflow standalone with the provider and every DAG loaded, for the UI).
# `make test-fast` runs the tests that start no Airflow, PostgreSQL or scheduler (see docs/testing.md).
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

# One xdist worker per CPU, each test file whole on one worker (its module fixtures -- an Airflow
# deployment, a DAG-run batch -- are made once), the files that start Airflow or PostgreSQL handed out
# first (tests/conftest.py orders them); a line when each file starts and ends, the reasons of every
# non-pass, the 15 slowest tests at the end. pytest exit code 5 (nothing collected) is a broken suite:
# say so and fail. A plain `pytest` (no -n) prints pytest's usual line per file.
PYTEST = $(BIN)/python -m pytest -p no:cacheprovider -n auto --dist loadfile --no-loadscope-reorder \
	--durations=15
define run_pytest
	@$(PYTEST) $(1) || { rc=$$?; if [ $$rc -eq 5 ]; then \
		echo "make: pytest collected no tests (exit code 5): the suite is broken, not green" >&2; fi; \
		exit $$rc; }
endef

.PHONY: setup demo standalone test test-fast lint patterns-check unit bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(BIN)/python scripts/demo.py

standalone: setup
	@$(BIN)/python scripts/standalone.py

# mypy checks the files and with the strictness of [tool.mypy] in pyproject.toml (the core strict).
lint: setup
	$(BIN)/ruff check qubinode_recovery_provider dags plugins tests bench scripts
	$(BIN)/ruff format --check qubinode_recovery_provider dags plugins tests bench scripts
	$(BIN)/mypy

patterns-check: setup
	$(BIN)/qubinode-recovery patterns check

test: setup lint patterns-check
	$(call run_pytest,)

test-fast: setup
	$(call run_pytest,-m "not slow")

bench: setup
	$(BIN)/python bench/accuracy.py --overlap
	$(BIN)/python bench/bench_model.py
	$(BIN)/python bench/bench_analyzer.py
	$(BIN)/python bench/bench_notifier.py
	$(BIN)/python bench/bench_redaction.py
	$(BIN)/python bench/bench_task_log_capture.py
	$(BIN)/python bench/bench_shadow.py
	$(BIN)/python bench/bench_ui.py
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
