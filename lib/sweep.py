"""Profiles and sweeps: a grid of runs, each one executed `notebooks/train.ipynb`.

A profile is a YAML file `params/<name>.yaml`: run parameters (keys of
`lib.train.Params`, the same for every run) plus a grid

    grid:
      seeds: [0]
      sigma0:                      # schedule: the sigma0 values to try
        baseline: []               # the baseline takes none (sigma0 = 0)
        linear: [1.0e-6, 2.0e-6]

which expands to runs = schedules x sigma0 values x seeds, each with a stable id such
as `linear-s2e-06-seed0` or `baseline-seed0`. An unknown key anywhere is an error.
Because the run parameters sit at the top level, `papermill ... -f params/<name>.yaml`
also works for a single run (papermill passes `grid` along; the notebook ignores it).

Each run lives in `results/<profile>/<run-id>/`. It is executed in `partial/` there,
and only when its record is complete are the executed notebook and then `record.json`
moved up (`os.replace`, atomic). So `record.json` exists iff the run is complete: it
is a real make target, an interrupted sweep resumes where it stopped, and a failed
run leaves `partial/train.ipynb` to read.

    python -m lib.sweep check  PROFILE        validate, print the runs and their state
    python -m lib.sweep records PROFILE       record paths of every run (for make)
    python -m lib.sweep run    PROFILE RUN-ID execute one run (make calls this per record)
    python -m lib.sweep status PROFILE        report; exit 1 if a run is not complete
    python -m lib.sweep prune  PROFILE        move runs whose record no longer matches the
                                              profile (edited since) to <profile>/.stale/
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import schedules
from .train import Params

REPO = Path(__file__).resolve().parents[1]
PARAMS_DIR = REPO / "params"
TRAIN_NOTEBOOK = REPO / "notebooks" / "train.ipynb"
GRID_KEYS = ("seeds", "sigma0")
SET_BY_GRID = ("schedule", "sigma0", "seed", "output_dir")  # differ per run: never in the run parameters


@dataclass(frozen=True)
class Run:
    """One point of a grid."""

    schedule: str
    sigma0: float
    seed: int

    @property
    def id(self) -> str:
        if self.schedule == "baseline":
            return f"baseline-seed{self.seed}"
        return f"{self.schedule}-s{self.sigma0:g}-seed{self.seed}"


@dataclass(frozen=True)
class Profile:
    name: str
    params: dict  # run parameters shared by every run
    runs: tuple  # of Run, in grid order

    def run(self, run_id: str) -> Run:
        for r in self.runs:
            if r.id == run_id:
                return r
        raise ValueError(f"no run {run_id!r} in profile {self.name!r}; runs: {', '.join(r.id for r in self.runs)}")


def profile_path(profile: str) -> Path:
    """A profile name (`quick`) or a path to a YAML file."""
    path = Path(profile)
    return path if path.suffix in (".yaml", ".yml") else PARAMS_DIR / f"{profile}.yaml"


def _refuse_number_string(value, where):
    """YAML 1.1 (pyyaml) reads 1e-6 as the string '1e-6'; 1.0e-6 is a float."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d*\.?\d+[eE][-+]?\d+", value):
        raise ValueError(f"{where}: {value!r} is a string to YAML; write it with a dot, e.g. 1.0e-6")


