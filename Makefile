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

PROFILE ?= paper
RESULTS_DIR ?= results
# JOBS=N runs N trainings at once (as does make -j N); each then gets cores / N torch threads.
JOBS ?=
SWEEP := $(BIN)/python -m lib.sweep --results $(RESULTS_DIR)
RESULTS := $(RESULTS_DIR)/$(PROFILE)
# reproduce has made (or, given -o, skipped) install already; make does not pass -o down.
SUBMAKE = $(MAKE) --no-print-directory -o $(VENV)/.installed PROFILE=$(PROFILE) RESULTS_DIR=$(RESULTS_DIR)

# The ablation study of issue 7 (params/$(STUDY).yaml; lib/study.py): its own runs and figures.
STUDY ?= ablations
STUDYCLI := $(BIN)/python -m lib.study --results $(RESULTS_DIR)
STUDYMAKE = $(MAKE) --no-print-directory -o $(VENV)/.installed STUDY=$(STUDY) RESULTS_DIR=$(RESULTS_DIR)

.PHONY: help install test lint clean reproduce runs tables ablations study-runs study-report

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=smoke|quick|paper (default paper: all of it), JOBS=N (parallel runs),"
	@echo "             STUDY=ablations (the study file of make ablations)"

install: $(VENV)/.installed ## create .venv/ with every dependency, lib installed editable

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

test: install ## run the test suite (needs CIFAR-10: CIFAR10_DIR, or ../shared/data/cifar10)
	$(BIN)/python -m pytest

reproduce: install ## train the runs of params/PROFILE.yaml lacking a complete record (JOBS=N or -j N: in parallel), then tables
	@$(SWEEP) check $(PROFILE) >/dev/null
	@$(SWEEP) prune $(PROFILE)
	-@$(SUBMAKE) -k $(if $(JOBS),-j$(JOBS)) runs
	@$(SUBMAKE) tables
	@$(SWEEP) status $(PROFILE)

# A run's record.json appears (atomically) only once the run is complete, so make's
# "file exists" is exactly "run complete": finished runs are skipped, others (re)run.
ifneq ($(filter runs,$(MAKECMDGOALS)),)
RECORDS := $(shell $(SWEEP) records $(PROFILE))
endif
runs: $(RECORDS) ## train the runs of PROFILE that lack a complete record (used by reproduce)

$(RESULTS)/%/record.json:
	$(SWEEP) run $(PROFILE) $*

tables: install ## Tables 1-2 and the figures of PROFILE into figures/PROFILE/, from its records (never trains)
	mkdir -p $(RESULTS)
	$(BIN)/papermill --log-level WARNING notebooks/tables.ipynb $(RESULTS)/tables.ipynb -p profile $(PROFILE) -p results_dir $(RESULTS_DIR)

ablations: install ## the ablation study params/STUDY.yaml (issue 7): train missing runs (JOBS=N), then notebooks/ablations.ipynb -> figures/STUDY/
	@$(STUDYCLI) check $(STUDY) >/dev/null
	@$(STUDYCLI) prune $(STUDY)
	-@$(STUDYMAKE) -k $(if $(JOBS),-j$(JOBS)) study-runs
	@$(STUDYMAKE) study-report
	@$(STUDYCLI) status $(STUDY)

ifneq ($(filter study-runs,$(MAKECMDGOALS)),)
STUDY_RECORDS := $(shell $(STUDYCLI) records $(STUDY))
endif
study-runs: $(STUDY_RECORDS) ## train the runs of STUDY that lack a complete record (used by ablations)

# $* is VARIANT/RUN-ID: a study's record exists iff its run is complete, as for reproduce.
$(RESULTS_DIR)/$(basename $(notdir $(STUDY)))/%/record.json:
	$(STUDYCLI) run $(STUDY) $*

study-report: install ## the ablation notebook of STUDY from its records (never trains): figures/STUDY/
	mkdir -p $(RESULTS_DIR)/$(basename $(notdir $(STUDY)))
	$(BIN)/papermill --log-level WARNING notebooks/ablations.ipynb $(RESULTS_DIR)/$(basename $(notdir $(STUDY)))/ablations.ipynb -p study $(STUDY) -p results_dir $(RESULTS_DIR)

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
