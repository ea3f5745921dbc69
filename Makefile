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
WORKERS := --study $(STUDY) $(if $(JOBS),--jobs $(JOBS)) $(if $(THREADS),--threads $(THREADS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

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
	$(BIN)/python -m helpers.pipeline --data-dir $(DATA_DIR) --artefacts $(ARTEFACTS) $(WORKERS)

plan: $(BIN)/.installed ## List the jobs make report would train, with their estimated CPU time, and run nothing
	$(BIN)/python -m helpers.pipeline --data-dir $(DATA_DIR) --artefacts $(ARTEFACTS) $(WORKERS) --plan

# The small run: what the README shows a newcomer first (tests/test_readme.py runs it as written).
# Retraining in batches of 32, so that gradual pruning's one epoch on these few images still
# holds two pruning steps (in batches of 256 it would prune once: fine-tuning under another name).
SMALL := -p data_dir $(DATA_DIR)
SMALL_PRUNING := -y "ks: [0, 50, 90]" -y "target_ks: []" -y "tune_ks: [50, 90]" \
	-y "tune_lrs: [0.001, 0.008]" -p recovery_batch_size 32 -y "control_ks: [90]"
small: $(BIN)/.installed ## Rerun the five notebooks one by one with papermill, small (seed 0, 1,000 images, 1 epoch, levels 0, 50, 90), into runs/
	$(BIN)/papermill notebooks/01_data_exploration.ipynb runs/01_data_exploration.ipynb $(SMALL)
	$(BIN)/papermill notebooks/02_training.ipynb runs/02_training.ipynb $(SMALL) -y "seeds: [0]" -p train_size 1000 -p test_size 500 -p validation_size 200 -p epochs 1
	$(BIN)/papermill notebooks/03_weight_pruning.ipynb runs/03_weight_pruning.ipynb $(SMALL) $(SMALL_PRUNING)
	$(BIN)/papermill notebooks/04_unit_pruning.ipynb runs/04_unit_pruning.ipynb $(SMALL) $(SMALL_PRUNING)
	$(BIN)/papermill notebooks/05_comparison.ipynb runs/05_comparison.ipynb -p quick_benchmark True -p check_targets False
	$(BIN)/jupyter nbconvert --to html --no-input --template mnist-report runs/0*.ipynb

LAB_PORT ?= 8888
lab: $(BIN)/.installed ## Open the notebooks in JupyterLab (kernel "MNIST pruning (helpers, .venv)"), on http://localhost:$(LAB_PORT)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(LAB_PORT) --ServerApp.ip=127.0.0.1 --allow-root

test: $(BIN)/.installed ## Run the test suite (unit tests and a smoke run of every notebook)
	$(BIN)/pytest

benchmark: $(BIN)/.installed ## Measure speed and size of the pruned models, and what workers buy, alone; writes results/mnist/efficiency*.{csv,json} and workers.json
	$(BIN)/python -m helpers.benchmark --checkpoint $(ARTEFACTS)/mnist/dense-seed0.pt --out results/mnist/efficiency.csv
	$(BIN)/python -m helpers.scaling --checkpoint-dir $(ARTEFACTS)/mnist --data-dir $(DATA_DIR) --out results/mnist/workers.json

clean: ## Remove the virtual environment and cached artefacts (not the committed report)
	rm -rf $(VENV) $(ARTEFACTS) .pytest_cache
