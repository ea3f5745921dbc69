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

.DEFAULT_GOAL := help
.PHONY: help env report test benchmark clean

help: ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

env: $(BIN)/.installed ## Create the virtual environment and install the package

report: $(BIN)/.installed ## Run every notebook on MNIST and Fashion-MNIST and render the report (reports/, results/, figures/)
	$(BIN)/python -m helpers.pipeline --data-dir $(DATA_DIR) --artefacts $(ARTEFACTS)

test: $(BIN)/.installed ## Run the test suite (unit tests and a smoke run of every notebook)
	$(BIN)/pytest

benchmark: $(BIN)/.installed ## Measure speed and size of the pruned models alone; writes results/mnist/efficiency*.{csv,json}
	$(BIN)/python -m helpers.benchmark --checkpoint $(ARTEFACTS)/mnist/dense-seed0.pt --out results/mnist/efficiency.csv

clean: ## Remove the virtual environment and cached artefacts (not the committed report)
	rm -rf $(VENV) $(ARTEFACTS) .pytest_cache
