"""Do your tables agree with the committed ones?  `python -m lib.analysis.compare MINE COMMITTED`

MINE and COMMITTED each name the tables of one profile: a folder holding `table1.csv`,
`table2.csv` (as `lib.analysis.report` writes them into `figures/<profile>/`), or `REV:folder` for
that folder as committed in git (`make reproduce` rewrites `figures/<profile>/`, so after it
the committed tables are `HEAD:figures/<profile>`). MINE may also be a results folder
(`results/<profile>`): the tables are then made here from its complete records, by the
paper's rule (`lib.analysis.select`) and ours (`lib.analysis.robust`).

Per table (table1, table2, and table1_robust, table2_robust where COMMITTED has them) and
row (schedule), a row agrees when

    both sides have a selected point (seeds > 0), or neither has; and, with points,
    |mean_mine - mean_committed| <= K * sqrt(sd_mine^2 / S_mine + sd_committed^2 / S_committed)

for the test accuracy and for the spike reduction, K = 2 (about 95 % of reruns fall within
it when the sd is right; the square root is the sd of a difference of two means over S
seeds). sd is the table's own sd over seeds where it has at least 2 seeds, else DEFAULT_SD:

    DEFAULT_SD = sqrt(mean(d^2) / 2) over the differences d between two runs of the quick
    profile, seed 0, on two 2-core AMD EPYC machines (the one-seed quick tables and a rerun
    from a fresh clone, whose records are not in this repository): test accuracy d = 0.34,
    0.56, 0.98 points (Table 1's baseline, constant, alternating) -> 0.48 points; spike
    reduction d = 20.9, 19.5 (Table 1), 11.9, 9.2, 1.5 (Table 2) -> 10.2 points. A default
    to replace (--sd-accuracy, --sd-reduction) once several seeds give a measured sd.

That is a machine-to-machine spread of one seed, not a seed-to-seed sd; `--sd-accuracy` and
`--sd-reduction` replace it (fractions, e.g. 0.005). sigma0 and epochs are shown, not judged:
another sigma0 with numbers within the spread is the noise the spread describes. A row on
one side only disagrees. Exit status: 0 when every row agrees, 1 when one does not, 2 for
bad input (nothing is compared).
"""

from __future__ import annotations

import argparse
import ast
import io
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd

from .. import record
from . import robust, select

K = 2.0
DEFAULT_SD = {"test_accuracy": 0.0048, "spike_reduction": 0.102}
REQUIRED = ("table1", "table2")
OPTIONAL = ("table1_robust", "table2_robust")
QUANTITIES = tuple(DEFAULT_SD)


def _parse(text: str, where: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text))
    needed = {"schedule", "seeds", "sigma0", "epoch", *(f"{q}_{s}" for q in QUANTITIES for s in ("mean", "std"))}
    if needed - set(frame.columns):
        missing = ", ".join(sorted(needed - set(frame.columns)))
        raise ValueError(f"{where}: not a table of lib.analysis.report (no {missing})")
    for column in ("sigma0", "epoch"):  # written as Python lists
        frame[column] = frame[column].map(ast.literal_eval)
    return frame.set_index("schedule")


def _from_records(folder: Path) -> dict[str, pd.DataFrame]:
    """The tables of the complete records under `folder` (incomplete ones refused: unfinished)."""
    paths = sorted(folder.rglob("record.json"))
    if not paths:
        raise ValueError(f"{folder}: neither table1.csv nor any record.json under it")
    records = [{**record.load(p, complete=True), "run_id": p.parent.name} for p in paths]
    pts = robust.points(records)
    tables = {}
    for name, tolerance in select.TOLERANCES.items():
        tables[name] = select.summarise(select.select(pts, tolerance)).set_index("schedule")
        tables[f"{name}_robust"] = select.summarise(robust.select_robust(pts, tolerance)).set_index("schedule")
    return tables


def read_tables(location: str) -> dict[str, pd.DataFrame]:
    """Table name -> its rows by schedule, from a folder, `REV:folder` in git, or a results folder."""
    folder = Path(location)
    if folder.is_dir():
        if not (folder / "table1.csv").exists():
            return _from_records(folder)
        texts = {n: (folder / f"{n}.csv").read_text() for n in (*REQUIRED, *OPTIONAL) if (folder / f"{n}.csv").exists()}
    elif ":" in location:
        rev, path = location.split(":", 1)
        texts = {}
        for name in (*REQUIRED, *OPTIONAL):
            blob = f"{rev}:{path.rstrip('/')}/{name}.csv"
            shown = subprocess.run(["git", "show", blob], capture_output=True, text=True)
            if shown.returncode == 0:
                texts[name] = shown.stdout
    else:
        raise ValueError(f"{location}: no such folder (and not REV:folder)")
    missing = [n for n in REQUIRED if n not in texts]
    if missing:
        raise ValueError(f"{location}: no {', '.join(f'{n}.csv' for n in missing)}")
    return {name: _parse(text, f"{location}/{name}.csv") for name, text in texts.items()}


