"""Sweeps: a profile's runs (`lib.sweep.profiles`), each one executed `notebooks/train.ipynb`.

This package is the sweep layer: this module (run folders, their states, execution, collection),
`profiles` (a sweep's YAML), `ray_executor` (the runs as Ray tasks on a cluster) and `cli` (the
commands, `python -m lib.sweep ...`). It imports only the core (`lib.train`, `lib.record`, `lib.data`).

Run `<run-id>` of profile `<profile>` lives in `results/<profile>/<run-id>/` (with factors,
`results/<profile>/<variant>/<run-id>/`).

Each run is executed in `partial/` of its folder, holding `.lock` there (`fcntl.flock`:
the kernel releases it when the process dies, so a crashed sweep never blocks the next;
a second sweep skips a run in progress). Only a complete run's executed notebook and then
its `record.json` are moved up (`finish`, atomic). So `record.json` exists iff the run is
complete: it is make's target, an interrupted sweep resumes where it stopped (a run in flight
after its last recorded epoch, `lib.checkpoints.resumable`), and a failed
run leaves `partial/train.ipynb` to read. A run's state (`state`): complete; stale (its
record's parameters differ from the profile's now); unreadable (a `record.json`
`lib.record.load` refuses); failed (with the run's own error); running (locked by another
sweep); incomplete (interrupted); pending. `prune` moves stale and unreadable runs to
`<profile>/.stale/` and `<profile>/.unreadable/` (nothing is deleted), to be trained again.
`collect` is the one reader of a sweep's records, for the tables, the study and `status`.

The commands (`python -m lib.sweep ...`, which make calls) are `lib.sweep.cli`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import record
from ..checkpoints import CHECKPOINTS
from ..params import Params
from .profiles import Profile, Run, load_profile, profile_path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
TRAIN_NOTEBOOK = NOTEBOOKS / "train.ipynb"
LOCK = ".lock"


# ---------------------------------------------------------------------------
# Where runs live, and their state.


def run_dir(profile: Profile, run: Run, results: Path) -> Path:
    return Path(results) / profile.name / run.id


def run_params(profile: Profile, run: Run, results: Path, jobs: int = 1) -> dict:
    """The notebook parameters of one run. Unset `threads` share the CPU cores among `jobs`."""
    params = profile.variant(run.variant).params
    threads = params.get("threads") or max(1, (os.cpu_count() or 1) // max(1, jobs))
    return {
        **params,
        "schedule": run.schedule,
        "sigma0": run.sigma0,
        "seed": run.seed,
        "threads": threads,
        "output_dir": str((run_dir(profile, run, results) / "partial").resolve()),
    }


# Settings a record may differ in from its profile without its numbers changing.
NOT_COMPARED = ("threads", "output_dir", "progress", "data_dir", "cache_dir", "device", "eval_batch_size")


def stale_keys(profile: Profile, run: Run, rec: dict) -> list[str]:
    """The run parameters on which a complete record disagrees with the profile as it is now
    (a parameter the record predates counts as its default)."""
    defaults = dataclasses.asdict(Params())
    expected = {**defaults, **profile.variant(run.variant).params,
                "schedule": run.schedule, "sigma0": run.sigma0, "seed": run.seed}
    recorded = {**defaults, **rec["params"]}
    return sorted(k for k, v in expected.items() if k not in NOT_COMPARED and recorded[k] != v)


def locked(folder: Path) -> bool:
    """Whether a live process holds the run folder's lock (see `run_lock`)."""
    try:
        fd = os.open(folder / "partial" / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: probes never block one another
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: Path, wait: float = 2.0):
    """Hold `folder/partial/.lock` exclusively while the block runs; yields False (without
    waiting for it) when another live process holds it. `wait` covers a `locked` probe's
    instant; the kernel drops the lock of a dead process, so an orphan never blocks."""
    path = folder / "partial" / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() > deadline:
                yield False
                return
            time.sleep(0.1)
            continue
        try:  # the previous holder removes the file when done: lock the file that is there now
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def notebook_error(notebook: Path) -> str | None:
    """'Type: message' of the first error output of an executed notebook, if any."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError, nbformat.ValidationError):  # absent, not JSON, not a notebook
        return None
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {out.get('evalue')}"
    return None


@dataclass(frozen=True)
class RunState:
    state: str  # complete | stale | unreadable | failed | running | incomplete | pending
    detail: str  # why (stale keys, the load error, the run's own error); "" when nothing to say
    record: dict | None  # the complete record (state complete or stale)


def inspect(profile: Profile, run: Run, results: Path) -> RunState:
    """The state of one run (module docstring), with its detail and its complete record."""
    folder = run_dir(profile, run, results)
    if (folder / "record.json").is_file():
        try:
            rec = record.load(folder / "record.json", complete=True)
        except record.RecordError as err:
            return RunState("unreadable", str(err), None)
        keys = stale_keys(profile, run, rec)
        return RunState("stale", f"differs in {', '.join(keys)}", rec) if keys else RunState("complete", "", rec)
    partial = folder / "partial"
    if not partial.exists():
        return RunState("pending", "", None)
    if locked(folder):
        return RunState("running", "in progress in another sweep", None)
    reason = inspect_failure(partial)  # a running record has none: then only the notebook's error
    return RunState("failed", reason, None) if reason else RunState("incomplete", interrupted(partial), None)


def interrupted(partial: Path) -> str:
    """How far an interrupted run got: the epochs its partial record holds (it resumes after them)."""
    try:
        rec = record.load(partial / "record.json")
    except record.RecordError:
        return "interrupted"
    done = len(rec["epochs"])
    return f"interrupted after epoch {done} of {rec['params'].get('epochs')}" if done else "interrupted"


def state(profile: Profile, run: Run, results: Path) -> str:
    return inspect(profile, run, results).state


def _move_aside(folder: Path, where: str) -> Path:
    target = folder.parent / where / folder.name
    n = 1
    while target.exists():
        n += 1
        target = folder.parent / where / f"{folder.name}-{n}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(folder, target)
    return target


def prune(profile: Profile, results: Path) -> list[tuple[str, str, Path]]:
    """Move stale and unreadable runs' folders aside, to `.stale/` and `.unreadable/` beside
    them, so that they are trained again as the profile now says; nothing is deleted.
    Returns (state, detail, where it went) per run moved."""
    moved = []
    for run in profile.runs:
        s = inspect(profile, run, results)
        if s.state in ("stale", "unreadable"):
            moved.append((s.state, s.detail, _move_aside(run_dir(profile, run, results), f".{s.state}")))
    return moved


# ---------------------------------------------------------------------------
# Executing runs.


def jobs_from_make(makeflags: str) -> int:
    """N of `make -j N`, which GNU make puts into MAKEFLAGS for recipes (1 without -j)."""
    match = re.search(r"(?:^|\s)-j(\d+)", makeflags)
    return int(match.group(1)) if match else 1


class RunFailed(RuntimeError):
    """A run did not complete; the message gives its own error and names the notebook to read."""


def _replace(source: Path, target: Path) -> None:
    """os.replace, or across file systems a copy beside `target` renamed into place."""
    try:
        os.replace(source, target)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        shutil.copytree(source, tmp) if source.is_dir() else shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        shutil.rmtree(source) if source.is_dir() else source.unlink()


def extras(partial: Path) -> list[Path]:
    """What a run wrote in `partial/` beside its notebook and record (checkpoints/), for `finish`."""
    return [e for e in partial.iterdir() if e.name not in (LOCK, "train.ipynb", "record.json")]


def finish(profile: Profile, run: Run, results: Path, notebook_path: Path, rec, extras=()) -> Path:
    """Move an executed notebook (and `extras`, other outputs such as checkpoints) into the run
    folder, then the complete record, last: `rec` is a `record.json` path (moved) or a record
    (written atomically). RunFailed if the record is not finished (complete or collapsed). Returns the record's path.
    Any executor (this module's `execute`, a cluster's driver) ends a run through here."""
    folder = run_dir(profile, run, results)
    if isinstance(rec, (str, Path)):
        checked = record.load(rec)
    else:
        checked = record.upgrade(rec)
        record.check(checked)
    if checked["status"] not in record.FINISHED:
        raise RunFailed(f"run {run.id} {checked['status']}: {checked.get('reason')}; read {notebook_path}")
    try:
        record.check(checked, complete=True)
    except ValueError as err:
        raise RunFailed(f"run {run.id}: record not complete: {err}") from None
    folder.mkdir(parents=True, exist_ok=True)
    _replace(Path(notebook_path), folder / "train.ipynb")
    for extra in map(Path, extras):
        _replace(extra, folder / extra.name)
    target = folder / "record.json"
    if isinstance(rec, (str, Path)):
        _replace(Path(rec), target)
    else:
        record.write(target, rec)
    return target  # the run is now complete


def execute(profile: Profile, run: Run, results: Path, jobs: int = 1, log_output: bool = False) -> Path | None:
    """Execute one run through papermill; return its complete record's path, or None when
    another live sweep holds the run (it is skipped).

    Runs in `partial/`, then `finish` moves the notebook and, last, the record up. An
    interrupted attempt's record and checkpoints stay there: `lib.train.run` continues it after
    its last recorded epoch when it can (`lib.checkpoints.resumable`), and starts over otherwise.
    """
    import papermill

    folder = run_dir(profile, run, results)
    partial = folder / "partial"
    with run_lock(folder) as mine:
        if not mine:
            return None
        if (folder / "record.json").is_file():  # another sweep finished it while we waited
            return folder / "record.json"
        for entry in partial.iterdir():
            if entry.name not in (LOCK, "record.json", CHECKPOINTS):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        notebook = partial / "train.ipynb"
        try:
            papermill.execute_notebook(
                str(TRAIN_NOTEBOOK), str(notebook), parameters=run_params(profile, run, results, jobs),
                progress_bar=False, log_output=log_output, cwd=str(REPO),
            )
        except Exception as err:
            reason = inspect_failure(partial) or f"{getattr(err, 'ename', type(err).__name__)}: " \
                f"{getattr(err, 'evalue', err)}"
            raise RunFailed(f"run {run.id} failed: {reason}; read {notebook}") from err
        path = finish(profile, run, results, notebook, partial / "record.json", extras(partial))
    shutil.rmtree(partial, ignore_errors=True)
    return path


def inspect_failure(partial: Path) -> str | None:
    """The run's own error: its partial record's reason, else the executed notebook's error."""
    try:
        rec = record.load(partial / "record.json")
    except record.RecordError:
        rec = None
    if rec is not None and rec.get("reason"):
        return rec["reason"]
    return notebook_error(partial / "train.ipynb")


