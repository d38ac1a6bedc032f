"""The train notebook's parameters through real papermill executions: a name that is no
parameter stops the run before any work, naming it and the valid ones; a profile's own keys
(`-f params/<profile>.yaml` passes `grid` along) neither stop it nor raise papermill's warning."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lib.params import Params

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "train.ipynb"


def papermill(tmp_path, *args, **env):
    """`papermill notebooks/train.ipynb <tmp>/out.ipynb ARGS`, as a user runs it, from the repository."""
    return subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(tmp_path / "out.ipynb"), "--no-progress-bar", *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True,
    )


def test_a_misspelled_parameter_stops_the_notebook_naming_it_and_the_valid_ones(tmp_path):
    done = papermill(tmp_path, "-f", "params/smoke.yaml", "-p", "lerning_rate", "0.5",
                     "-p", "output_dir", str(tmp_path / "run"))
    assert done.returncode != 0
    fields = ", ".join(f.name for f in Params.__dataclass_fields__.values())
    assert f"ValueError: unknown parameter(s) lerning_rate; valid: {fields}, grid, factors, resources" in done.stderr
    assert not (tmp_path / "run").exists()  # stopped before any work: no record


@pytest.mark.slow
def test_a_profile_runs_without_a_warning_and_the_notebook_says_what_it_changed(tmp_path, cifar10_dir, cache_dir):
    run = tmp_path / "run"
    done = papermill(tmp_path, "-f", "params/smoke.yaml", "-p", "epochs", "1", "-p", "output_dir", str(run),
                     CIFAR10_DIR=cifar10_dir, SNN_CACHE_DIR=cache_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Passed unknown parameter" not in done.stderr  # papermill's warning for `grid` is gone
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "complete" and record["params"]["train_size"] == 256
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    printed = "".join(out.get("text", "") for cell in executed.cells for out in cell.get("outputs", []))
    assert "'epochs': 1" in printed and "'num_steps': 4" in printed and "'seed'" not in printed


@pytest.mark.slow
def test_a_run_that_collapses_stops_early_and_the_notebook_still_ends(tmp_path, cifar10_dir, cache_dir):
    """A run stopped as collapsed has no checkpoint of its planned last epoch: the notebook's
    last cells (spikes per layer, the raster) use the epoch it stopped at, so the executed
    notebook ends without an error and the sweep takes the record as finished."""
    run = tmp_path / "run"
    done = papermill(tmp_path, "-f", "params/smoke.yaml", "-p", "schedule", "constant", "-p", "sigma0", "1.0",
                     "-p", "epochs", "4", "-p", "output_dir", str(run),
                     CIFAR10_DIR=cifar10_dir, SNN_CACHE_DIR=cache_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "collapsed" and [e["epoch"] for e in record["epochs"]] == [1, 2]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert "load_checkpoint" in code[-1].source  # the raster of the last cell was drawn
    assert [out["output_type"] for out in code[-1].outputs] == ["display_data"]
