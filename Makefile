# One-command entry points. `make test` and `make demo` create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAUNCH := $(BIN)/accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no \
	--dynamo_backend no --num_cpu_threads_per_process 2

.PHONY: setup test demo lint bench mutants

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0  # the CPU build; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(LAUNCH) recipes/train_mvsa.py

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/bench_core.py

# Mutation testing of the core ([tool.mutmut] in pyproject.toml); slow, not run by CI. Two mutants at a time, each
# with one torch thread. Limit it with MUTANTS, e.g. `make mutants MUTANTS='mllm_balance.shapley*'`.
# Results stay in mutants/ (`mutmut results` lists survivors, `mutmut show NAME` prints one mutant's diff).
MUTANTS ?=
mutants: setup
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results
