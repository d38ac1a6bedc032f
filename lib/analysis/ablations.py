"""Where explicit spike-count training works: the outcomes of a profile with factors (`lib.sweep.profiles`).

Every variant of a study is judged against its *own* baseline (the same setting, cross
entropy only) with the paper's selection rule (`lib.analysis.select`), on validation only:

    reference  = best validation accuracy of the variant's baseline, over its epochs
    selected   = per schedule, the (sigma0, epoch) point with the fewest validation spikes
                 among those with val_accuracy >= reference - tolerance
    reduction  = 1 - val_spikes(selected) / val_spikes(the baseline's own selected point)

    table1       tolerance 0     (no loss of validation accuracy), any epoch
    table2       tolerance 0.01  (within one point), any epoch
    final_epoch  tolerance 0, but only the last epoch of every run, the baseline's too:
                 the rules above may pair the baseline's best epoch with any epoch of a
                 sparse run; this one compares equal training lengths

A run *collapses* by the one rule of `lib.analysis.select.silent`: its last epoch has a hidden layer
without one validation spike (the readout is then the same for every image, and the
surrogate passes no gradient back). `runs` gives, per run, the first silent epoch and
whether it recovered, and `outcomes` the smallest sigma0 of each schedule that collapsed
(where collapse begins). With several seeds, every table row and figure panel is per seed.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import select
from .plots import PALETTE

RULES = {"table1": (0.0, False), "table2": (0.01, False), "final_epoch": (0.0, True)}  # tolerance, last epoch only
RULE_NAMES = {"table1": "no val. loss (Table 1)", "table2": "<= 1 pt val. loss (Table 2)",
              "final_epoch": "no val. loss, last epochs"}


def points(collected) -> pd.DataFrame:
    """Every (run, epoch) of the complete records of a profile with factors (a
    `lib.sweep.Collected`), with its run's variant, factor and label."""
    pts = select.points(collected.records)
    variants = {v.name: v for v in collected.profile.variants}
    of_run = pts["run_id"].map({r.id: variants[r.variant] for r in collected.profile.runs})
    return pts.assign(variant=of_run.map(lambda v: v.name), factor=of_run.map(lambda v: v.factor),
                      label=of_run.map(lambda v: v.label))


