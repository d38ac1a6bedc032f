"""Collect a profile's run records and write Tables 1 and 2 (Markdown, CSV, LaTeX).

Reads `results/<profile>/<run-id>/record.json` of every run of the profile's grid
(`lib.sweep`), never trains. Runs without a complete record are listed as missing,
with their state and the notebook to read. The tables hold, per loss function, the
selected sigma0 and training epochs (`lib.select`), the test accuracy and average spike
count per image, the spike reduction against the baseline row, and the paper's own
row beside ours (`lib.paper`), labelled as such.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import paper, sweep


@dataclass
class Collected:
    profile: sweep.Profile
    records: list  # complete records, each with its "run_id"
    missing: pd.DataFrame  # run_id, state, notebook


def collect(profile: str, results="results") -> Collected:
    """The complete records of a profile's runs, and what is missing."""
    prof = sweep.load_profile(profile)
    records, missing = [], []
    for run in prof.runs:
        folder = sweep.run_dir(prof, run, Path(results))
        state = sweep.state(prof, run, Path(results))
        if state == "complete":
            records.append({**json.loads((folder / "record.json").read_text()), "run_id": run.id})
        else:
            notebook = folder / "partial" / "train.ipynb"
            missing.append({"run_id": run.id, "state": state, "notebook": str(notebook) if notebook.exists() else ""})
    return Collected(prof, records, pd.DataFrame(missing, columns=["run_id", "state", "notebook"]))


CAPTIONS = {
    "table1": "Table 1: best validation sparsity with no increase in validation error",
    "table2": "Table 2: best validation sparsity with at most 1 percentage point more validation error",
}


def caption(name: str, collected: Collected) -> str:
    """The table's title, the profile, and which runs it lacks."""
    total = len(collected.profile.runs)
    text = (f"{CAPTIONS[name]} (profile {collected.profile.name}: {len(collected.records)} of {total} runs; "
            f"test accuracy and spikes per image of the selected point; paper columns: {paper.CITATION}, "
            f"in the paper's units).")
    if len(collected.missing):
        text += " Missing runs: " + ", ".join(f"{r.run_id} ({r.state})" for r in collected.missing.itertuples()) + "."
    return text


def _values(values, fmt):
    return ", ".join(format(v, fmt) for v in values)


def _mean_sd(mean, sd, fmt):
    if isinstance(mean, float) and math.isnan(mean):
        return ""
    return format(mean, fmt) + ("" if isinstance(sd, float) and math.isnan(sd) else f" ± {format(sd, fmt)}")


COLUMNS = [
    "Loss function", "sigma0", "Train. epochs", "Test accuracy (%)", "Avg. spike count", "Spike reduction (%)",
    "Seeds", "Note", "Paper: sigma0", "Paper: epochs", "Paper: accuracy (%)", "Paper: spike count",
    "Paper: reduction (%)",
]


def table(summary: pd.DataFrame, name: str) -> pd.DataFrame:
    """The printable table: our columns, then the paper's (`name` is table1 or table2)."""
    ref = paper.TABLES[name]
    base = ref["baseline"][3]
    rows = []
    for _, r in summary.iterrows():
        p = ref.get(r["schedule"])
        rows.append({
            "Loss function": paper.LOSS_FUNCTION[r["schedule"]],
            "sigma0": _values(r["sigma0"], "g"),
            "Train. epochs": _values(r["epoch"], "d"),
            "Test accuracy (%)": _mean_sd(r["test_accuracy_mean"] * 100, r["test_accuracy_std"] * 100, ".2f"),
            "Avg. spike count": _mean_sd(r["test_spikes_mean"], r["test_spikes_std"], ",.0f"),
            "Spike reduction (%)": _mean_sd(r["spike_reduction_mean"] * 100, r["spike_reduction_std"] * 100, ".1f"),
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
    """A GitHub Markdown table (pandas' to_markdown needs tabulate, which we do not)."""
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
    numbers = summary.assign(loss_function=summary["schedule"].map(paper.LOSS_FUNCTION))
    numbers.to_csv(csv, index=False)
    return [md, tex, csv]
