# Explicitly trained spiking sparsity: every command of the artifact. `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
# An active conda environment (`conda activate explicit-sparsity`, see environment.yml) is used as
# it is; otherwise (or in conda's base) everything is installed into .venv/.
ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
VENV := $(CONDA_PREFIX)
else
VENV := .venv
endif
BIN := $(VENV)/bin
# Decoded CIFAR-10 is cached here (git-ignored), never inside the data folder.
export SNN_CACHE_DIR ?= $(CURDIR)/results/cache
# Run everything against this checkout's `lib`, also from a git worktree sharing a venv.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

# A name in params/ or a path to a YAML file; its runs live in RESULTS_DIR/<file name without .yaml>/.
PROFILE ?= quick
RESULTS_DIR ?= results
# JOBS=N runs N trainings at once (as does make -j N); each then gets cores / N torch threads.
JOBS ?=
SWEEP := $(BIN)/python -m lib.sweep --results $(RESULTS_DIR)
# EXECUTOR=local trains through make's file targets on this machine; EXECUTOR=ray runs each
# pending run as a Ray task on the cluster of RAY_ADDRESS (or a local Ray started for the sweep).
EXECUTOR ?= local
# CPUS_PER_RUN / GPUS_PER_RUN: what a Ray task asks for (default: the profile's threads or cores / JOBS,
# and its resources.gpus_per_run, else 0.25 GPU on cuda).
RAYRUN := $(BIN)/python -m lib.sweep.ray_executor --results $(RESULTS_DIR) $(if $(JOBS),--jobs $(JOBS)) \
	$(if $(CPUS_PER_RUN),--cpus-per-run $(CPUS_PER_RUN)) $(if $(GPUS_PER_RUN),--gpus-per-run $(GPUS_PER_RUN))
RESULTS := $(RESULTS_DIR)/$(basename $(notdir $(PROFILE)))
# reproduce has made (or, given -o, skipped) install already; make does not pass -o down.
SUBMAKE = $(MAKE) --no-print-directory -o $(VENV)/.installed PROFILE=$(PROFILE) RESULTS_DIR=$(RESULTS_DIR)

.PHONY: help install test lint clean clean-results reproduce runs tables ablations compare refine pack unpack docs

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=smoke|quick|paper|ablations|path.yaml (default quick), JOBS=N (parallel runs),"
	@echo "             RESULTS_DIR=results (where runs live), EXECUTOR=local|ray (RAY_ADDRESS: the cluster,"
	@echo "             CPUS_PER_RUN, GPUS_PER_RUN: what each Ray task asks for)"

install: $(VENV)/.installed ## create .venv/ with every dependency (or use the active conda env), lib editable

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev,nir,ray]'
	@# sinabs (NIR round trip, lib.export.nir_export) pins an older nir in its metadata: installed on top
	$(BIN)/pip install --quiet --no-deps sinabs==3.1.3 pbr==7.1.3
	@# build the fused CPU kernel once (lib.kernels; without a compiler: a warning, the PyTorch path)
	$(BIN)/python -m lib.kernels
	touch $@

test: install ## run the test suite (needs CIFAR-10: CIFAR10_DIR, or ../shared/data/cifar10)
	$(BIN)/python -m pytest

reproduce: install ## train the runs of PROFILE lacking a complete record (JOBS=N: in parallel; EXECUTOR=ray: on a Ray cluster), then tables
	@$(BIN)/python -m lib.sweep.ray_executor --check-executor $(EXECUTOR)
	@$(SWEEP) check $(PROFILE) >/dev/null
	@$(SWEEP) prune $(PROFILE)
	-@$(if $(filter ray,$(EXECUTOR)),$(RAYRUN) $(PROFILE),$(SUBMAKE) -k $(if $(JOBS),-j$(JOBS)) runs)
	-@$(SUBMAKE) tables
	@$(SWEEP) status $(PROFILE)

ablations: ## the ablation study: make reproduce PROFILE=ablations (figures/ablations/)
	@$(MAKE) --no-print-directory reproduce PROFILE=$(if $(filter command line,$(origin PROFILE)),$(PROFILE),ablations)

# A run's record.json appears (atomically) only once the run is complete, so make's
# "file exists" is exactly "run complete": finished runs are skipped, others (re)run.
# $* is RUN-ID, or VARIANT/RUN-ID for a profile with factors.
ifneq ($(filter runs,$(MAKECMDGOALS)),)
RECORDS := $(shell $(SWEEP) records $(PROFILE))
endif
runs: $(RECORDS) ## train the runs of PROFILE that lack a complete record (used by reproduce)

$(RESULTS)/%/record.json:
	$(SWEEP) run $(PROFILE) $*

tables: install ## Tables 1-2 and figures of PROFILE into figures/<profile>/ from its records (never trains)
	$(SWEEP) tables $(PROFILE)

# A sweep's state small enough to commit (lib.export.archive): complete records and selected checkpoints.
ARCHIVE ?= records

pack: install ## merge RESULTS_DIR's complete runs of PROFILE into ARCHIVE/<profile>/ (default records/): records, selected checkpoints
	@$(SWEEP) pack $(PROFILE) --archive $(ARCHIVE)

unpack: install ## copy ARCHIVE/<profile>/'s complete runs into RESULTS_DIR where a run has none: a sweep goes on from there
	@$(SWEEP) unpack $(PROFILE) --archive $(ARCHIVE)

refine: install ## the next stage of PROFILE's sigma0 search from its records (validation only): grid lines to paste
	@$(SWEEP) refine $(PROFILE)

compare: install ## after make reproduce: are figures/<profile>'s tables within the measured spread of the committed ones? (exit 1 if not)
	$(BIN)/python -m lib.analysis.compare figures/$(basename $(notdir $(PROFILE))) HEAD:figures/$(basename $(notdir $(PROFILE)))

# The executed notebooks a reader sees without running anything (committed: docs/*.ipynb).
TUTORIAL := -p schedule linear -p sigma0 2.0e-4 -p train_size 10000 -p val_size 2000 -p test_size 2000 \
	-p epochs 8 -p threads 1 -p progress False -p output_dir results/tutorial
docs: install ## executed notebooks: docs/tutorial.ipynb (an 8-epoch run on 10,000 images), docs/tables-paper.ipynb (records/paper)
	rm -rf results/tutorial
	$(BIN)/papermill --no-progress-bar notebooks/train.ipynb docs/tutorial.ipynb $(TUTORIAL)
	@# the tables step's files go to results/docs/ (the committed figures/paper/ stays as it is)
	$(BIN)/python -m lib.sweep --results records --figures results/docs tables paper
	sed "s|$(CURDIR)/||g" records/paper/tables.ipynb > docs/tables-paper.ipynb

lint: install ## check style with ruff
	$(BIN)/ruff check lib tests

clean: ## remove caches (keeps trained runs in RESULTS_DIR, .venv/ and committed figures)
	rm -rf results/cache .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-results: ## DELETE every trained run in RESULTS_DIR (hours of work; asks first)
	@read -p "delete $(RESULTS_DIR)/ and every run in it? [y/N] " answer && [ "$$answer" = y ] && rm -rf $(RESULTS_DIR)

# ---- speed: benchmarks/step.py, see benchmarks/README.md --------------------------------
.PHONY: bench

$(VENV)/.bench: pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench ## time a training step once: lib vs plain PyTorch, snnTorch, SpikingJelly, Norse, dense bound
	$(BIN)/python benchmarks/step.py
