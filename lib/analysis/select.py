"""The paper's hyperparameter selection (sec. 3), from run records to Tables 1 and 2.

Every run records, after every epoch n, validation and test accuracy and spikes. A
*point* is one (run, epoch): its sigma0 and n are the hyperparameters "sigma0" and
"Train. Epochs" of the tables. For each seed:

    reference  = best validation accuracy over the baseline's points
    candidates = a method's points with  val_accuracy >= reference - tolerance
    selected   = the candidate with the fewest validation spikes

    Table 1: tolerance = 0     (no increase in validation error)
    Table 2: tolerance = 0.01  (at most one percentage point more validation error)

and the selected point's *test* accuracy, spikes, SynOps and energy are reported. The
baseline row follows the same rule over the baseline's own epochs. Selection never reads
a test number. Ties (equal validation spikes) are broken, deterministically, by higher
validation accuracy, then smaller sigma0, then the earlier epoch. A method with no
candidate gets a row that says so. Several seeds: the rule runs per seed (each seed
against its own baseline); `summarise` then gives the mean and standard deviation.

Beyond the paper, `pareto_front` keeps, per schedule and seed, every point that no other
point beats on validation in both accuracy and spikes (the best trade-offs the sweep
found, instead of the one the tolerance picks), to be shown with their test numbers.
"""

from __future__ import annotations

import math

import pandas as pd

from ..record import silent as silent_layers
from ..schedules import NAMES

TOLERANCES = {"table1": 0.0, "table2": 0.01}
EPS = 1e-9  # accuracies are k / n: absorbs the rounding of `reference - tolerance`
TIE_BREAK = (["val_spikes", "val_accuracy", "sigma0", "epoch"], [True, False, True, True])
NO_POINT = "no point within tolerance"
NO_BASELINE = "no baseline run for this seed"
METRICS = ("epoch", "val_accuracy", "val_spikes", "test_accuracy", "test_spikes", "val_synops", "test_synops",
           "test_energy_pj", "val_spikes_per_layer", "test_spikes_per_layer", "test_synops_per_layer")
SUMMARISED = ("test_accuracy", "test_spikes", "spike_reduction", "test_synops", "test_energy_pj")


class NoValidationError(ValueError):
    """A record without a validation split given to a rule that chooses on validation."""


def require_validation(records) -> None:
    """NoValidationError naming the first record trained without a validation split
    (`val_fraction` 0, `data.val` 0): the rules choose on validation only, and choosing on its
    test numbers instead would report a choice made on the numbers it reports."""
    for record in records:
        if record["params"].get("val_fraction", 0.2) == 0 or (record.get("data") or {}).get("val") == 0:
            raise NoValidationError(
                f"record {record.get('run_id', '?')!r} has no validation split (val_fraction 0): the selection "
                "rules choose on validation only, never on test numbers; its test numbers belong beside a "
                "(sigma0, epoch) chosen on another sweep's validation (params/paper.yaml's, for example)")


def points(records, validation: bool = True) -> pd.DataFrame:
    """One row per (run, epoch) of complete records: the hyperparameters and the metrics.
    Records without a validation split are refused (`require_validation`); `validation=False`
    reads them, their val_* columns null, to report points chosen on another sweep's validation
    (`lib.analysis.report.final_tables`), never to select."""
    records = list(records)
    if validation:
        require_validation(records)
    rows = []
    for record in records:
        p = record["params"]
        for e in record["epochs"]:
            rows.append({
                "run_id": record.get("run_id", ""),
                "schedule": p["schedule"],
                "sigma0": 0.0 if p["schedule"] == "baseline" else p["sigma0"],
                "seed": p["seed"],
                **{k: e[k] for k in METRICS},
            })
    return pd.DataFrame(rows, columns=["run_id", "schedule", "sigma0", "seed", *METRICS])


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


def search_edges(selected: pd.DataFrame, pts: pd.DataFrame) -> pd.DataFrame:
    """Where a sigma0 search ran out of grid: the rows of `select` (one table, sparse schedules)
    whose choice has no neighbour on one side among the schedule's sigma0 values of that seed.

        largest    the selected sigma0 is the grid's largest: a larger one might cut more
        smallest   the selected sigma0 is the grid's smallest (the next one up lost accuracy)
        only       the grid has this one sigma0: nothing was searched
        no point   no sigma0 met the rule: even the smallest lost accuracy at every epoch

    Columns: schedule, seed, sigma0 (selected; NaN for "no point"), edge, grid (the sorted values).
    Empty when every choice has a neighbour on both sides: the search bracketed it."""
    rows = []
    for _, row in selected[selected["schedule"] != "baseline"].iterrows():
        mine = pts[(pts["schedule"] == row["schedule"]) & (pts["seed"] == row["seed"])]
        grid = sorted(float(v) for v in mine["sigma0"].unique())
        if row["note"]:
            edge = "no point"
        elif len(grid) == 1:
            edge = "only"
        elif row["sigma0"] == grid[0]:
            edge = "smallest"
        elif row["sigma0"] == grid[-1]:
            edge = "largest"
        else:
            continue
        rows.append({"schedule": row["schedule"], "seed": row["seed"],
                     "sigma0": math.nan if row["note"] else float(row["sigma0"]), "edge": edge, "grid": grid})
    return pd.DataFrame(rows, columns=["schedule", "seed", "sigma0", "edge", "grid"])


def _significant(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits - 1}e}")


