"""The study's outcomes on hand-made records, checkable by hand; and its notebook."""

import json
import math

import factories
import nbformat
import pandas as pd
import pytest
import yaml
from factories import epoch_row
from matplotlib.figure import Figure

from lib import sweep
from lib.analysis import ablations
from lib.sweep import profiles

STUDY = {
    "epochs": 2,
    "grid": {"seeds": [0], "sigma0": {"baseline": [], "constant": [1.0, 10.0], "linear": [1.0, 3.0]}},
    "factors": {"lr": {"x": {"lr": 0.01}}},
}
# (val_accuracy, val_spikes) per epoch; spikes per layer split 4:2:1:1 over lif1-lif4, and all in lif1
# (lif2-lif4 silent: `lib.analysis.select.silent`) at 11 spikes or fewer
RUNS = {
    ("base", "baseline", 0.0): [(0.50, 1000), (0.55, 1200)],  # reference 0.55 at 1,200 spikes
    ("base", "constant", 1.0): [(0.56, 600), (0.54, 300)],  # Table 1: ep 1 (-50 %); Table 2: ep 2 (-75 %)
    ("base", "constant", 10.0): [(0.30, 50), (0.10, 5)],  # silent (< 1 % of 1,200) from epoch 2: collapsed
    ("base", "linear", 1.0): [(0.55, 900), (0.56, 960)],  # Table 1: ep 1 (-25 %); last epochs: -20 %
    ("base", "linear", 3.0): [(0.10, 11), (0.50, 500)],  # silent in epoch 1, recovered
    ("lr-x", "baseline", 0.0): [(0.40, 800), (0.45, 800)],  # its linear and constant runs are missing
}


def layers(spk):
    return [float(spk), 0.0, 0.0, 0.0] if spk <= 11 else [0.5 * spk, 0.25 * spk, 0.125 * spk, 0.125 * spk]


def record(schedule, sigma0, rows, params):
    epochs = [epoch_row(n, acc, float(spk), val_spikes_per_layer=layers(spk),
                        test_spikes_per_layer=[0.75 * spk, 0.25 * spk + 1, 0.0, 0.0],
                        # records carry SynOps and energy too (lib.energy); the study does not judge them
                        val_synops=100.0 * spk, test_synops=100.0 * spk, test_energy_pj=90.0 * spk,
                        test_synops_per_layer=[75.0 * spk, 25.0 * spk, 0.0, 0.0])
              for n, (acc, spk) in enumerate(rows, start=1)]
    return factories.record(schedule, sigma0, epochs, params=params)


@pytest.fixture
def made(tmp_path):
    path = tmp_path / "abl.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    s = profiles.load_profile(str(path))
    results = tmp_path / "results"
    for (variant, schedule, sigma0), rows in RUNS.items():
        run = profiles.Run(schedule, sigma0, 0, variant)
        folder = sweep.run_dir(s, run, results)
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(record(schedule, sigma0, rows, s.variant(variant).params)))
    return s, results, path


def collected_points(s, results):
    return ablations.points(sweep.collect(s, results))


def test_collect_reads_complete_records_and_names_the_missing(made):
    s, results, _ = made
    collected = sweep.collect(s, results)
    pts, missing = ablations.points(collected), [m["run_id"] for m in collected.missing]
    assert missing == ["lr-x/constant-s1-seed0", "lr-x/constant-s10-seed0", "lr-x/linear-s1-seed0",
                       "lr-x/linear-s3-seed0"]
    assert len(pts) == 12 and set(pts["variant"]) == {"base", "lr-x"}
    assert set(pts[pts["variant"] == "lr-x"]["factor"]) == {"lr"}


def test_reductions_against_the_variants_own_baseline_per_rule(made):
    pts = collected_points(*made[:2])
    out = ablations.outcomes(pts).set_index(["variant", "rule", "schedule"])
    assert out.loc[("base", "table1", "baseline"), "val_spikes"] == 1200
    assert out.loc[("base", "table1", "constant"), "reduction"] == pytest.approx(0.5)
    assert out.loc[("base", "table1", "constant"), "epoch"] == 1
    assert out.loc[("base", "table2", "constant"), "reduction"] == pytest.approx(0.75)
    assert out.loc[("base", "table1", "linear"), "reduction"] == pytest.approx(0.25)
    assert out.loc[("base", "final_epoch", "linear"), "reduction"] == pytest.approx(0.2)
    assert out.loc[("base", "final_epoch", "constant"), "note"] == "no point within tolerance"
    assert out.loc[("base", "table1", "constant"), "collapsed_runs"] == "1 of 2"
    assert out.loc[("base", "table1", "constant"), "collapse_from"] == 10.0
    assert math.isnan(out.loc[("base", "table1", "linear"), "collapse_from"])
    assert out.loc[("lr-x", "table1", "baseline"), "val_spikes"] == 800  # fewest spikes among equal accuracy


