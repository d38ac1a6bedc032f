"""A sweep's state small enough to commit: its complete records and the checkpoints its tables select.

A paper-scale sweep outlives a machine (a session, a laptop's night, a cluster's spot nodes),
and its results folder is large: per run an executed notebook, the record and a checkpoint
after every epoch (about 5 MB a run at 20 epochs). Two parts of it are all that a sweep
continued elsewhere, or a reader rebuilding its tables, needs:

  - every complete record (`record.json`, tens of KB): `make reproduce` skips those runs, and
    the tables are computed from records alone;
  - the checkpoints of the points Tables 1 and 2 select now (`lib.export.models.index`), the only
    networks `make tables` may publish later. A point not selected now never will be: runs
    still to come only add candidates to a (schedule, seed), and the order among candidates
    is total (`lib.analysis.select.TIE_BREAK`), as long as the seed's reference, its baseline's best
    validation accuracy, is fixed. So for a seed without a complete baseline record every
    checkpoint of its runs is kept.

`pack` merges a results folder into an archive with the same layout (`<archive>/<profile>/
<run-id>/record.json` and `checkpoints/epoch-NNN.pt`), then removes from the archive the
checkpoints no longer selected; `unpack` copies the archive's complete runs into a results
folder where a run has no complete record. Neither overwrites a complete record: two that
differ are an ArchiveError naming both, raised before anything is written. Every file is
written atomically, each run's record after its checkpoints. Since the layout is the results
folder's, the tables can be rebuilt straight from an archive:

    python -m lib.sweep pack   paper --archive records     # results/paper/ -> records/paper/
    python -m lib.sweep unpack paper --archive records     # records/paper/ -> results/paper/
    make tables PROFILE=paper RESULTS_DIR=records
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import record, sweep
from ..analysis import report
from ..checkpoints import CHECKPOINTS
from ..sweep.profiles import Profile, chosen_path, load_profile
from . import models


class ArchiveError(ValueError):
    """Two different complete records of one run (results and archive); names both files."""


@dataclass
class Moved:
    records: list = field(default_factory=list)  # run ids whose record was copied
    checkpoints: int = 0  # checkpoint files copied
    removed: int = 0  # checkpoints dropped from the archive: no longer selected
    missing: list = field(default_factory=list)  # selected checkpoints found nowhere (paths)

    def __str__(self) -> str:
        text = (f"{len(self.records)} records and {self.checkpoints} checkpoints copied, "
                f"{self.removed} checkpoints no longer selected removed")
        return text + "".join(f"\n  missing: {m} (models cannot publish this point)" for m in self.missing)


def _profile(profile) -> Profile:
    return profile if isinstance(profile, Profile) else load_profile(profile)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    record.atomic(target, lambda tmp: shutil.copyfile(source, tmp))


def _complete(prof: Profile, root: Path) -> dict:
    """run id -> its complete record's path under `root`."""
    return {run.id: sweep.run_dir(prof, run, root) / "record.json" for run in prof.runs
            if sweep.state(prof, run, root) == "complete"}


def _check_conflicts(mine: dict, theirs: dict) -> None:
    for run_id in mine.keys() & theirs.keys():
        if mine[run_id].read_bytes() != theirs[run_id].read_bytes():
            raise ArchiveError(f"run {run_id} has two different complete records, {mine[run_id]} and "
                               f"{theirs[run_id]}: move one aside (nothing was copied)")


def _collected(prof: Profile, paths: dict) -> sweep.Collected:
    recs = [{**record.load(paths[run.id], complete=True), "run_id": run.id} for run in prof.runs if run.id in paths]
    return sweep.Collected(prof, recs, [])


def selected_checkpoints(collected: sweep.Collected) -> set[tuple[str, str]]:
    """(run id, checkpoint path relative to its folder) of what a later `make tables` may publish
    from these records: the points Tables 1 and 2 select now, and every checkpoint of a seed
    that has no complete baseline yet (module docstring)."""
    if collected.profile.params.get("val_fraction") == 0:  # nothing is selected: keep the chosen epochs
        epochs = report.chosen_epochs(chosen_path(collected.profile.chosen))
        point = {rec["run_id"]: (rec["params"]["schedule"], rec["params"]["sigma0"]) for rec in collected.records}
        return {(rec["run_id"], e["checkpoint"]) for rec in collected.records for e in rec["epochs"]
                if e.get("checkpoint") and e["epoch"] in epochs.get(point[rec["run_id"]], ())}
    frame = models.index(collected)
    by_point = models.checkpoint_paths(collected)
    published = frame[frame["state_dict"] != ""]
    keep = {(row.run_id, by_point[(row.run_id, int(row.epoch))]) for row in published.itertuples()}
    seeds = {rec["params"]["seed"] for rec in collected.records if rec["params"]["schedule"] == "baseline"}
    for rec in collected.records:
        if rec["params"]["seed"] not in seeds:
            keep.update((rec["run_id"], e["checkpoint"]) for e in rec["epochs"] if e.get("checkpoint"))
    return keep


def _run_dirs(prof: Profile, root: Path) -> dict:
    return {run.id: sweep.run_dir(prof, run, root) for run in prof.runs}


def pack(profile, results, archive) -> Moved:
    """Merge the complete runs of `results` into `archive`, keeping only the checkpoints that
    the merged records select (module docstring)."""
    prof, results, archive = _profile(profile), Path(results), Path(archive)
    here, there = _complete(prof, results), _complete(prof, archive)
    _check_conflicts(here, there)
    keep = selected_checkpoints(_collected(prof, {**there, **here}))
    source, target, moved = _run_dirs(prof, results), _run_dirs(prof, archive), Moved()
    for run_id, name in sorted(keep):
        dest = target[run_id] / name
        if not dest.is_file():
            if (source[run_id] / name).is_file():
                _copy(source[run_id] / name, dest)
                moved.checkpoints += 1
            else:
                moved.missing.append(str(dest))
    for run in prof.runs:  # each record after its checkpoints
        if run.id in here and run.id not in there:
            _copy(here[run.id], target[run.id] / "record.json")
            moved.records.append(run.id)
    for run_id in {**there, **here}:
        for old in sorted((target[run_id] / CHECKPOINTS).glob("*.pt")):
            if (run_id, f"{CHECKPOINTS}/{old.name}") not in keep:
                old.unlink()
                moved.removed += 1
    return moved


def unpack(profile, archive, results) -> Moved:
    """Copy every complete run of `archive` that has no complete record in `results` into it:
    its checkpoints, then its record (a run in progress in a sweep here is left alone)."""
    prof, archive, results = _profile(profile), Path(archive), Path(results)
    there, here = _complete(prof, archive), _complete(prof, results)
    _check_conflicts(here, there)
    moved = Moved()
    for run in prof.runs:
        if run.id not in there or run.id in here or sweep.state(prof, run, results) == "running":
            continue
        source, target = sweep.run_dir(prof, run, archive), sweep.run_dir(prof, run, results)
        for checkpoint in sorted((source / CHECKPOINTS).glob("*.pt")):
            _copy(checkpoint, target / CHECKPOINTS / checkpoint.name)
            moved.checkpoints += 1
        _copy(there[run.id], target / "record.json")
        moved.records.append(run.id)
    return moved
