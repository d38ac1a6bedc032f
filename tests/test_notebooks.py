"""The notebooks end to end on the smoke profile: one run through papermill, the sweep's
resume, then the tables notebook: a row per method (the regulariser baselines included),
every table and figure file; and a two-seed profile through the tables: mean ± sd.

To keep this quick, only one run goes through papermill (the sweep's own `execute`); the
other runs of the grid get their records from `lib.train.run` in-process, with the very
parameters the sweep would pass, into the very place the sweep would put them.
"""

import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
import yaml

from lib import record, schedules, sweep, train
from lib.export import archive
from lib.params import Params
from lib.sweep import profiles

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def complete_in_process(profile, results, skip=()):
    """Every run of `profile` but `skip` trained by `lib.train.run`, with the sweep's parameters
    and into the sweep's place (see the module docstring)."""
    for run in profile.runs:
        if run not in skip:
            params = sweep.run_params(profile, run, results)
            train.run(**{**params, "progress": False, "output_dir": str(sweep.run_dir(profile, run, results))})


def tables(profile, results, figures, tmp_path):
    """Execute the tables notebook on `profile` (a name or a YAML path)."""
    papermill.execute_notebook(
        str(NOTEBOOKS / "tables.ipynb"), str(tmp_path / "tables.ipynb"), progress_bar=False, cwd=str(REPO),
        parameters={"profile": str(profile), "results_dir": str(results), "figures_dir": str(figures)},
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, cifar10_dir, cache_dir):
    """The smoke profile's results folder with every run complete; (profile, results)."""
    os.environ.setdefault("CIFAR10_DIR", cifar10_dir)
    os.environ.setdefault("SNN_CACHE_DIR", cache_dir)
    results = tmp_path_factory.mktemp("results")
    profile = profiles.load_profile("smoke")
    through_papermill = profile.run("linear-s1e-06-seed0")
    sweep.execute(profile, through_papermill, results)
    complete_in_process(profile, results, skip=(through_papermill,))
    return profile, results