def _number(value, where):
    _refuse_number_string(value, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: sigma0 values must be finite numbers > 0, got {value!r}")
    return float(value)


def parse_profile(name: str, values: dict) -> Profile:
    """Validate a profile's contents (see the module docstring) and expand its grid."""
    if not isinstance(values, dict):
        raise ValueError(f"profile {name!r} must be a mapping of parameters and a grid")
    fields = {f.name for f in dataclasses.fields(Params)}
    unknown = sorted(set(values) - fields - {"grid"})
    if unknown:
        valid = sorted(fields - set(SET_BY_GRID))
        raise ValueError(f"profile {name!r}: unknown key(s) {', '.join(unknown)}; valid: grid, {', '.join(valid)}")
    for key in SET_BY_GRID:
        if key in values:
            raise ValueError(f"profile {name!r}: {key} is set per run by the sweep (grid), not a run parameter")
    for key, value in values.items():
        _refuse_number_string(value, f"profile {name!r}: {key}")
    params = {k: v for k, v in values.items() if k != "grid"}
    try:  # type and range errors before any run
        Params.from_dict({**params, "schedule": "baseline"}).check()
    except ValueError as err:
        raise ValueError(f"profile {name!r}: {err}") from None

    grid = values.get("grid")
    if not isinstance(grid, dict):
        raise ValueError(f"profile {name!r} needs a grid: {{seeds: [...], sigma0: {{schedule: [...]}}}}")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"profile {name!r}: unknown grid key(s) {', '.join(unknown)}; valid: {', '.join(GRID_KEYS)}")
    seeds = grid.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise ValueError(f"profile {name!r}: grid.seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    sigmas = grid.get("sigma0")
    if not isinstance(sigmas, dict) or "baseline" not in sigmas:
        raise ValueError(f"profile {name!r}: grid.sigma0 must map schedules to sigma0 lists and include baseline")
    runs = []
    for schedule, sigma0s in sigmas.items():
        try:
            schedules.check(schedule)
        except ValueError as err:
            raise ValueError(f"profile {name!r}: grid.sigma0: {err}") from None
        where = f"profile {name!r}: grid.sigma0.{schedule}"
        if schedule == "baseline":
            if sigma0s not in (None, []):
                raise ValueError(f"{where}: the baseline takes no sigma0 (write [] )")
            sigma0s = [0.0]
        elif not isinstance(sigma0s, list) or not sigma0s:
            raise ValueError(f"{where}: give a non-empty list of sigma0 values, or leave the schedule out")
        else:
            sigma0s = [_number(v, where) for v in sigma0s]
        runs += [Run(schedule, s, seed) for s in sigma0s for seed in seeds]
    ids = [r.id for r in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"profile {name!r}: repeated runs {', '.join(duplicates)}")
    return Profile(name, params, tuple(runs))


def load_profile(profile: str) -> Profile:
    path = profile_path(profile)
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PARAMS_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no profile {path}; available: {available}")
    return parse_profile(path.stem, yaml.safe_load(path.read_text()))


# ---------------------------------------------------------------------------
# Where runs live, and their state.


def run_dir(profile: Profile, run: Run, results: Path) -> Path:
    return Path(results) / profile.name / run.id


def run_params(profile: Profile, run: Run, results: Path, jobs: int = 1) -> dict:
    """The notebook parameters of one run. Unset `threads` share the CPU cores among `jobs`."""
    threads = profile.params.get("threads") or max(1, (os.cpu_count() or 1) // max(1, jobs))
    return {
        **profile.params,
        "schedule": run.schedule,
        "sigma0": run.sigma0,
        "seed": run.seed,
        "threads": threads,
        "output_dir": str((run_dir(profile, run, results) / "partial").resolve()),
    }


# Settings a record may differ in from its profile without its numbers changing.
NOT_COMPARED = ("threads", "output_dir", "progress", "data_dir", "cache_dir", "device", "eval_batch_size")


def stale_keys(profile: Profile, run: Run, record: dict) -> list[str]:
    """The run parameters on which a complete record disagrees with the profile as it is now
    (a parameter the record predates counts as its default)."""
    defaults = dataclasses.asdict(Params())
    expected = {**defaults, **profile.params, "schedule": run.schedule, "sigma0": run.sigma0, "seed": run.seed}
    recorded = {**defaults, **record["params"]}
    return sorted(k for k, v in expected.items() if k not in NOT_COMPARED and recorded[k] != v)


def state(profile: Profile, run: Run, results: Path) -> str:
    """complete | stale (complete, but the profile changed since) | failed | incomplete
    (interrupted or still running) | pending."""
    folder = run_dir(profile, run, results)
    if (folder / "record.json").is_file():
        record = json.loads((folder / "record.json").read_text())
        return "stale" if stale_keys(profile, run, record) else "complete"
    partial = folder / "partial" / "record.json"
    if partial.is_file():
        return "failed" if json.loads(partial.read_text())["status"] == "failed" else "incomplete"
    return "incomplete" if (folder / "partial").exists() else "pending"


def prune(profile: Profile, results: Path) -> list[Path]:
    """Move the stale runs' folders aside, to `<profile>/.stale/`, so that they are trained
    again as the profile now says; nothing is deleted. Returns where they went."""
    moved = []
    for run in profile.runs:
        if state(profile, run, results) == "stale":
            folder = run_dir(profile, run, results)
            target = folder.parent / ".stale" / folder.name
            n = 1
            while target.exists():
                n += 1
                target = folder.parent / ".stale" / f"{folder.name}-{n}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder, target)
            moved.append(target)
    return moved


def jobs_from_make(makeflags: str) -> int:
    """N of `make -j N`, which GNU make puts into MAKEFLAGS for recipes (1 without -j)."""
    match = re.search(r"(?:^|\s)-j(\d+)", makeflags)
    return int(match.group(1)) if match else 1


class RunFailed(RuntimeError):
    """A run did not complete; the message names the notebook to read."""


def execute(profile: Profile, run: Run, results: Path, jobs: int = 1, log_output: bool = False) -> Path:
    """Execute one run through papermill; return its complete record's path.

    Runs in `partial/` from scratch (whatever an interrupted attempt left there is
    removed), then moves the notebook and, last, the record up: see the module docstring.
    """
    import papermill

    folder = run_dir(profile, run, results)
    partial = folder / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    notebook = partial / "train.ipynb"
    try:
        papermill.execute_notebook(
            str(TRAIN_NOTEBOOK), str(notebook), parameters=run_params(profile, run, results, jobs),
            progress_bar=False, log_output=log_output, cwd=str(REPO),
        )
    except Exception as err:
        record = partial / "record.json"
        reason = json.loads(record.read_text())["reason"] if record.is_file() else f"{type(err).__name__}"
        raise RunFailed(f"run {run.id} failed: {reason}; read {notebook}") from err
    record = json.loads((partial / "record.json").read_text())
    if record["status"] != "complete":  # the notebook asserts this; a changed notebook might not
        raise RunFailed(f"run {run.id} {record['status']}: {record['reason']}; read {notebook}")
    os.replace(notebook, folder / "train.ipynb")
    os.replace(partial / "record.json", folder / "record.json")  # last: the run is now complete
    shutil.rmtree(partial)
    return folder / "record.json"


def report(profile: Profile, results: Path) -> tuple[str, bool]:
    """A line per run that is not complete, naming the notebook to read; (text, all complete?)."""
    lines, states = [], {r.id: state(profile, r, results) for r in profile.runs}
    for r in profile.runs:
        if states[r.id] != "complete":
            notebook = run_dir(profile, r, results) / "partial" / "train.ipynb"
            where = f"  (read {notebook})" if notebook.exists() else ""
            lines.append(f"  {states[r.id]:10s} {r.id}{where}")
    done = sum(s == "complete" for s in states.values())
    head = f"profile {profile.name}: {done} of {len(states)} runs complete"
    return "\n".join([head, *lines]), done == len(states)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "records", "run", "status", "prune"))
    parser.add_argument("profile", help="a name in params/ (quick) or a YAML path")
    parser.add_argument("run_id", nargs="?", help="for `run`: the run to execute")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--jobs", type=int, default=0, help="parallel runs sharing the CPU (default: make's -j)")
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = Path(args.results)
    if args.command == "check":
        for r in profile.runs:
            print(f"{state(profile, r, results):10s} {r.id}")
    elif args.command == "records":
        print(" ".join(str(run_dir(profile, r, results) / "record.json") for r in profile.runs))
    elif args.command == "prune":
        for path in prune(profile, results):
            print(f"stale: the profile changed since this run; moved to {path}")
    elif args.command == "run":
        if not args.run_id:
            parser.error("run needs a RUN-ID")
        jobs = args.jobs or jobs_from_make(os.environ.get("MAKEFLAGS", ""))
        try:
            print(f"run {args.run_id}", flush=True)
            execute(profile, profile.run(args.run_id), results, jobs)
        except (ValueError, RunFailed) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    else:
        text, complete = report(profile, results)
        print(text)
        return 0 if complete else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


def finish(profile: Profile, run: Run, results: Path, notebook_path: Path, record: Path) -> Path:
    """Move an executed notebook, what its run wrote beside its record (checkpoints/) and, last,
    its complete record into the run's folder; return the record's new path.

    Every move is an `os.replace`, so `record.json` appears only once everything it points to
    is in place; the folder the files came from is removed if it is the run's `partial/`.
    """
    folder = run_dir(profile, run, results)
    notebook_path, record = Path(notebook_path), Path(record)
    os.replace(notebook_path, folder / "train.ipynb")
    for entry in record.parent.iterdir():
        if entry.name not in (record.name, notebook_path.name) and not entry.name.startswith("."):
            target = folder / entry.name
            if target.is_dir():  # a previous attempt's checkpoints: replaced, not merged
                shutil.rmtree(target)
            os.replace(entry, target)
    os.replace(record, folder / "record.json")  # last: the run is now complete
    if record.parent == folder / "partial":
        shutil.rmtree(record.parent)
    return folder / "record.json"
