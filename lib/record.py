"""The run record, `record.json`: defined once here, written by `lib.train`, read by everyone else.

One run writes one record, atomically, after every epoch (`write`). Its shape:

    Record                          version 2 (records without a version are version 1)
      version, status, reason       status: running | complete | collapsed | failed (reason says why)
      params                        every field of `lib.params.Params`, as the run used them
      epochs: [Epoch, ...]          one row per finished epoch, in order
      versions, device, host, seed, started, wall_seconds
      machine                       hardware fingerprint (v2; None in v1): where the numbers were made
      data, energy                  the split's sizes and normalisation; energy constants
      resumed                       (only if it was interrupted) [{at, after_epoch}, ...]: when an
                                    attempt continued it after which recorded epoch (`lib.train`)

    Epoch
      epoch                         n, counted from 1
      train_loss, train_ce, sparsity_weight
      {val,test}_{accuracy, spikes, spikes_per_layer, synops, synops_per_layer, energy_pj}
      train_seconds, seconds
      checkpoint                    (v2) weights after this epoch, relative to the record's folder

A *finished* run (FINISHED) is "complete", with one row per planned epoch, or "collapsed":
stopped early by `lib.train`'s collapse rule (a hidden layer silent on validation for two
consecutive epochs, `params.stop_collapsed`), with fewer rows (at least 2) than planned; its
rows are points like any other. `load` is the one reader: it names the file in every error,
upgrades version 1 to the version 2 shape (machine None, no checkpoints), and with
`complete=True` refuses a record that is not a finished run (status, and the epoch count
against its own `params.epochs`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, TypedDict

VERSION = 2
STATUSES = ("running", "complete", "collapsed", "failed")
Status = Literal["running", "complete", "collapsed", "failed"]
FINISHED = ("complete", "collapsed")  # runs whose records are final: readers take their rows


class Epoch(TypedDict, total=False):
    epoch: int
    train_loss: float
    train_ce: float
    sparsity_weight: float
    val_accuracy: float
    val_spikes: float
    val_spikes_per_layer: list
    val_synops: float
    val_synops_per_layer: list
    val_energy_pj: float
    test_accuracy: float
    test_spikes: float
    test_spikes_per_layer: list
    test_synops: float
    test_synops_per_layer: list
    test_energy_pj: float
    train_seconds: float
    seconds: float
    checkpoint: str


class Machine(TypedDict, total=False):
    cpu: str  # processor model
    cpu_capability: str  # torch.backends.cpu.get_cpu_capability(): the SIMD kernels torch runs
    threads: int  # torch.get_num_threads() during the run
    torch: str
    cuda: str | None
    cudnn: int | None
    device_name: str
    platform: str
    python: str
    lif_kernel: str  # "fused" (lib.kernels) or "torch"; absent in records made before lib.kernels existed


class Record(TypedDict, total=False):
    version: int
    status: Status
    reason: str | None
    params: dict
    epochs: list[Epoch]
    versions: dict
    device: str
    host: str
    seed: int
    started: str
    wall_seconds: float | None
    machine: Machine | None
    data: dict
    energy: dict
    resumed: list[dict]


class RecordError(ValueError):
    """A record that cannot be read, or is not what the reader needs; names the file."""


def atomic(path: Path | str, write) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it to `path`: a reader
    never sees half a file (the project's one way to write outputs). Returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write(path: Path | str, record: Record) -> None:
    """Write the record as JSON, atomically."""
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    atomic(path, lambda tmp: tmp.write_text(text))


def upgrade(record: dict) -> Record:
    """The version 2 shape of a version 1 or 2 record (a new dict; the input is not changed)."""
    version = record.get("version", 1)
    if version not in (1, VERSION):
        raise ValueError(f"record version {version!r} is not one this code reads (1 or {VERSION})")
    return {**record, "version": VERSION, "machine": record.get("machine")}


def check(record: dict, complete: bool = False) -> None:
    """Raise ValueError if `record` lacks the keys every reader uses, or (complete=True) is not
    a finished run: status complete with one row for each of its planned epochs, or status
    collapsed with 2 to that many rows."""
    for key in ("status", "params", "epochs"):
        if key not in record:
            raise ValueError(f"no {key!r}")
    if record["status"] not in STATUSES:
        raise ValueError(f"unknown status {record['status']!r}; valid: {', '.join(STATUSES)}")
    if not complete:
        return
    if record["status"] not in FINISHED:
        raise ValueError(f"status is {record['status']!r}, not 'complete' or 'collapsed'")
    planned, done = record["params"].get("epochs"), len(record["epochs"])
    if record["status"] == "complete" and planned != done:
        raise ValueError(f"{done} epoch rows for a run of {planned} epochs")
    if record["status"] == "collapsed" and not (isinstance(planned, int) and 2 <= done <= planned):
        raise ValueError(f"a collapsed run with {done} epoch rows for a run of {planned} epochs (needs 2 to {planned})")
    if [e.get("epoch") for e in record["epochs"]] != list(range(1, done + 1)):
        raise ValueError("epoch rows are not 1, 2, ... in order")


def load(path: Path | str, complete: bool = False) -> Record:
    """The record at `path`, checked and upgraded; RecordError (naming `path`) otherwise."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        record = upgrade(record)
        check(record, complete)
    except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
        raise RecordError(f"{path}: {err}") from None
    return record


def silent(spikes_per_layer) -> bool:
    """The one collapse rule, on one evaluation's spikes per hidden layer: has a layer not one
    spike? The layers after a silent one receive nothing, so the readout is the same for every
    image (chance accuracy), and the surrogate passes no gradient back through it, whatever the
    layers before it still do. A run *collapses* when its last epoch is silent on validation
    (`lib.analysis.select.silent` maps this over points; `lib.train` stops a run silent two epochs running)."""
    return min(spikes_per_layer) == 0
