"""The sweep commands: `python -m lib.sweep COMMAND PROFILE` (the Makefile's targets call them).

    python -m lib.sweep check   PROFILE         validate (and find CIFAR-10 if a run must train);
                                                print every run and its state
    python -m lib.sweep records PROFILE         record paths of every run (for make)
    python -m lib.sweep run     PROFILE RUN-ID  execute one run (make calls this per record)
    python -m lib.sweep prune   PROFILE         move stale and unreadable runs aside
    python -m lib.sweep tables  PROFILE         execute the report notebook on the complete records:
                                                notebooks/tables.ipynb (ablations.ipynb with factors)
    python -m lib.sweep status  PROFILE         report; exit 1 if a run is not complete
    python -m lib.sweep refine  PROFILE         the next stage of its sigma0 search: the sqrt 2
                                                neighbours of every seed's Table 1 choice (`--table 2`:
                                                Table 2's instead; `--table 1 --table 2`: both) not in
                                                the grid yet, as YAML to paste
    python -m lib.sweep pack    PROFILE         merge the complete records, and the checkpoints Tables 1-2
                                                select, into ARCHIVE/<profile>/ (--archive, default
                                                records): a sweep's state small enough to commit (`lib.export.archive`)
    python -m lib.sweep unpack  PROFILE         copy ARCHIVE's complete runs into the results folder,
                                                where a run has no complete record: the sweep goes on from them

The library they call is `lib.sweep` (run folders, states, execution, collection), `lib.export.archive`
(pack, unpack) and `lib.analysis.select` (refine); this module is the only one that imports all three, so
that none of them imports another's layer above it (tests/test_layers.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import sweep
from ..analysis import select
from ..export import archive
from .profiles import Profile, load_profile


def _yaml_float(value: float) -> str:
    """3.0e-5, not 3e-05: PyYAML reads a float only with a dot in it (YAML 1.1)."""
    mantissa, exponent = f"{value:.2e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}{'0' if mantissa.endswith('.') else ''}e{int(exponent)}"


def refine(profile: Profile, results="results", tables=(1,)) -> str:
    """The next stage of a profile's sigma0 search (`lib.analysis.select.refinement`) from its complete
    records, on validation only, as the lines of a grid to paste into the profile (every value,
    old and new), one schedule per line; the second stage is then a profile like any other, run
    by `make reproduce`. For a profile with factors, the base variant's runs only."""
    runs = [r for r in profile.runs if r.variant == profile.variants[0].name]
    ids = {r.id for r in runs}
    records = [rec for rec in sweep.collect(profile, results).records if rec["run_id"] in ids]
    if not records:
        return f"# no complete runs of profile {profile.name} in {Path(results) / profile.name}: nothing to refine\n"
    pts = select.points(records)
    grid: dict[str, set] = {}
    for r in runs:
        if r.schedule != "baseline":
            grid.setdefault(r.schedule, set()).add(r.sigma0)
    added: dict[str, set] = {}
    for table in tables:
        chosen = select.select(pts, select.TOLERANCES[f"table{table}"])
        for schedule, values in select.refinement(chosen, grid).items():
            added.setdefault(schedule, set()).update(values)
    names = " and ".join(f"Table {t}" for t in tables)
    lines = [f"# {profile.name}: sqrt 2 neighbours of each seed's {names} choice (validation only), "
             f"from {len(records)} complete records; new values marked below"]
    for schedule in grid:
        if schedule in added:
            values = sorted(grid[schedule] | added[schedule])
            lines.append(f"    {schedule}: [{', '.join(map(_yaml_float, values))}]  "
                         f"# new: {', '.join(map(_yaml_float, sorted(added[schedule])))}")
    if len(lines) == 1:
        lines.append("# nothing to add: every choice has its sqrt 2 neighbours on both sides")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "records", "run", "prune", "tables", "status", "refine",
                                            "pack", "unpack"))
    parser.add_argument("profile", help="a name in params/ (quick) or a YAML path")
    parser.add_argument("run_id", nargs="?", help="for `run`: the run to execute (VARIANT/RUN-ID with factors)")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--figures", default=str(sweep.REPO / "figures"),
                        help="tables and figures go to FIGURES/<profile>/")
    parser.add_argument("--archive", default="records", help="for `pack` and `unpack` (default: records)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel runs sharing the CPU (default: make's -j)")
    parser.add_argument("--table", type=int, action="append", choices=(1, 2),
                        help="for `refine`: the tables whose choices to refine around (default: 1; repeatable)")
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = Path(args.results)
    if args.command == "check":
        try:
            sweep.check_data(profile, results)
        except FileNotFoundError as err:  # lib.data.DataNotFoundError
            print(f"error: {err}", file=sys.stderr)
            return 2
        for r in profile.runs:
            s = sweep.inspect(profile, r, results)
            print(f"{s.state:10s} {r.id}" + (f": {s.detail}" if s.detail else ""))
    elif args.command == "records":
        print(" ".join(str(sweep.run_dir(profile, r, results) / "record.json") for r in profile.runs))
    elif args.command == "prune":
        for what, detail, path in sweep.prune(profile, results):
            print(f"{what} ({detail}): moved to {path}; it will be trained again")
    elif args.command == "run":
        if not args.run_id:
            parser.error("run needs a RUN-ID")
        jobs = args.jobs or sweep.jobs_from_make(os.environ.get("MAKEFLAGS", ""))
        try:
            run = profile.run(args.run_id)
            print(f"run {profile.name}/{run.id}", flush=True)
            if sweep.execute(profile, run, results, jobs) is None:
                print(f"skipped {profile.name}/{run.id}: in progress in another sweep "
                      f"(it holds {sweep.run_dir(profile, run, results) / 'partial' / sweep.LOCK})", flush=True)
        except (ValueError, sweep.RunFailed) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    elif args.command == "tables":
        if sweep.tables(args.profile, results, Path(args.figures)) is None:
            print(f"tables: no complete runs of profile {profile.name} in {results / profile.name}; no tables made")
    elif args.command in ("pack", "unpack"):
        try:
            if args.command == "pack":
                moved = archive.pack(profile, results, args.archive)
            else:
                moved = archive.unpack(profile, args.archive, results)
        except archive.ArchiveError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        where = f"{args.archive}/{profile.name}" if args.command == "pack" else f"{results / profile.name}"
        print(f"{args.command} {profile.name} -> {where}: {moved}")
    elif args.command == "refine":
        print(refine(profile, results, tables=tuple(args.table or (1,))), end="")
    else:
        text, complete = sweep.report(sweep.collect(profile, results))
        print(text)
        return 0 if complete else 1
    return 0


