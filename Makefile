# How much of a trained MNIST classifier can be pruned: the report and its tests.
# `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
ARTEFACTS ?= artefacts
# A folder of the four original .gz IDX files, used when $(DATA_DIR) lacks the data
# (e.g. MNIST_ARCHIVE=../shared/datasets/MNIST/raw); unset: torchvision downloads it.
MNIST_ARCHIVE ?=
export MNIST_ARCHIVE DATA_DIR
# Worker processes that train (empty: as many as the cores hold jobs of THREADS); results do not depend on it.
JOBS ?=
# Torch threads of every training job (empty: the notebooks' default, 1); it changes the last bits.
THREADS ?=
# A Dask scheduler's address (tcp://host:8786) whose workers train instead (README); empty: local workers.
SCHEDULER ?=
# The study: report (what fits a 2-core machine in two hours) or extended (the papers' settings everywhere; README, Cost).
STUDY ?= report
WORKERS := $(if $(JOBS),--jobs $(JOBS)) $(if $(THREADS),--threads $(THREADS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

.DEFAULT_GOAL := help
.PHONY: help env report plan small lab test benchmark clean

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/python -m helpers.kernel
	touch $@

env: $(BIN)/.installed ## Create the virtual environment and install the package

report: $(BIN)/.installed ## Run every notebook on MNIST and Fashion-MNIST and render the report (reports/, results/, figures/)
	$(BIN)/python -m helpers.pipeline --data-dir $(DATA_DIR) --artefacts $(ARTEFACTS) --study $(STUDY) $(WORKERS)

plan: $(BIN)/.installed ## List the jobs make report would train, with their estimated CPU time, and run nothing
	$(BIN)/python -m helpers.pipeline --data-dir $(DATA_DIR) --artefacts $(ARTEFACTS) --study $(STUDY) $(WORKERS) --plan

# The small run: what the README shows a newcomer first (tests/test_readme.py runs it as written),
# make report's own pipeline on the smoke study (helpers.pipeline.SMOKE), MNIST only, into runs/.
small: $(BIN)/.installed ## make report in small, MNIST only (seeds 0 and 1, 1,000 images, 1 epoch, levels 0, 50, 90, 99, every strategy): pages, landing page, results into runs/
	$(BIN)/python -m helpers.pipeline --small --data-dir $(DATA_DIR) $(WORKERS)

LAB_PORT ?= 8888
lab: $(BIN)/.installed ## Open the notebooks in JupyterLab (kernel "MNIST pruning (helpers, .venv)"), on http://localhost:$(LAB_PORT)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(LAB_PORT) --ServerApp.ip=127.0.0.1 --allow-root

test: $(BIN)/.installed ## Run the test suite (unit tests, and the README's commands: make small runs every notebook)
	$(BIN)/pytest

benchmark: $(BIN)/.installed ## Measure speed and size of the pruned models, and what workers buy, alone; writes results/mnist/efficiency*.{csv,json} and workers.json
	$(BIN)/python -m helpers.benchmark --checkpoint $(ARTEFACTS)/mnist/dense-seed0.pt --out results/mnist/efficiency.csv
	$(BIN)/python -m helpers.scaling --checkpoint-dir $(ARTEFACTS)/mnist --data-dir $(DATA_DIR) --out results/mnist/workers.json

clean: ## Remove the virtual environment and cached artefacts (not the committed report)
	rm -rf $(VENV) $(ARTEFACTS) .pytest_cache
