"""Would stopping collapsed runs early have changed Tables 1 and 2? Recomputed from records.

    python benchmarks/collapse_truncation.py RESULTS/PROFILE [--out FILE.json]

RESULTS/PROFILE is a folder of run folders, each with a record.json (a sweep's results for one
profile; only finished records, `lib.record.load(complete=True)`, are read, and nothing is
written there). Every run is truncated at the epoch where `lib.train`'s early stop would have
ended it (`lib.train.collapsed`: the last two rows `lib.analysis.select.silent`), its later rows dropped;
then `lib.analysis.select.select` picks Table 1 (tolerance 0) and Table 2 (tolerance 0.01) from the
full and from the truncated records, and the selected rows are compared column by column.
Exit status 0 when both tables are identical, 1 when a row differs (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib import record  # noqa: E402
from lib.analysis import select  # noqa: E402
from lib.train import collapsed  # noqa: E402

COMPARED = ["schedule", "seed", "sigma0", "epoch", "val_accuracy", "val_spikes", "test_accuracy", "test_spikes",
            "test_synops", "test_energy_pj", "note"]


def truncate(rec: dict) -> tuple[dict, int | None]:
    """`rec` with the rows after its early-stop epoch dropped, and that epoch (None: never stops)."""
    for n in range(2, len(rec["epochs"]) + 1):
        if collapsed(rec["epochs"][:n]):
            return {**rec, "epochs": rec["epochs"][:n]}, n
    return rec, None


def tables(records: list) -> dict:
    pts = select.points(records)
    return {name: select.select(pts, tol)[COMPARED].reset_index(drop=True) for name, tol in select.TOLERANCES.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    records, skipped, stops = [], [], {}
    for path in sorted(args.folder.glob("*/record.json")):
        try:
            rec = record.load(path, complete=True)
        except record.RecordError as err:
            skipped.append(str(err))
            continue
        records.append({**rec, "run_id": path.parent.name})
    if not records:
        print(f"no finished record under {args.folder}", file=sys.stderr)
        return 2
    truncated = []
    for rec in records:
        cut, epoch = truncate(rec)
        truncated.append(cut)
        if epoch is not None:
            stops[rec["run_id"]] = {"stop_epoch": epoch, "recorded_epochs": len(rec["epochs"])}
    before, after = tables(records), tables(truncated)
    same = {}
    for name in before:
        same[name] = before[name].equals(after[name])
        if not same[name]:
            print(f"{name} differs:\nfull records:\n{before[name]}\ntruncated:\n{after[name]}")
    summary = {"folder": str(args.folder), "runs": len(records), "skipped_unfinished": len(skipped),
               "stopped_early": stops,
               "rows_dropped": sum(len(r["epochs"]) for r in records) - sum(len(r["epochs"]) for r in truncated),
               "identical": same,
               "table1": before["table1"].to_dict("records"), "table2": before["table2"].to_dict("records")}
    print(json.dumps({k: v for k, v in summary.items() if k not in ("table1", "table2")}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(f".{args.out.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(summary, indent=1, default=str) + "\n")
        os.replace(tmp, args.out)
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    raise SystemExit(main())