@pytest.mark.slow
def test_a_run_through_papermill_leaves_notebook_and_complete_record(smoke):
    profile, results = smoke
    folder = sweep.run_dir(profile, profile.run("linear-s1e-06-seed0"), results)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "record.json", "train.ipynb"]  # partial/ is gone
    rec = record.load(folder / "record.json", complete=True)
    assert rec["params"]["train_size"] == 256
    assert rec["params"]["threads"] == 1 and len(rec["epochs"]) == 2
    executed = nbformat.read(folder / "train.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


@pytest.mark.slow
def test_a_run_without_a_validation_split_goes_through_the_notebook(tmp_path, cifar10_dir, cache_dir):
    """val_fraction 0 (the retrain on all 50,000 images): the run's own cells read its record without
    selecting anything, so the notebook ends and the sweep moves the record up."""
    os.environ.setdefault("CIFAR10_DIR", cifar10_dir)
    os.environ.setdefault("SNN_CACHE_DIR", cache_dir)
    path = tmp_path / "final.yaml"
    path.write_text("epochs: 1\nnum_steps: 2\ntrain_size: 128\ntest_size: 64\nval_fraction: 0.0\n"
                    "stop_collapsed: false\ngrid:\n  seeds: [0]\n  sigma0:\n    baseline: []\n")
    profile = profiles.load_profile(str(path))
    done = sweep.execute(profile, profile.runs[0], tmp_path / "results")
    rec = record.load(done, complete=True)
    assert rec["data"]["val"] == 0 and rec["epochs"][0]["val_accuracy"] is None


@pytest.mark.slow
def test_the_notebooks_tutorial_cells_leave_the_run_as_lib_train_makes_it(smoke, tmp_path):
    """The tutorial forwards a batch and takes an optimiser step before `train.run`: the run itself must
    not see it (it seeds its own network and generators), so its rows equal an in-process run's."""
    profile, results = smoke
    run = profile.run("linear-s1e-06-seed0")
    through_notebook = record.load(sweep.run_dir(profile, run, results) / "record.json", complete=True)
    params = {**sweep.run_params(profile, run, results), "progress": False, "output_dir": str(tmp_path / "run")}
    in_process = train.run(**params)
    timing = ("seconds", "train_seconds")
    assert [{k: v for k, v in e.items() if k not in timing} for e in through_notebook["epochs"]] == \
        [{k: v for k, v in e.items() if k not in timing} for e in in_process["epochs"]]


@pytest.mark.slow
def test_second_sweep_trains_nothing(smoke):
    profile, results = smoke
    assert [sweep.state(profile, r, results) for r in profile.runs] == ["complete"] * len(profile.runs)
    records = [sweep.run_dir(profile, r, results) / "record.json" for r in profile.runs]
    before = [p.stat().st_mtime_ns for p in records]
    make = ["make", "-C", str(REPO), "-o", ".venv/.installed", "runs", "PROFILE=smoke", f"RESULTS_DIR={results}"]
    assert subprocess.run([*make, "-q"]).returncode == 0  # -q: 0 iff every record is up to date
    done = subprocess.run(make, capture_output=True, text=True, check=True)
    assert "lib.sweep run" not in done.stdout
    assert [p.stat().st_mtime_ns for p in records] == before


@pytest.mark.slow
def test_tables_notebook_writes_a_row_per_method_and_every_figure_the_same_from_an_archive(smoke, tmp_path):
    profile, results = smoke
    figures = tmp_path / "figures"
    tables("smoke", results, figures, tmp_path)
    out = figures / "smoke"
    for table in ("table1", "table2"):
        md = (out / f"{table}.md").read_text()
        for label in ("CrossEntropy (baseline)", "C.E. + sigma_constant", "C.E. + sigma_alternate_linear",
                      "C.E. + upper bound (Zenke & Vogels 2021)", "C.E. + layer-weighted spikeCount"):
            assert f"| {label} |" in md
        assert md.count("\n| ") == 2 + len(schedules.NAMES)  # header, rule, a row per method
        assert f"{len(profile.runs)} of {len(profile.runs)} runs" in md and "Paper: accuracy (%)" in md
        assert "| Avg. SynOps | Energy (µJ) |" in md and "non-spiking network: 651,720 MACs, 3.00 µJ" in md
        numbers = pd.read_csv(out / f"{table}.csv")
        assert len(numbers) == len(schedules.NAMES)
        assert (numbers["test_synops_mean"] >= numbers["test_spikes_mean"]).all()  # every spike feeds >= 10
        assert "\\begin{tabular}" in (out / f"{table}.tex").read_text()
    figures_made = {
        "sparsity_accuracy_validation", "accuracy_vs_spikes_selected", "schedule_weights",
        "spikes_per_layer_table1", "spikes_per_layer_table2", "training_curves", "pareto_fronts",
        "spike_rasters", "firing_rates",
    }
    for name in figures_made:
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0
    assert (out / "collapsed_runs.csv").exists()
    edges = pd.read_csv(out / "search_edges.csv")  # the smoke grids are 1-2 values: every choice is at an end
    assert list(edges.columns) == ["schedule", "seed", "sigma0", "edge", "grid", "table"] and len(edges)
    front = pd.read_csv(out / "pareto_fronts.csv")
    assert set(front["schedule"]) == set(schedules.NAMES) and front["test_energy_pj"].gt(0).all()
    published = pd.read_csv(out / "models" / "index.csv")  # the selected networks, each loadable
    assert set(published["table"]) == {"table1", "table2"} and set(published["schedule"]) >= {"baseline"}
    for name in [*published["state_dict"].dropna(), *published["nir"].dropna()]:
        assert (out / "models" / name).is_file()

    # a sweep's archive (lib.export.archive: records and the selected checkpoints) makes the same files
    archive.pack(profile, results, tmp_path / "records")
    tables("smoke", tmp_path / "records", tmp_path / "again", tmp_path)
    made = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert made == sorted(p.relative_to(tmp_path / "again" / "smoke") for p in (tmp_path / "again").rglob("*")
                          if p.is_file())
    for name in made:
        assert (out / name).read_bytes() == (tmp_path / "again" / "smoke" / name).read_bytes(), name


@pytest.mark.slow
def test_two_seeds_give_mean_and_sd_through_the_tables(tmp_path, cifar10_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", cifar10_dir)
    monkeypatch.setenv("SNN_CACHE_DIR", cache_dir)
    smoke = profiles.load_profile("smoke").params
    values = {**smoke, "epochs": 1, "train_size": 128, "val_size": 128, "test_size": 128,
              "grid": {"seeds": [0, 1], "sigma0": {"baseline": [], "constant": [1.0e-6]}}}
    path = tmp_path / "two_seeds.yaml"
    path.write_text(yaml.safe_dump(values))
    profile, results, figures = profiles.load_profile(str(path)), tmp_path / "results", tmp_path / "figures"
    complete_in_process(profile, results)
    tables(path, results, figures, tmp_path)
    out = figures / "two_seeds"
    numbers = pd.read_csv(out / "table1.csv").set_index("schedule")
    assert numbers["seeds"].tolist() == [2, 2]
    assert numbers.loc["constant", "test_accuracy_std"] > 0  # two seeds, two splits: not the same accuracy
    md = (out / "table1.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| C.E. + sigma_constant |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    accuracy, spikes, reduction, synops, energy, seeds = cells[3:9]
    assert all(" ± " in c for c in (accuracy, spikes, reduction, synops, energy)) and seeds == "2"
    # our stable rule beside the paper's, the stability file and the provenance, from the same two seeds
    for name in ("table1", "table2"):
        assert (out / f"{name}.md").read_text().split("\n\n")[0].endswith("Seeds: 2 (0, 1).")  # the paper's too
        ours = (out / f"{name}_robust.md").read_text()
        assert "Ours, not the paper's rule" in ours and "4 runs on 1 machine" in ours
        robust = pd.read_csv(out / f"{name}_robust.csv").set_index("schedule")
        # one (sigma0, epoch) for both seeds: 1 epoch, so epoch 1 twice
        assert robust["seeds"].tolist() == [2, 2] and robust.loc["constant", "epoch"] == "[1, 1]"
    stability = pd.read_csv(out / "selection_stability.csv")
    # one sparse schedule and its total, per rule and draw: Table 1 and 2 x (paper, ours, ours leave-one-out) x 2
    assert len(stability) == 12 and set(stability["pairs"]) == {1}
    assert "Seeds: 2 (0, 1)." in (out / "provenance.md").read_text()
    assert set(pd.read_csv(out / "pareto_fronts.csv")["seed"]) == {0, 1}


def test_committed_notebooks_are_clean_and_parameters_match_params():
    fields = list(Params.__dataclass_fields__)
    for name in ("train.ipynb", "tables.ipynb", "ablations.ipynb", "final.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert all("def " not in c.source and "class " not in c.source for c in code), f"{name} defines code"
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    cells = nbformat.read(NOTEBOOKS / "train.ipynb", as_version=4).cells
    params_cell = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    names = [line.split(":")[0] for line in params_cell.source.splitlines()]
    assert names == [*fields, "grid", "factors", "resources"]  # the profile keys papermill -f passes along
    defaults = {}
    exec(params_cell.source, {}, defaults)
    assert Params.from_namespace(defaults) == Params()
    assert all("  # " in line for line in params_cell.source.splitlines())


@pytest.mark.slow
def test_a_failing_run_is_reported_with_its_notebook(tmp_path, cifar10_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", cifar10_dir)
    monkeypatch.setenv("SNN_CACHE_DIR", cache_dir)
    smoke = profiles.load_profile("smoke").params
    profile = profiles.parse_profile("failing", {**smoke, "epochs": 1, "grid": {
        "seeds": [0], "sigma0": {"baseline": [], "constant": [1e300]}}})  # an infinite loss: diverges
    run = profile.run("constant-s1e+300-seed0")
    with pytest.raises(sweep.RunFailed, match=r"loss is inf.*read .*partial/train.ipynb"):
        sweep.execute(profile, run, tmp_path)
    assert sweep.state(profile, run, tmp_path) == "failed"
    assert "loss is inf" in sweep.report(sweep.collect(profile, tmp_path))[0]