def _sd(row, quantity: str, sd: dict) -> float:
    measured = row[f"{quantity}_std"]
    return float(measured) if row["seeds"] >= 2 and not math.isnan(measured) else sd[quantity]


def compare_table(mine: pd.DataFrame | None, committed: pd.DataFrame, sd: dict = DEFAULT_SD) -> pd.DataFrame:
    """One row per schedule of either side: `agree`, `why` (empty when they agree), and per
    quantity mine, committed and the allowed difference."""
    schedules = list(committed.index) + [s for s in ([] if mine is None else mine.index) if s not in committed.index]
    rows = []
    for schedule in schedules:
        row = {"schedule": schedule}
        m = None if mine is None or schedule not in mine.index else mine.loc[schedule]
        c = committed.loc[schedule] if schedule in committed.index else None
        row["sigma0_mine"] = "" if m is None else ", ".join(f"{v:g}" for v in m["sigma0"])
        row["sigma0_committed"] = "" if c is None else ", ".join(f"{v:g}" for v in c["sigma0"])
        why = []
        if m is None or c is None:
            why.append("no such row in " + ("mine" if m is None else "committed"))
        elif (m["seeds"] > 0) != (c["seeds"] > 0):
            why.append("a point in " + ("mine" if m["seeds"] > 0 else "committed") + " only")
        elif m["seeds"] > 0:
            for q in QUANTITIES:
                a, b = float(m[f"{q}_mean"]), float(c[f"{q}_mean"])
                allowed = K * math.sqrt(_sd(m, q, sd) ** 2 / m["seeds"] + _sd(c, q, sd) ** 2 / c["seeds"])
                row.update({f"{q}_mine": a, f"{q}_committed": b, f"{q}_allowed": allowed})
                if abs(a - b) > allowed + select.EPS:
                    why.append(f"{q.replace('_', ' ')} differs by {abs(a - b) * 100:.2f} points > {allowed * 100:.2f}")
        rows.append({**row, "agree": not why, "why": "; ".join(why)})
    numbers = [f"{q}_{side}" for q in QUANTITIES for side in ("mine", "committed", "allowed")]
    return pd.DataFrame(rows, columns=["schedule", "agree", "why", "sigma0_mine", "sigma0_committed", *numbers])


def compare(mine: dict, committed: dict, sd: dict = DEFAULT_SD) -> pd.DataFrame:
    """`compare_table` of every table COMMITTED has (a table MINE lacks: every row disagrees)."""
    frames = [compare_table(mine.get(name), table, sd).assign(table=name) for name, table in committed.items()]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["table", *frame.columns[:-1]]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.analysis.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("mine", help="figures/<profile>, REV:figures/<profile>, or results/<profile>")
    parser.add_argument("committed", help="the same, e.g. HEAD:figures/quick")
    parser.add_argument("--sd-accuracy", type=float, default=DEFAULT_SD["test_accuracy"],
                        help="test accuracy sd used where a table has one seed (fraction; default %(default)s)")
    parser.add_argument("--sd-reduction", type=float, default=DEFAULT_SD["spike_reduction"],
                        help="spike reduction sd used where a table has one seed (fraction; default %(default)s)")
    args = parser.parse_args(argv)
    if args.sd_accuracy <= 0 or args.sd_reduction <= 0:
        parser.error("--sd-accuracy and --sd-reduction must be positive")
    try:
        mine, committed = read_tables(args.mine), read_tables(args.committed)
    except (ValueError, record.RecordError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = compare(mine, committed, {"test_accuracy": args.sd_accuracy, "spike_reduction": args.sd_reduction})
    shown = result.assign(agree=result["agree"].map({True: "yes", False: "NO"}))
    for column in shown.columns:  # fractions -> percent, as the tables print them
        if column.startswith(QUANTITIES):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v * 100:.2f}")
    shown.columns = [c.replace("test_accuracy", "acc").replace("spike_reduction", "reduction") for c in shown.columns]
    print(f"{args.mine} against {args.committed}: test accuracy and spike reduction in %, allowed = {K:g} sd of the "
          f"difference (one seed: sd {args.sd_accuracy * 100:g} and {args.sd_reduction * 100:g} points)")
    print(shown.to_string(index=False))
    bad = result[~result["agree"]]
    print(f"{len(result) - len(bad)} of {len(result)} rows agree" + (
        "; disagree: " + ", ".join(f"{r.table}/{r.schedule}" for r in bad.itertuples()) if len(bad) else "."))
    return 1 if len(bad) else 0


if __name__ == "__main__":
    sys.exit(main())
