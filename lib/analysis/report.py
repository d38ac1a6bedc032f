"""Tables 1 and 2 (Markdown, CSV, LaTeX) from a profile's complete records.

Takes the complete records of a profile's runs as `lib.sweep.collect` reads them, never
trains; the runs without a complete record are named in the caption with their state.
The tables hold, per loss function, the selected sigma0 and training epochs (`lib.analysis.select`),
the test accuracy, average spike count, SynOps and energy per image (`lib.energy`; the
caption states the constants and the same LeNet's energy as a non-spiking network), the
spike reduction against the baseline row, and the paper's own row beside ours
(`lib.paper`), labelled as such. The regulariser baselines (`lib.schedules.REGULARISERS`)
are rows like the paper's schedules, with no paper row. With several seeds every number is
mean ± sd over them.

Beside the paper's rule, the same tables by our stable rule (`lib.analysis.robust`), written as
`table1_robust` and `table2_robust` and labelled as ours by `robust.caption`; how often each
rule's winner changes between seeds (`selection_stability`: the paper's rule and ours on each
seed alone, ours on all seeds but one); and which machines and seeds stand behind the records
(`provenance_note`), which every caption and the folder's `provenance.md` state. Every file is
written atomically (a temporary file beside it, then `os.replace`).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pandas as pd

from .. import paper, record
from ..schedules import LABELS as LOSS_FUNCTION
from . import provenance, robust, select

CAPTIONS = {
    "table1": "Table 1: best validation sparsity with no increase in validation error",
    "table2": "Table 2: best validation sparsity with at most 1 percentage point more validation error",
}


def energy_note(records) -> str:
    """What the energy column counts, and the non-spiking LeNet's energy, from the records
    (one network per profile: the first record's constants)."""
    if not records:
        return ""
    ref, steps = records[0]["energy"], records[0]["params"]["num_steps"]
    when = f"at each of the {steps} steps" if ref["input_macs"] == "per_step" else "once"
    return (f" Energy per image ({ref['source']}): every SynOp an AC, plus conv1's "
            f"{ref['conv1_macs_per_step']:,} MACs on the analog input {when} "
            f"({ref['snn_input_macs'] * ref['mac_pj'] / 1e6:.2f} µJ of it before any spike); the same LeNet as a "
            f"non-spiking network: {ref['ann_macs']:,} MACs, {ref['ann_energy_pj'] / 1e6:.2f} µJ.")


def seeds(records) -> list:
    """The seeds of the records, sorted."""
    return sorted({r["params"]["seed"] for r in records})


def provenance_note(records) -> str:
    """The machines (`lib.analysis.provenance.note`) and the seeds behind the records, for a caption."""
    found = seeds(records)
    return f"{provenance.note(records)} Seeds: {len(found)} ({', '.join(map(str, found))})."


def caption(name: str, collected, selected: pd.DataFrame | None = None) -> str:
    """The table's title, the profile, what energy counts, which runs it lacks, and the machines
    and seeds behind it (`collected`: a `lib.sweep.Collected`). With `selected` (rows of
    `lib.analysis.robust.select_robust`) the table is ours, and `robust.caption` says so after the title."""
    total = len(collected.profile.runs)
    text = (f"{CAPTIONS[name]} (profile {collected.profile.name}: {len(collected.records)} of {total} runs; "
            f"test accuracy, spikes and SynOps per image of the selected point, mean ± sd over the seeds "
            f"when there are several; paper columns: {paper.CITATION}, in the paper's units).")
    if selected is not None:
        text += " " + robust.caption(selected, select.TOLERANCES[name])
    text += energy_note(collected.records)
    if collected.missing:
        text += " Missing runs: " + ", ".join(f"{m['run_id']} ({m['state']})" for m in collected.missing) + "."
    return f"{text} {provenance_note(collected.records)}"


def _values(values, fmt):
    return ", ".join(format(v, fmt) for v in values)


def _mean_sd(mean, sd, fmt):
    if isinstance(mean, float) and math.isnan(mean):
        return ""
    return format(mean, fmt) + ("" if isinstance(sd, float) and math.isnan(sd) else f" ± {format(sd, fmt)}")


COLUMNS = [
    "Loss function", "sigma0", "Train. epochs", "Test accuracy (%)", "Avg. spike count", "Spike reduction (%)",
    "Avg. SynOps", "Energy (µJ)", "Seeds", "Note",
    "Paper: sigma0", "Paper: epochs", "Paper: accuracy (%)", "Paper: spike count", "Paper: reduction (%)",
]


def table(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    """The printable table: our columns, then the paper's (`name` is table1 or table2)."""
    ref = paper.TABLES[name]
    base = ref["baseline"][3]
    rows = []
    for _, r in summary.iterrows():
        p = ref.get(r["schedule"])
        rows.append({
            "Loss function": LOSS_FUNCTION[r["schedule"]],
            "sigma0": _values(r["sigma0"], "g"),
            "Train. epochs": _values(r["epoch"], "d"),
            "Test accuracy (%)": _mean_sd(r["test_accuracy_mean"] * 100, r["test_accuracy_std"] * 100, ".2f"),
            "Avg. spike count": _mean_sd(r["test_spikes_mean"], r["test_spikes_std"], ",.0f"),
            "Spike reduction (%)": _mean_sd(r["spike_reduction_mean"] * 100, r["spike_reduction_std"] * 100, ".1f"),
            "Avg. SynOps": _mean_sd(r["test_synops_mean"], r["test_synops_std"], ",.0f"),
            "Energy (µJ)": _mean_sd(r["test_energy_pj_mean"] / 1e6, r["test_energy_pj_std"] / 1e6, ".2f"),
            "Seeds": str(r["seeds"]),
            "Note": r["notes"],
            "Paper: sigma0": f"{p[0]:g}" if p else "",
            "Paper: epochs": str(p[1]) if p else "",
            "Paper: accuracy (%)": f"{p[2] * 100:.2f}" if p else "",
            "Paper: spike count": f"{p[3]:,}" if p else "",
            "Paper: reduction (%)": f"{(1 - p[3] / base) * 100:.1f}" if p else "",
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table: cells unpadded, "|" escaped as "\\|".

    Not `DataFrame.to_markdown`: it pads every cell to its column's width and leaves "|" as
    is (a cell "x|y" then splits into two columns), and it needs tabulate, which is no
    dependency. None of tablefmt "github" or "pipe", with or without disable_numparse, gives
    the committed figures/*/table*.md and ablations_*.md bytes (tabulate 0.10.0, pandas 3.1).
    """
    cells = [list(frame.columns), ["---"] * frame.shape[1], *frame.astype(str).values.tolist()]
    return "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in cells) + "\n"


def write_text(path, text: str) -> Path:
    """`text` into a temporary file beside `path`, then renamed: a reader never sees half a file."""
    return record.atomic(path, lambda tmp: tmp.write_text(text))


def write_table(frame: pd.DataFrame, summary: pd.DataFrame, folder, name: str, caption: str) -> list[Path]:
    """`name`.md (caption + table), `name`.tex (the printable table) and `name`.csv (numbers)."""
    folder = Path(folder)
    latex = frame.to_latex(index=False, escape=True, caption=caption, label=f"tab:{name}")
    numbers = summary.assign(loss_function=summary["schedule"].map(LOSS_FUNCTION))
    return [write_text(folder / f"{name}.md", f"{caption}\n\n{markdown(frame)}"),
            write_text(folder / f"{name}.tex", latex.replace("±", r"$\pm$")),
            write_text(folder / f"{name}.csv", numbers.to_csv(index=False))]


def robust_tables(records) -> dict[str, pd.DataFrame]:
    """Table name -> the rows our stable rule selects (`lib.analysis.robust.select_robust`), per tolerance
    of `lib.analysis.select.TOLERANCES`; written as `<name>_robust` beside the paper's rule's table."""
    pts = robust.points(records)
    return {name: robust.select_robust(pts, tolerance) for name, tolerance in select.TOLERANCES.items()}


STABILITY_COLUMNS = ["table", "draws", "rule", "schedule", "pairs", "point_changes", "sigma0_changes", "change_rate",
                     "note"]


def selection_stability(records) -> pd.DataFrame:
    """How often each rule's winner changes between draws of seeds (`lib.analysis.robust.stability`), per
    table: the paper's rule and ours on each seed alone (`single seeds`), ours on all seeds but
    one (`leave one out`; with 2 seeds that is each seed alone again, and the note says so).
    With fewer than 2 seeds there is nothing to compare: one row whose note says so."""
    found = seeds(records)
    if len(found) < 2:
        note = f"needs 2 seeds: the records have {len(found)} ({', '.join(map(str, found))}); add seeds to the profile"
        return pd.DataFrame([{"note": note}], columns=STABILITY_COLUMNS)
    pts = robust.points(records)
    frames = []
    for name, tolerance in select.TOLERANCES.items():
        single = robust.stability(pts, tolerance, robust.single_seeds(found))
        loo = robust.stability(pts, tolerance, robust.leave_one_out(found), rules=("robust",))
        note = "with 2 seeds, all but one is each seed alone" if len(found) == 2 else ""
        frames += [single.assign(table=name, draws="single seeds", note=""),
                   loo.assign(table=name, draws="leave one out", note=note)]
    return pd.concat(frames, ignore_index=True)[STABILITY_COLUMNS]


def stability_sentence(frame: pd.DataFrame) -> str:
    """`selection_stability` in words: per table, each rule's winner changes over its pairs of seeds."""
    if frame["rule"].isna().all():
        return frame["note"].iloc[0] + "."
    totals = frame[(frame["schedule"] == "all") & (frame["draws"] == "single seeds")]
    parts = []
    for name, group in totals.groupby("table", sort=False):
        changes = (group["point_changes"] + group["sigma0_changes"]).set_axis(group["rule"])
        pairs = group.set_index("rule")["pairs"]
        parts.append(f"{name}: paper's rule {changes['paper']} of {pairs['paper']}, "
                     f"ours {changes['robust']} of {pairs['robust']}")
    return ("Winner changes between single seeds (a schedule gaining or losing its point, or another sigma0, "
            "over every pair of seeds and sparse schedule): " + "; ".join(parts) + ".")


def write_stability(frame: pd.DataFrame, folder, name: str = "selection_stability") -> Path:
    """`name`.csv: the rows of `selection_stability`."""
    return write_text(Path(folder) / f"{name}.csv", frame.to_csv(index=False))


def write_provenance(collected, folder, name: str = "provenance") -> Path:
    """`name`.md: the profile, how many runs complete, the machines and seeds behind the records
    (`provenance_note`), a row per machine with its full fingerprint (`lib.analysis.provenance.machines`)
    and a row per seed with what its runs cost (`lib.analysis.provenance.compute`)."""
    machines = provenance.machines(collected.records)
    machines = machines.where(machines.notna(), "")  # no CUDA on a CPU run: an empty cell, not "nan"
    cost = provenance.compute(collected.records).round({"run_hours": 2, "seconds_per_epoch": 1})
    cost = cost.astype(object).where(cost.notna(), "")  # no timed epoch: no rate
    text = (f"# Records behind these tables and figures\n\nProfile {collected.profile.name}: "
            f"{len(collected.records)} of {len(collected.profile.runs)} runs complete. "
            f"{provenance_note(collected.records)}\n\n{markdown(machines)}\n"
            "## Compute\n\nPer seed, the run time of its records (`wall_seconds` added up: training and "
            "evaluation, a resumed run's attempts summed; records without it are `untimed`). A sweep of "
            f"J runs at once takes about `run_hours` / J on its own.\n\n{markdown(cost)}")
    return write_text(Path(folder) / f"{name}.md", text)


def schedule_axis(records) -> tuple[int, int]:
    """(epochs, batches per epoch) the runs trained for: `params.epochs` and
    ceil(`data.train` / `params.batch_size`) of their records, which one profile's runs share."""
    axes = {(r["params"]["epochs"], -(-r["data"]["train"] // r["params"]["batch_size"])) for r in records}
    if len(axes) != 1:
        raise ValueError(f"the records disagree on (epochs, batches per epoch): {sorted(axes)}; "
                         "one schedule-weights figure needs one")
    return axes.pop()


PARETO_COLUMNS = ["schedule", "loss_function", "seed", "sigma0", "epoch", "val_accuracy", "val_spikes",
                  "test_accuracy", "test_spikes", "test_synops", "test_energy_pj", "run_id"]


def write_pareto(front: pd.DataFrame, folder, name: str = "pareto_fronts") -> Path:
    """`name`.csv: the points of `lib.analysis.select.pareto_front`, their validation and test numbers."""
    frame = front.assign(loss_function=front["schedule"].map(LOSS_FUNCTION))[PARETO_COLUMNS]
    return write_text(Path(folder) / f"{name}.csv", frame.to_csv(index=False))


# ---------------------------------------------------------------------------
# Held-out seeds: do the choices of one sweep hold on seeds they were not chosen on?

CONFIRMED_TABLES = {"table1": "table1_robust", "table2": "table2_robust"}


def _mean_std(values) -> tuple[float, float]:
    values = list(values)
    if not values:
        return math.nan, math.nan
    return float(pd.Series(values).mean()), float(pd.Series(values).std()) if len(values) > 1 else math.nan


def _at_epoch(runs: pd.DataFrame, epoch: int) -> tuple[pd.DataFrame, list]:
    """Each seed's point at `epoch` among `runs` (one schedule and sigma0), sorted by seed; a run
    that collapsed before it (its last epoch silent, `select.silent`, and earlier than `epoch`) gives
    its last epoch instead, the silent network it stopped as, and its seed is listed."""
    rows, collapsed = [], []
    for seed, run in runs.sort_values("epoch").groupby("seed", sort=True):
        if (run["epoch"] == epoch).any():
            rows.append(run[run["epoch"] == epoch].iloc[0])
        elif run["epoch"].max() < epoch and select.silent(run.tail(1)).iloc[0]:
            rows.append(run.iloc[-1])
            collapsed.append(int(seed))
    return pd.DataFrame(rows, columns=runs.columns), collapsed


def confirmation(records, chosen) -> pd.DataFrame:
    """A row per (table, schedule) of `chosen`'s table{1,2}_robust.csv (the choices of our rule on
    the seeds they were chosen on): its sigma0 and epoch, the numbers it was chosen with, and the same
    (sigma0, epoch) on `records` (other seeds, the same setting): validation and test accuracy mean ±
    sd, the held-out baseline's reference and margin computed as `lib.analysis.robust` computes them (on the
    held-out seeds with a complete baseline), the threshold reference - tolerance - margin, the spike
    reduction against each held-out seed's baseline row of our rule, and `holds`: whether the mean
    validation accuracy over the held-out seeds clears that threshold. Selection reads validation
    only; the test columns are reported, never used. A choice without its run on a held-out seed
    leaves that seed out (`seeds` names those used); with none, `holds` is empty. A run that
    collapsed (stopped silent) before the chosen epoch counts with its last, silent epoch
    (`collapsed_seeds`): the network the choice gives on that seed."""
    pts = robust.points(records)
    base_seeds = set(pts.loc[pts["schedule"] == "baseline", "seed"])
    pts = pts[pts["seed"].isin(base_seeds)]
    ref, margin = robust.reference(pts)
    rows = []
    for table, csv_name in CONFIRMED_TABLES.items():
        tolerance = select.TOLERANCES[table]
        base = robust.select_robust(pts[pts["schedule"] == "baseline"], tolerance).set_index("seed")["test_spikes"]
        frame = pd.read_csv(Path(chosen) / f"{csv_name}.csv").set_index("schedule")
        for schedule, sigma0, epoch in _choices(chosen, csv_name):
            if schedule == "baseline":
                continue
            c = frame.loc[schedule]
            at, collapsed = _at_epoch(pts[(pts["schedule"] == schedule) & (pts["sigma0"] == sigma0)], epoch)
            val, test = _mean_std(at["val_accuracy"]), _mean_std(at["test_accuracy"])
            reduction = _mean_std(1 - at["test_spikes"] / at["seed"].map(base))
            threshold = ref - tolerance - margin
            rows.append({
                "table": table, "schedule": schedule, "sigma0": sigma0, "epoch": epoch,
                "chosen_seeds": int(c["seeds"]), "chosen_test_accuracy_mean": c["test_accuracy_mean"],
                "chosen_test_accuracy_std": c["test_accuracy_std"],
                "chosen_spike_reduction_mean": c["spike_reduction_mean"],
                "chosen_spike_reduction_std": c["spike_reduction_std"],
                "seeds": " ".join(str(s) for s in at["seed"]), "collapsed_seeds": " ".join(map(str, collapsed)),
                "val_accuracy_mean": val[0], "val_accuracy_std": val[1],
                "test_accuracy_mean": test[0], "test_accuracy_std": test[1],
                "reference": ref, "margin": margin, "threshold": threshold,
                "spike_reduction_mean": reduction[0], "spike_reduction_std": reduction[1],
                "holds": "" if at.empty or math.isnan(ref) else bool(val[0] >= threshold - select.EPS),
            })
    return pd.DataFrame(rows)


def _choices(chosen, csv_name: str) -> list[tuple[str, float, int]]:
    """(schedule, sigma0, epoch) of each row with a point in `chosen`/`csv_name`.csv, baseline included."""
    frame = pd.read_csv(Path(chosen) / f"{csv_name}.csv")
    out = []
    for _, c in frame.iterrows():
        if isinstance(c["sigma0"], str) and ast.literal_eval(c["sigma0"]):
            out.append((c["schedule"], ast.literal_eval(c["sigma0"])[0], ast.literal_eval(c["epoch"])[0]))
    return out


def chosen_epochs(chosen) -> dict[tuple[str, float], set]:
    """(schedule, sigma0) -> the epochs `chosen`'s Tables 1 and 2 (our rule) chose for it."""
    out: dict[tuple[str, float], set] = {}
    for csv_name in CONFIRMED_TABLES.values():
        for schedule, sigma0, epoch in _choices(chosen, csv_name):
            out.setdefault((schedule, sigma0), set()).add(epoch)
    return out


def final_tables(records, chosen) -> dict[str, pd.DataFrame]:
    """Tables 1 and 2 of runs trained again without a validation split (`val_fraction` 0) at the
    choices of `chosen`'s table{1,2}_robust.csv: per schedule and seed the test numbers at the
    chosen (sigma0, epoch), summarised like `select.summarise` (the columns of the robust tables;
    nothing is selected), then the chosen sweep's numbers beside them (`*_chosen_mean`) and the
    change (`test_accuracy_change`, `spike_reduction_change`: this minus that, in fractions).
    A (schedule, seed) without its run is noted, as the selection rules note a missing point."""
    pts = select.points(records, validation=False)
    seeds = sorted(pts["seed"].unique())
    out = {}
    for table, csv_name in CONFIRMED_TABLES.items():
        rows = []
        for schedule, sigma0, epoch in _choices(chosen, csv_name):
            at = pts[(pts["schedule"] == schedule) & (pts["sigma0"] == sigma0) & (pts["epoch"] == epoch)]
            for seed in seeds:
                row = at[at["seed"] == seed]
                rows.append({**row.iloc[0].to_dict(), "note": ""} if len(row) else
                            {"schedule": schedule, "seed": seed, "sigma0": sigma0, "epoch": epoch,
                             "note": f"no complete run at epoch {epoch}"})
        summary = select.summarise(pd.DataFrame(rows, columns=[*pts.columns, "note"]))
        before = pd.read_csv(Path(chosen) / f"{csv_name}.csv").set_index("schedule")
        accuracy = summary["schedule"].map(before["test_accuracy_mean"])
        reduction = summary["schedule"].map(before["spike_reduction_mean"])
        out[table] = summary.assign(test_accuracy_chosen_mean=accuracy, spike_reduction_chosen_mean=reduction,
                                    test_accuracy_change=summary["test_accuracy_mean"] - accuracy,
                                    spike_reduction_change=summary["spike_reduction_mean"] - reduction)
    return out


def write_confirmation(frame: pd.DataFrame, folder, name: str = "confirmation") -> Path:
    return write_text(Path(folder) / f"{name}.csv", frame.to_csv(index=False))


# ---------------------------------------------------------------------------
# The README's answer table: a profile's committed tables beside the paper's.

ANSWER_BEGIN = "<!-- answer table: written by `python -m lib.analysis.report --readme README.md figures/paper` -->"
ANSWER_END = "<!-- end of answer table -->"
RULES = {"": "paper's rule", "_robust": "our rule"}


def _reduction_at(reduction_mean, reduction_std, accuracy) -> str:
    """'−56.8 ± 2.0 % at 64.40 %': a spike reduction (mean ± sd) at a test accuracy, both fractions."""
    return f"−{_mean_sd(reduction_mean * 100, reduction_std * 100, '.1f')} % at {accuracy * 100:.2f} %"


def _cell(row, seeds: int) -> str:
    """'−56.8 ± 2.0 % at 64.40 %' (reduction, test accuracy), '(1 of 2 seeds)' where seeds lack a point."""
    if row["seeds"] == 0 or math.isnan(row["spike_reduction_mean"]):
        return f"no point (0 of {seeds} seeds)"
    text = _reduction_at(row["spike_reduction_mean"], row["spike_reduction_std"], row["test_accuracy_mean"])
    return text if row["seeds"] == seeds else f"{text} ({row['seeds']} of {seeds} seeds)"


def answer_table(folder) -> str:
    """The README's answer, from `folder`'s table{1,2}.csv and table{1,2}_robust.csv: per loss
    function the paper's row (`lib.paper`) and ours by both rules; test spike reduction (mean ±
    sd over seeds) at the test accuracy (mean), the baseline's row its test accuracy. Every
    number is read from the committed CSVs, so the README cannot drift from its evidence."""
    folder = Path(folder)
    frames = {(t, s): pd.read_csv(folder / f"{t}{s}.csv").set_index("schedule") for t in ("table1", "table2")
              for s in RULES}
    seeds = int(frames["table1", ""].loc["baseline", "seeds"])
    header = ["loss function"]
    for label in ("Table 1", "Table 2"):
        header += [f"{label}, paper", *(f"{label}, ours ({rule})" for rule in RULES.values())]
    rows = []
    for schedule in frames["table1", ""].index:
        if schedule not in paper.TABLES["table1"]:
            continue  # the regulariser baselines have no paper row
        cells = [schedule.replace("_", " ")]
        for t in ("table1", "table2"):
            ref = paper.TABLES[t]
            acc, spikes = ref[schedule][2], ref[schedule][3]
            if schedule == "baseline":
                cells.append(f"{acc * 100:.2f} %")
                for s in RULES:
                    r = frames[t, s].loc[schedule]
                    cells.append(f"{_mean_sd(r['test_accuracy_mean'] * 100, r['test_accuracy_std'] * 100, '.2f')} %")
            else:
                cells.append(f"−{(1 - spikes / ref['baseline'][3]) * 100:.1f} % at {acc * 100:.2f} %")
                cells += [_cell(frames[t, s].loc[schedule], seeds) for s in RULES]
        rows.append(cells)
    body = markdown(pd.DataFrame(rows, columns=header))
    return f"{ANSWER_BEGIN}\n{body}{ANSWER_END}\n"


HELDOUT_BEGIN = ("<!-- held-out table: written by `python -m lib.analysis.report --readme README.md "
                 "--heldout figures/paper-heldout figures/paper` -->")
HELDOUT_END = "<!-- end of held-out table -->"


def _heldout_cell(row) -> str:
    """The chosen point on the held-out seeds: '−46.6 ± 0.9 % at 63.61 %', or how many collapsed."""
    seeds = len(str(row["seeds"]).split()) if isinstance(row["seeds"], str) else 0
    collapsed = len(row["collapsed_seeds"].split()) if isinstance(row["collapsed_seeds"], str) else 0
    if seeds == 0:
        return "not run"
    if collapsed == seeds:
        return f"collapsed ({collapsed} of {seeds} seeds)"
    text = _reduction_at(row["spike_reduction_mean"], row["spike_reduction_std"], row["test_accuracy_mean"])
    return text + (f" ({collapsed} of {seeds} seeds collapsed)" if collapsed else "")


def heldout_table(folder) -> str:
    """Our rule's choices on the seeds they were chosen on beside the seeds they were not, from
    `folder`'s confirmation.csv: per loss function and table the chosen (sigma0, epoch), test spike
    reduction at test accuracy on both sets of seeds, and whether the held-out validation accuracy
    clears the rule's threshold (`holds`, as `confirmation` decides it)."""
    frame = pd.read_csv(Path(folder) / "confirmation.csv", dtype={"seeds": str, "collapsed_seeds": str})
    held_out = sorted({int(s) for seeds in frame["seeds"].dropna() for s in seeds.split()})
    chosen_on = f"chosen on ({int(frame['chosen_seeds'].max())} seeds)"
    held = f"held out (seed{'s' if len(held_out) > 1 else ''} {', '.join(map(str, held_out))})"
    header = ["loss function"]
    for label in ("Table 1", "Table 2"):
        header += [f"{label}: σ0, epoch", chosen_on, held, "holds"]
    rows = []
    for schedule in dict.fromkeys(frame["schedule"]):
        cells = [schedule.replace("_", " ")]
        for table in ("table1", "table2"):
            r = frame[(frame["table"] == table) & (frame["schedule"] == schedule)]
            if r.empty:
                cells += ["no point", "", "", ""]
                continue
            r = r.iloc[0]
            chosen = _reduction_at(r["chosen_spike_reduction_mean"], r["chosen_spike_reduction_std"],
                                   r["chosen_test_accuracy_mean"])
            holds = "" if pd.isna(r["holds"]) or r["holds"] == "" else (
                f"{'yes' if str(r['holds']) == 'True' else 'no'} ({r['val_accuracy_mean'] * 100:.2f} % "
                f"{'≥' if str(r['holds']) == 'True' else '<'} {r['threshold'] * 100:.2f} %)")
            cells += [f"{r['sigma0']:.3g}, {int(r['epoch'])}", chosen, _heldout_cell(r), holds]
        rows.append(cells)
    body = markdown(pd.DataFrame(rows, columns=header))
    return f"{HELDOUT_BEGIN}\n{body}{HELDOUT_END}\n"


def replace_block(text: str, block: str, begin: str = ANSWER_BEGIN, end: str = ANSWER_END) -> str:
    """`text` with its lines from `begin` to `end` (inclusive) replaced by `block`."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"no block between {begin!r} and {end!r}")
    return text[:start] + block + text[stop + len(end) + 1:]


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lib.analysis.report", description="The README's answer table.")
    parser.add_argument("folder", help="a profile's tables, e.g. figures/paper")
    parser.add_argument("--readme", help="rewrite this file's answer block in place (else print the table)")
    parser.add_argument("--heldout", help="a held-out profile's tables (its confirmation.csv): the held-out "
                        "table instead of the answer")
    args = parser.parse_args(argv)
    block, begin, end = (heldout_table(args.heldout), HELDOUT_BEGIN, HELDOUT_END) if args.heldout else (
        answer_table(args.folder), ANSWER_BEGIN, ANSWER_END)
    if args.readme:
        path = Path(args.readme)
        write_text(path, replace_block(path.read_text(), block, begin, end))
    else:
        print(block, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
