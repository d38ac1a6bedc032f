"""Tables 1 and 2 (Markdown, CSV, LaTeX) from a profile's complete records.

Takes the complete records of a profile's runs as `lib.sweep.collect` reads them, never
trains; the runs without a complete record are named in the caption with their state.
The tables hold, per loss function, the selected sigma0 and training epochs (`lib.select`),
the test accuracy, average spike count, SynOps and energy per image (`lib.energy`; the
caption states the constants and the same LeNet's energy as a non-spiking network), the
spike reduction against the baseline row, and the paper's own row beside ours
(`lib.paper`), labelled as such. The regulariser baselines (`lib.schedules.REGULARISERS`)
are rows like the paper's schedules, with no paper row. With several seeds every number is
mean ± sd over them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from . import paper

LOSS_FUNCTION = {  # row labels: the paper's, then the regulariser baselines (ours)
    **paper.LOSS_FUNCTION,
    "upper_bound": "C.E. + upper bound (Zenke & Vogels 2021)",
    "synops": "C.E. + SynOps (after Sorbaro et al. 2020)",
    "layer_weighted": "C.E. + layer-weighted spikeCount",
}


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


def caption(name: str, collected) -> str:
    """The table's title, the profile, what energy counts, and which runs it lacks
    (`collected`: a `lib.sweep.Collected`)."""
    total = len(collected.profile.runs)
    text = (f"{CAPTIONS[name]} (profile {collected.profile.name}: {len(collected.records)} of {total} runs; "
            f"test accuracy, spikes and SynOps per image of the selected point, mean ± sd over the seeds "
            f"when there are several; paper columns: {paper.CITATION}, in the paper's units)."
            + energy_note(collected.records))
    if collected.missing:
        text += " Missing runs: " + ", ".join(f"{m['run_id']} ({m['state']})" for m in collected.missing) + "."
    return text


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


def write_table(frame: pd.DataFrame, summary: pd.DataFrame, folder, name: str, caption: str) -> list[Path]:
    """`name`.md (caption + table), `name`.tex (the printable table) and `name`.csv (numbers)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md, tex, csv = (folder / f"{name}.{ext}" for ext in ("md", "tex", "csv"))
    md.write_text(f"{caption}\n\n{markdown(frame)}")
    latex = frame.to_latex(index=False, escape=True, caption=caption, label=f"tab:{name}")
    tex.write_text(latex.replace("±", r"$\pm$"))
    numbers = summary.assign(loss_function=summary["schedule"].map(LOSS_FUNCTION))
    numbers.to_csv(csv, index=False)
    return [md, tex, csv]


PARETO_COLUMNS = ["schedule", "loss_function", "seed", "sigma0", "epoch", "val_accuracy", "val_spikes",
                  "test_accuracy", "test_spikes", "test_synops", "test_energy_pj", "run_id"]


def write_pareto(front: pd.DataFrame, folder, name: str = "pareto_fronts") -> Path:
    """`name`.csv: the points of `lib.select.pareto_front`, their validation and test numbers."""
    path = Path(folder) / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    front.assign(loss_function=front["schedule"].map(LOSS_FUNCTION))[PARETO_COLUMNS].to_csv(path, index=False)
    return path
