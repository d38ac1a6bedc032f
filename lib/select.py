"""The paper's hyperparameter selection (sec. 3), from run records to Tables 1 and 2.

Every run records, after every epoch n, validation and test accuracy and spikes. A
*point* is one (run, epoch): its sigma0 and n are the hyperparameters "sigma0" and
"Train. Epochs" of the tables. For each seed:

    reference  = best validation accuracy over the baseline's points
    candidates = a method's points with  val_accuracy >= reference - tolerance
    selected   = the candidate with the fewest validation spikes

    Table 1: tolerance = 0     (no increase in validation error)
    Table 2: tolerance = 0.01  (at most one percentage point more validation error)

and the selected point's *test* accuracy and spikes are reported. The baseline row
follows the same rule over the baseline's own epochs. Selection never reads a test
number. Ties (equal validation spikes) are broken, deterministically, by higher
validation accuracy, then smaller sigma0, then the earlier epoch. A method with no
candidate gets a row that says so. Several seeds: the rule runs per seed (each seed
against its own baseline); `summarise` then gives the mean and standard deviation.
"""

from __future__ import annotations

import math

import pandas as pd

from .schedules import NAMES

TOLERANCES = {"table1": 0.0, "table2": 0.01}
EPS = 1e-9  # accuracies are k / n: absorbs the rounding of `reference - tolerance`
TIE_BREAK = (["val_spikes", "val_accuracy", "sigma0", "epoch"], [True, False, True, True])
NO_POINT = "no point within tolerance"
NO_BASELINE = "no baseline run for this seed"


def points(records) -> pd.DataFrame:
    """One row per (run, epoch) of complete records: the hyperparameters and the metrics."""
    rows = []
    for record in records:
        p = record["params"]
        for e in record["epochs"]:
            rows.append({
                "run_id": record.get("run_id", ""),
                "schedule": p["schedule"],
                "sigma0": 0.0 if p["schedule"] == "baseline" else p["sigma0"],
                "seed": p["seed"],
                **{k: e[k] for k in ("epoch", "val_accuracy", "val_spikes", "test_accuracy", "test_spikes")},
                "val_spikes_per_layer": e["val_spikes_per_layer"],
                "test_spikes_per_layer": e["test_spikes_per_layer"],
            })
    columns = ["run_id", "schedule", "sigma0", "seed", "epoch", "val_accuracy", "val_spikes",
               "test_accuracy", "test_spikes", "val_spikes_per_layer", "test_spikes_per_layer"]
    return pd.DataFrame(rows, columns=columns)


def select(pts: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """The selected point per (schedule, seed), in registry order; see the module docstring.

    Columns: those of `points`, plus `reference` (the seed's best baseline validation
    accuracy) and `note` (empty, or why no point was selected).
    """
    rows = []
    for seed in sorted(pts["seed"].unique()):
        of_seed = pts[pts["seed"] == seed]
        baseline = of_seed[of_seed["schedule"] == "baseline"]
        reference = baseline["val_accuracy"].max() if len(baseline) else math.nan
        for schedule in (s for s in NAMES if s in set(of_seed["schedule"])):
            mine = of_seed[of_seed["schedule"] == schedule]
            ok = mine[mine["val_accuracy"] >= reference - tolerance - EPS]
            if len(ok):
                best = ok.sort_values(TIE_BREAK[0], ascending=TIE_BREAK[1], kind="stable").iloc[0]
                rows.append({**best.to_dict(), "reference": reference, "note": ""})
            else:
                note = NO_BASELINE if math.isnan(reference) else NO_POINT
                rows.append({"schedule": schedule, "seed": seed, "reference": reference, "note": note})
    return pd.DataFrame(rows, columns=[*pts.columns, "reference", "note"])


def spike_reduction(selected: pd.DataFrame) -> pd.Series:
    """1 - test spikes / the same seed's selected baseline test spikes (NaN without one)."""
    base = selected[selected["schedule"] == "baseline"].set_index("seed")["test_spikes"]
    return 1 - selected["test_spikes"] / selected["seed"].map(base)


def summarise(selected: pd.DataFrame) -> pd.DataFrame:
    """One row per schedule: the selected sigma0s and epochs, mean and sd over seeds.

    sd is the sample standard deviation (NaN for one seed); `seeds` counts the seeds
    with a selected point, `notes` joins the notes of those without.
    """
    frame = selected.assign(spike_reduction=spike_reduction(selected))
    rows = []
    for schedule, group in frame.groupby("schedule", sort=False):
        chosen = group[group["note"] == ""]
        rows.append({
            "schedule": schedule,
            "seeds": len(chosen),
            "sigma0": list(chosen["sigma0"]),
            "epoch": [int(e) for e in chosen["epoch"]],
            **{f"{k}_{stat}": getattr(chosen[k].astype(float), stat)()
               for k in ("test_accuracy", "test_spikes", "spike_reduction") for stat in ("mean", "std")},
            "notes": "; ".join(sorted(set(group["note"]) - {""})),
        })
    stats = [f"{k}_{stat}" for k in ("test_accuracy", "test_spikes", "spike_reduction") for stat in ("mean", "std")]
    return pd.DataFrame(rows, columns=["schedule", "seeds", "sigma0", "epoch", *stats, "notes"])


def collapsed(pts: pd.DataFrame) -> pd.DataFrame:
    """Runs whose last epoch has no validation spike at all: every hidden layer silent."""
    last = pts.sort_values("epoch").groupby("run_id", sort=False).tail(1)
    dead = last[last["val_spikes"] == 0]
    first = pts[pts["val_spikes"] == 0].groupby("run_id")["epoch"].min().rename("silent_from_epoch")
    columns = ["run_id", "schedule", "sigma0", "seed", "val_accuracy"]
    return dead[columns].join(first, on="run_id").reset_index(drop=True)


def per_layer(selected: pd.DataFrame) -> dict:
    """Schedule -> its selected points' test spikes per hidden layer, averaged over seeds."""
    chosen = selected[selected["note"] == ""]
    return {
        schedule: [math.fsum(layer) / len(group) for layer in zip(*group["test_spikes_per_layer"], strict=True)]
        for schedule, group in chosen.groupby("schedule", sort=False)
    }