def refinement(selected: pd.DataFrame, grid: dict, step: float = math.sqrt(2)) -> dict:
    """The next stage of a sigma0 search, from the first stage's selection (validation only):
    per sparse schedule, the values at `step` below and above every seed's choice (the smallest
    value of the grid, divided by `step`, for a seed with no point), rounded to 3 significant
    digits, that `grid` (schedule -> its sigma0 values) does not hold yet (within 1 %), sorted.

    On a 2x grid this adds the sqrt 2 neighbours on both sides of each choice; on a grid already in
    steps of sqrt 2 it adds only values past its edges (`search_edges`). A schedule with nothing to
    add is left out, so an empty dict means the search is complete at this step."""
    new: dict[str, set] = {}
    for _, row in selected[selected["schedule"] != "baseline"].iterrows():
        values = sorted(float(v) for v in grid.get(row["schedule"], []))
        if not values:
            continue
        around = [values[0] / step] if row["note"] else [row["sigma0"] / step, row["sigma0"] * step]
        for value in map(_significant, around):
            if all(abs(value - v) > 0.01 * v for v in values):
                new.setdefault(row["schedule"], set()).add(value)
    return {schedule: sorted(values) for schedule, values in new.items()}


def spike_reduction(selected: pd.DataFrame) -> pd.Series:
    """1 - test spikes / the same seed's selected baseline test spikes (NaN without one)."""
    base = selected[selected["schedule"] == "baseline"].set_index("seed")["test_spikes"]
    return 1 - selected["test_spikes"] / selected["seed"].map(base)


def summarise(selected: pd.DataFrame) -> pd.DataFrame:
    """One row per schedule: the selected sigma0s and epochs, and the mean and sd over seeds
    of each of SUMMARISED.

    sd is the sample standard deviation (NaN for one seed); `seeds` counts the seeds
    with a selected point, `notes` joins the notes of those without.
    """
    frame = selected.assign(spike_reduction=spike_reduction(selected))
    chosen = frame["note"] == ""
    # a noted row's numbers are masked (NaN), so the lists, means and sds count chosen rows only
    numbers = frame[["sigma0", "epoch", *SUMMARISED]].astype(float).where(chosen)
    groups = numbers.assign(schedule=frame["schedule"], chosen=chosen, note=frame["note"]).groupby(
        "schedule", sort=False)
    # pd.Series.mean/std, not "mean"/"std": groupby's own (compensated) sums differ from
    # Series' in the last bit, and the committed tables' CSVs carry every bit
    stats = {f"{k}_{stat}": (k, getattr(pd.Series, stat)) for k in SUMMARISED for stat in ("mean", "std")}
    summary = groups.agg(
        seeds=("chosen", "sum"),
        sigma0=("sigma0", lambda s: list(s.dropna())),
        epoch=("epoch", lambda s: [int(e) for e in s.dropna()]),
        **stats,
        notes=("note", lambda s: "; ".join(sorted(set(s) - {""}))),
    )
    return summary.reset_index()


def silent(pts: pd.DataFrame) -> pd.Series:
    """Per point: has a hidden layer not one validation spike? (`lib.record.silent`, the one
    collapse rule: a run *collapses* when its last epoch is silent.)"""
    return pts["val_spikes_per_layer"].map(silent_layers).astype(bool)


def collapsed(pts: pd.DataFrame) -> pd.DataFrame:
    """Runs whose last epoch is `silent`, with the first epoch one was, in registry order of the
    schedules, then by sigma0 and seed (so that adding other records never reorders the rows)."""
    quiet = silent(pts)
    last = pts.sort_values("epoch", kind="stable").groupby("run_id", sort=False).tail(1)
    dead = last[quiet.loc[last.index]]
    first = pts[quiet].groupby("run_id")["epoch"].min().rename("silent_from_epoch")
    columns = ["run_id", "schedule", "sigma0", "seed", "val_accuracy", "val_spikes"]
    rank = dead["schedule"].map({name: i for i, name in enumerate(NAMES)}).rename("rank")
    ordered = dead.join(rank).sort_values(["rank", "sigma0", "seed"], kind="stable")
    return ordered[columns].join(first, on="run_id").reset_index(drop=True)


def per_layer(selected: pd.DataFrame, column: str = "test_spikes_per_layer", stat: str = "mean") -> dict:
    """Schedule -> its selected points' `column` (a value per hidden layer), the mean or the
    sample sd ("std", NaN for one seed) over seeds."""
    chosen = selected[selected["note"] == ""]
    return {
        schedule: [getattr(pd.Series(layer, dtype=float), stat)() for layer in zip(*group[column], strict=True)]
        for schedule, group in chosen.groupby("schedule", sort=False)
    }


def pareto_front(pts: pd.DataFrame) -> pd.DataFrame:
    """The validation Pareto front of each (schedule, seed): the points no other point of it
    beats, i.e. none has higher-or-equal validation accuracy with fewer-or-equal validation
    spikes, better in at least one. Of points equal in both, one is kept: the first in the
    selection's TIE_BREAK order (smaller sigma0, then the earlier epoch).

    Walk the points from fewest spikes up (more accuracy first among equal spikes); a point
    is on the front iff its accuracy beats every point before it. Rows keep every column of
    `pts` (test numbers included, for showing the front on test), ordered by schedule
    (registry order), seed and validation spikes.
    """
    fronts = []
    for schedule in (s for s in NAMES if s in set(pts["schedule"])):
        for _, group in pts[pts["schedule"] == schedule].groupby("seed", sort=True):
            walk = group.sort_values(TIE_BREAK[0], ascending=TIE_BREAK[1], kind="stable")
            best_before = walk["val_accuracy"].cummax().shift(fill_value=-math.inf)
            fronts.append(walk[walk["val_accuracy"] > best_before])
    return pd.concat(fronts, ignore_index=True) if fronts else pts.iloc[:0]
