# Explicitly trained spiking sparsity: every command of the artifact. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Decoded CIFAR-10 is cached here (git-ignored), never inside the data folder.
export SNN_CACHE_DIR ?= $(CURDIR)/results/cache
# Run everything against this checkout's `lib`, also from a git worktree sharing a venv.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help install test lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv/ with every dependency, lib installed editable

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

test: install ## run the test suite (needs CIFAR-10: CIFAR10_DIR, or ../shared/data/cifar10)
	$(BIN)/python -m pytest

lint: install ## check style with ruff
	$(BIN)/ruff check lib tests

clean: ## remove results and caches (keeps .venv/ and committed figures)
	rm -rf results .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---- speed (issue 4): benchmarks/step.py, see README "Speed" ----------------------------
.PHONY: bench

$(VENV)/.bench: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench ## time a training step: lib vs plain PyTorch, snnTorch, SpikingJelly, Norse, dense bound
	$(BIN)/python benchmarks/step.py