def test_runs_show_where_collapse_begins(made):
    pts = collected_points(*made[:2])
    per_run = ablations.runs(pts).set_index("run_id")
    assert per_run.loc["base/constant-s10-seed0", "collapsed"]
    assert per_run.loc["base/constant-s10-seed0", "first_silent_epoch"] == 2
    assert not per_run.loc["base/linear-s1-seed0", "collapsed"]
    assert math.isnan(per_run.loc["base/linear-s1-seed0", "first_silent_epoch"])
    assert per_run.loc["base/linear-s3-seed0", "first_silent_epoch"] == 1  # silent, then recovered
    assert not per_run.loc["base/linear-s3-seed0", "collapsed"]


def test_table_layers_and_figures(made):
    pts = collected_points(*made[:2])
    out = ablations.outcomes(pts)
    frame = ablations.table(out, "table1")
    base = frame[frame["label"] == "default"].iloc[0]
    assert base["baseline"] == "1200 sp, 55.0 %"
    assert base["constant"] == "-50 % (σ0 1, ep 1)"
    assert base["constant collapses"] == "1 of 2, from σ0 10"
    per_layer = ablations.layer_reductions(out, pts).set_index("schedule")
    assert per_layer.loc["constant", "lif1"] == pytest.approx(0.5) and per_layer.loc["constant", "baseline lif1"] == 600
    assert isinstance(ablations.reductions_figure(out), Figure)
    assert isinstance(ablations.sparsity_accuracy_figure(pts), Figure)


@pytest.mark.slow
def test_the_notebook_reads_records_only_and_writes_figures(made, tmp_path):
    import papermill

    _, results, path = made
    figures = tmp_path / "figures"
    papermill.execute_notebook(
        str(sweep.REPO / "notebooks" / "ablations.ipynb"), str(tmp_path / "out.ipynb"),
        parameters={"profile": str(path), "results_dir": str(results), "figures_dir": str(figures)},
        progress_bar=False, cwd=str(sweep.REPO),
    )
    out = figures / "abl"
    for name in ("ablation_reductions", "ablation_sparsity_accuracy"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0
    assert "-50 %" in (out / "ablations_table1.md").read_text()
    assert (out / "ablation_costs.csv").read_text().startswith("variant,factor,label,runs,epochs")
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells


def test_several_seeds_give_a_table_row_per_seed(made):
    pts = collected_points(*made[:2])
    second = pts.assign(seed=1, val_spikes=pts["val_spikes"] * 2, run_id=pts["run_id"] + "-1")
    out = ablations.outcomes(pd.concat([pts, second], ignore_index=True))
    frame = ablations.table(out, "table1")
    base = frame[frame["label"] == "default"].set_index("seed")
    assert base.loc[0, "baseline"] == "1200 sp, 55.0 %" and base.loc[1, "baseline"] == "2400 sp, 55.0 %"
    assert base.loc[1, "constant"] == "-50 % (σ0 1, ep 1)"  # both seeds' spikes doubled: the same reduction


def test_runs_take_the_last_epoch_whatever_the_row_order():
    # rows as a resumed or merged record may hold them: epoch 3 first; silent in epochs 2 and 3
    row = {"variant": "base", "factor": "base", "label": "default", "schedule": "linear", "sigma0": 1.0, "seed": 0,
           "run_id": "base/linear-s1-seed0"}
    pts = pd.DataFrame([{**row, "epoch": 3, "val_accuracy": 0.1, "val_spikes": 5.0, "val_spikes_per_layer": [5, 0]},
                        {**row, "epoch": 1, "val_accuracy": 0.4, "val_spikes": 9.0, "val_spikes_per_layer": [6, 3]},
                        {**row, "epoch": 2, "val_accuracy": 0.2, "val_spikes": 7.0, "val_spikes_per_layer": [7, 0]}])
    got = ablations.runs(pts).iloc[0]
    assert (got["epochs"], got["last_val_accuracy"], got["last_val_spikes"]) == (3, 0.1, 5.0)
    assert (got["first_silent_epoch"], got["collapsed"]) == (2.0, True)


def test_costs_per_variant_from_the_records_timings(made):
    s, results, _ = made
    collected = sweep.collect(s, results)
    for rec in collected.records:  # base: 4 + 4 s of training per epoch, lr-x: 10 s (and 12 s in all)
        slow = rec["run_id"].startswith("lr-x/")
        for e in rec["epochs"]:
            e["train_seconds"], e["seconds"] = (10.0, 12.0) if slow else (4.0 + e["epoch"] - 1, 6.0)
        rec["wall_seconds"] = 3600.0
    got = ablations.costs(collected).set_index("variant")
    assert got.loc["base", ["runs", "epochs"]].tolist() == [5, 10]
    assert got.loc["base", "train_seconds_per_epoch"] == 4.5 and got.loc["base", "run_hours"] == 5.0
    assert got.loc["lr-x", "seconds_per_epoch"] == 12.0 and got.loc["lr-x", "relative"] == pytest.approx(10 / 4.5)
    del collected.records[0]["epochs"][0]["train_seconds"]  # an older record without timings is left out
    assert ablations.costs(collected).set_index("variant").loc["base", "train_seconds_per_epoch"] == 5.0