def runs(pts: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its last epoch's validation numbers, the first `lib.analysis.select.silent` epoch
    (NaN if none) and whether it is still silent at the end (collapsed)."""
    quiet = select.silent(pts)
    last = pts.loc[pts.groupby("run_id", sort=False)["epoch"].idxmax()]
    first_silent = pts["epoch"].where(quiet).astype(float).groupby(pts["run_id"]).min()
    per_run = last.assign(
        epochs=last["epoch"].astype(int), last_val_accuracy=last["val_accuracy"], last_val_spikes=last["val_spikes"],
        first_silent_epoch=last["run_id"].map(first_silent), collapsed=quiet.loc[last.index])
    columns = ["variant", "factor", "label", "schedule", "sigma0", "seed", "run_id", "epochs",
               "last_val_accuracy", "last_val_spikes", "first_silent_epoch", "collapsed"]
    return per_run[columns].reset_index(drop=True)


def outcomes(pts: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, rule, schedule, seed) with the selected point and its reduction
    against the variant's own baseline (module docstring), in the variants' order."""
    per_run = runs(pts)
    rows = []
    for variant, vpts in pts.groupby("variant", sort=False):
        first = vpts.iloc[0]
        for rule, (tolerance, last_only) in RULES.items():
            chosen = vpts
            if last_only:
                last = vpts.groupby("run_id")["epoch"].transform("max")
                chosen = vpts[vpts["epoch"] == last]
            selected = select.select(chosen, tolerance)
            base = selected[selected["schedule"] == "baseline"].set_index("seed")
            for _, row in selected.iterrows():
                seed = row["seed"]
                base_spikes = base["val_spikes"].get(seed, math.nan) if len(base) else math.nan
                mine = per_run[(per_run["variant"] == variant) & (per_run["schedule"] == row["schedule"])
                               & (per_run["seed"] == seed)]
                dead = mine[mine["collapsed"]]
                rows.append({
                    "variant": variant, "factor": first["factor"], "label": first["label"], "rule": rule,
                    "schedule": row["schedule"], "seed": seed, "sigma0": row["sigma0"], "epoch": row["epoch"],
                    "val_accuracy": row["val_accuracy"], "reference": row["reference"],
                    "val_spikes": row["val_spikes"], "baseline_val_spikes": base_spikes,
                    "reduction": 1 - row["val_spikes"] / base_spikes if base_spikes else math.nan,
                    "note": row["note"],
                    "collapsed_runs": f"{len(dead)} of {len(mine)}",
                    "collapse_from": dead["sigma0"].min() if len(dead) else math.nan,
                    "test_accuracy": row["test_accuracy"], "test_spikes": row["test_spikes"],
                })
    return pd.DataFrame(rows)


def _cell(row) -> str:
    if row["note"]:
        return "none"
    if row["schedule"] == "baseline":
        return f"{row['val_spikes']:.0f} sp, {100 * row['val_accuracy']:.1f} %"
    return f"{-100 * row['reduction']:+.0f} % (σ0 {row['sigma0']:g}, ep {row['epoch']:.0f})"


def table(out: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Variants x schedules for one rule: the baseline's validation spikes and accuracy, each
    schedule's spike change (negative = fewer), its sigma0 and epoch, and where it collapses.
    With several seeds, a row per variant and seed."""
    mine = out[out["rule"] == rule]
    index = ["factor", "label", *(["seed"] if mine["seed"].nunique() > 1 else [])]
    cells = mine.assign(cell=mine.apply(_cell, axis=1))
    frame = cells.pivot_table(index=index, columns="schedule", values="cell", aggfunc="first", sort=False)
    schedules = [s for s in select.NAMES if s in frame.columns]
    frame = frame[schedules]
    for schedule in schedules[1:]:
        col = mine[mine["schedule"] == schedule].set_index(index)
        frame[f"{schedule} collapses"] = [
            f"{col.loc[i, 'collapsed_runs']}" + (f", from σ0 {col.loc[i, 'collapse_from']:g}"
                                                 if not math.isnan(col.loc[i, "collapse_from"]) else "")
            if i in col.index else "" for i in frame.index]
    return frame.reset_index().fillna("")


def reductions_figure(out: pd.DataFrame, rules=("table1", "table2")):
    """Per variant (grouped by factor), the largest spike reduction of each of its schedules under
    each rule; 'none' where no point qualified, a cross with the smallest sigma0 that collapsed.
    The first seed's; with several, the panel titles say which."""
    from matplotlib.patches import Patch

    mine = out[(out["schedule"] != "baseline") & (out["seed"] == out["seed"].min())]
    variants = list(dict.fromkeys(mine["variant"]))
    present = {v: [s for s in select.NAMES if s in set(mine[mine["variant"] == v]["schedule"])] for v in variants}
    slots, ticks, y = {}, [], 0.0
    for v in variants:  # one bar slot per schedule the variant has, a gap between variants
        ticks.append(y + (len(present[v]) - 1) / 2)
        for schedule in present[v]:
            slots[v, schedule] = y
            y += 1
        y += 0.6
    fig, axes = plt.subplots(1, len(rules), figsize=(5.5 * len(rules), 0.28 * y + 1.2), sharey=True, squeeze=False)
    for ax, rule in zip(axes[0], rules, strict=True):
        for (variant, schedule), pos in slots.items():
            row = mine[(mine["variant"] == variant) & (mine["rule"] == rule) & (mine["schedule"] == schedule)].iloc[0]
            value = 0.0 if row["note"] else 100 * row["reduction"]
            ax.barh(pos, value, height=0.85, color=PALETTE[schedule])
            text = "none" if row["note"] else f"{value:.0f} %"
            if not math.isnan(row["collapse_from"]):
                text += f"  ✗ σ0≥{row['collapse_from']:g}"
            ax.text(max(value, 0) + 1, pos, text, va="center", fontsize=7)
        ax.axvline(60, color="grey", linestyle=":", linewidth=1)
        seeds = sorted(out["seed"].unique())
        ax.set_title(RULE_NAMES[rule] + (f" (seed {seeds[0]} of {len(seeds)} seeds)" if len(seeds) > 1 else ""),
                     fontsize=10)
        ax.set_xlabel("fewer validation spikes than the variant's baseline (%)", fontsize=9)
        ax.set_xlim(min(-20, ax.get_xlim()[0]), 100)
    axes[0][0].set_yticks(ticks, variants, fontsize=8)
    axes[0][0].invert_yaxis()
    used = [s for s in select.NAMES if any(s in p for p in present.values())]
    fig.legend([Patch(color=PALETTE[s]) for s in used], used, loc="upper center", ncol=len(used), fontsize=8,
               bbox_to_anchor=(0.5, 1.0 + 0.4 / fig.get_figheight()))
    fig.tight_layout()
    return fig


def sparsity_accuracy_figure(pts: pd.DataFrame, ncols: int = 4):
    """Per variant, every (sigma0, epoch) point on validation: accuracy against spikes relative
    to the variant's baseline at its best epoch; crosses are `lib.analysis.select.silent` points."""
    variants = list(dict.fromkeys(pts["variant"]))
    nrows = math.ceil(len(variants) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.8 * nrows), sharey=True, squeeze=False)
    for ax, variant in zip(axes.flat, variants, strict=False):
        vpts = pts[pts["variant"] == variant]
        base = vpts[vpts["schedule"] == "baseline"]
        if len(base):
            best = base.sort_values(["val_accuracy", "val_spikes"], ascending=[False, True]).iloc[0]
            scale, reference = best["val_spikes"], best["val_accuracy"]
            ax.axhline(reference, color="grey", linestyle=":", linewidth=1)
            ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        else:
            scale = vpts["val_spikes"].max() or 1.0
        for schedule, group in vpts.groupby("schedule", sort=False):
            silent = select.silent(group)
            alive, dead = group[~silent], group[silent]
            ax.scatter(alive["val_spikes"] / scale, alive["val_accuracy"], s=10, alpha=0.6,
                       color="black" if schedule == "baseline" else PALETTE[schedule], label=schedule)
            ax.scatter(dead["val_spikes"] / scale, dead["val_accuracy"], s=25, marker="x",
                       color=PALETTE[schedule])
        ax.set_title(variant, fontsize=9)
        ax.set_xlim(-0.05, max(1.6, ax.get_xlim()[1]))
    for ax in axes.flat[len(variants):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("val. spikes / baseline's")
    for ax in axes[:, 0]:
        ax.set_ylabel("val. accuracy")
    legend = {}  # every schedule once, from whichever panel has it
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout()
    return fig


def layer_reductions(out: pd.DataFrame, pts: pd.DataFrame, rule: str = "table1") -> pd.DataFrame:
    """Per variant and schedule (and seed, with several), the selected point's validation spikes
    per layer relative to its baseline's selected point (1 - mine / baseline's, per layer):
    which layers the loss reaches."""
    mine = out[(out["rule"] == rule) & (out["note"] == "")]
    several = mine["seed"].nunique() > 1
    rows = []
    for (variant, seed), group in mine.groupby(["variant", "seed"], sort=False):
        layers = {}
        for _, row in group.iterrows():
            point = pts[(pts["variant"] == variant) & (pts["schedule"] == row["schedule"])
                        & (pts["sigma0"] == row["sigma0"]) & (pts["epoch"] == row["epoch"])
                        & (pts["seed"] == row["seed"])]
            layers[row["schedule"]] = np.asarray(point.iloc[0]["val_spikes_per_layer"], dtype=float)
        if "baseline" not in layers:
            continue
        for schedule, spikes in layers.items():
            if schedule != "baseline":
                with np.errstate(divide="ignore", invalid="ignore"):
                    change = 1 - spikes / layers["baseline"]
                rows.append({"variant": variant, **({"seed": seed} if several else {}), "schedule": schedule,
                             **{f"lif{i + 1}": c for i, c in enumerate(change)},
                             **{f"baseline lif{i + 1}": b for i, b in enumerate(layers["baseline"])}})
    return pd.DataFrame(rows)


def costs(collected) -> pd.DataFrame:
    """What each variant cost to train, from its complete records (a `lib.sweep.Collected`): runs,
    epochs trained, the median seconds per epoch of the training loop (evaluation aside) and of the
    whole epoch, and the runs' summed wall time; `relative` is the median training epoch against the
    first variant's.

    Read these as the sweep's own bookkeeping, not as a benchmark: each number carries the
    conditions its run met (runs side by side on a shared CPU, records copied from another sweep);
    ratios measured side by side belong in `benchmarks/` (`benchmarks/tstudy_cost.py` for T).
    """
    of_run = {r.id: r.variant for r in collected.profile.runs}
    rows = []
    for variant in collected.profile.variants:
        mine = [rec for rec in collected.records if of_run.get(rec.get("run_id")) == variant.name]
        epochs = [e for rec in mine for e in rec["epochs"]]
        train = [e["train_seconds"] for e in epochs if "train_seconds" in e]
        whole = [e["seconds"] for e in epochs if "seconds" in e]
        rows.append({
            "variant": variant.name, "factor": variant.factor, "label": variant.label, "runs": len(mine),
            "epochs": len(epochs),
            "train_seconds_per_epoch": float(np.median(train)) if train else math.nan,
            "seconds_per_epoch": float(np.median(whole)) if whole else math.nan,
            "run_hours": sum(rec.get("wall_seconds", math.nan) for rec in mine) / 3600,
        })
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["relative"] = frame["train_seconds_per_epoch"] / frame["train_seconds_per_epoch"].iloc[0]
    return frame