# ---------------------------------------------------------------------------
# Reading a sweep: the one collector.


@dataclass
class Collected:
    profile: Profile
    records: list  # complete records (lib.record.load), each with its "run_id"
    missing: list  # a dict per run without a complete record: run_id, state, detail, notebook


def collect(profile: Profile | str, results="results") -> Collected:
    """The complete records of a profile's runs (checked by `lib.record.load(complete=True)`,
    stale ones left out), and what is missing, in the profile's run order."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    records, missing = [], []
    for run in prof.runs:
        s = inspect(prof, run, Path(results))
        if s.state == "complete":
            records.append({**s.record, "run_id": run.id})
        else:
            notebook = run_dir(prof, run, Path(results)) / "partial" / "train.ipynb"
            missing.append({"run_id": run.id, "state": s.state, "detail": s.detail,
                            "notebook": str(notebook) if notebook.exists() else ""})
    return Collected(prof, records, missing)


def report(collected: Collected) -> tuple[str, bool]:
    """A line per run that is not complete, with why and the notebook to read; (text, all complete?)."""
    lines = []
    for m in collected.missing:
        why = f": {m['detail']}" if m["detail"] else ""
        where = f"  (read {m['notebook']})" if m["notebook"] else ""
        lines.append(f"  {m['state']:10s} {m['run_id']}{why}{where}")
    total = len(collected.profile.runs)
    head = f"profile {collected.profile.name}: {len(collected.records)} of {total} runs complete"
    return "\n".join([head, *lines]), not collected.missing


def tables(profile: str, results: Path, figures: Path) -> Path | None:
    """Execute the profile's report notebook (tables.ipynb; ablations.ipynb with factors; final.ipynb
    without a validation split) on its complete records into results/<profile>/; None (and nothing
    run) without a complete record."""
    import papermill

    path = profile_path(profile).resolve()
    collected = collect(str(path), results)
    if not collected.records:
        return None
    if collected.profile.has_factors:
        name = "ablations"
    else:  # no validation split (val_fraction 0): its chosen points are reported, nothing is selected
        name = "final" if collected.profile.params.get("val_fraction") == 0 else "tables"
    out = Path(results) / collected.profile.name / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(out), progress_bar=False, cwd=str(REPO),
        parameters={"profile": str(path), "results_dir": str(Path(results).resolve()),
                    "figures_dir": str(Path(figures).resolve())},
    )
    return out


def check_data(profile: Profile, results: Path) -> None:
    """DataNotFoundError (naming CIFAR10_DIR and both layouts) if a run must train and finds no data."""
    from .. import data

    if any(state(profile, r, results) != "complete" for r in profile.runs):
        data.resolve_data_dir(profile.params.get("data_dir") or None)
