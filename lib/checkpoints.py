"""A run's weights after every epoch, and what an interrupted run needs to resume.

Before each epoch's row is written, the network's weights after that epoch are saved
(`state_dict`, atomically) to `checkpoints/epoch-NNN.pt` beside the record, and the row
names that file (`checkpoint`, relative to the record's folder); `load_checkpoint`
rebuilds the network of any recorded epoch. Beside them `checkpoints/resume.pt` holds what
else the next epoch depends on (the optimiser's state, the batch generator's and torch's
random state), overwritten every epoch and removed when the run ends. An interrupted run
(status "running", or "failed" by a crash, not by divergence) *resumes*: run again into the
same folder with the same parameters on the same machine (`resumable`), it continues after
its last recorded epoch instead of starting over, with the numbers of an uninterrupted run
(tests/test_train.py checks them equal); `resumed` in the record lists when and after which
epoch, `wall_seconds` adds up the attempts (to their last recorded epochs: the epoch in flight
when one stopped is lost). Anything else in the folder starts a fresh run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from . import record as records
from .params import Params, initial_network
from .snn import SpikingLeNet

CHECKPOINTS = "checkpoints"


def checkpoint_name(epoch: int) -> str:
    """Where the weights after `epoch` are saved, relative to the record's folder."""
    return f"{CHECKPOINTS}/epoch-{epoch:03d}.pt"


def save_checkpoint(model, path: Path) -> None:
    """The model's state_dict to a temporary file beside `path`, then renamed: never half a file."""
    records.atomic(path, lambda tmp: torch.save(model.state_dict(), tmp))


class CheckpointError(ValueError):
    """A checkpoint that is not recorded, missing or unreadable; the message names the file."""


def load_checkpoint(record_dir, epoch: int) -> SpikingLeNet:
    """The network of the run in `record_dir` after `epoch`, on the CPU, in eval mode.

    Rebuilt from the record's params, then given the weights its epoch row names; any run
    status works (the epochs a failed or running run finished are saved too)."""
    record_dir = Path(record_dir)
    rec = records.load(record_dir / "record.json")
    rows = [row for row in rec["epochs"] if row.get("epoch") == epoch]
    if not rows:
        done = [row.get("epoch") for row in rec["epochs"]]
        raise CheckpointError(f"{record_dir / 'record.json'}: no epoch {epoch!r} (recorded: {done})")
    if "checkpoint" not in rows[0]:
        raise CheckpointError(f"{record_dir / 'record.json'}: epoch {epoch} names no checkpoint (a version 1 record)")
    return trained_network(rec["params"], record_dir / rows[0]["checkpoint"], f"epoch {epoch} of the record")


def trained_network(params: dict, path: Path, named_by: str, kind: str = "checkpoint") -> SpikingLeNet:
    """The network of run parameters `params` with the weights saved at `path`, on the CPU, in
    eval mode; CheckpointError naming `path` (and `named_by`, what listed it) when it is missing
    or unreadable."""
    model = initial_network(Params.from_dict(params))
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {kind} missing (named by {named_by})") from None
    except Exception as err:  # torch.load's errors for a damaged file vary (EOFError, RuntimeError, pickle...)
        raise CheckpointError(f"{path}: cannot read the {kind} ({type(err).__name__}: {err})") from None
    return model.eval()


RESUME = f"{CHECKPOINTS}/resume.pt"
# Params that may differ between an interrupted attempt and the one that resumes it: where
# things are and what is printed. Everything else (threads too) must be equal.
RESUME_MAY_DIFFER = ("output_dir", "progress", "data_dir", "cache_dir")


def save_resume_state(out: Path, epoch: int, optimiser, generator: torch.Generator) -> None:
    """What the epochs after `epoch` depend on besides the weights, atomically to `out/RESUME`."""
    state = {"epoch": epoch, "optimiser": optimiser.state_dict(), "generator": generator.get_state(),
             "torch": torch.get_rng_state(),
             "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    records.atomic(out / RESUME, lambda tmp: torch.save(state, tmp))


@dataclass
class Interrupted:
    """An interrupted attempt `run` continues: its record, the weights and state after its last epoch."""

    record: dict
    weights: dict
    state: dict


def resumable(out: Path, params: Params, fingerprint: records.Machine) -> Interrupted | None:
    """The interrupted attempt in `out` that a run of `params` on `fingerprint` continues, or None.

    It must be unfinished and not diverged (a diverged run would only diverge again), of the same
    parameters but RESUME_MAY_DIFFER, made on the same machine fingerprint (threads included: the
    kernels' sums depend on them), and its resume state must be of its last recorded epoch (a crash
    between writing the state and the row leaves the state an epoch ahead: it starts over). Unreadable
    files mean None, never an error: the fresh run replaces them."""
    try:
        rec = records.load(out / "record.json")
    except records.RecordError:
        return None
    if rec["status"] not in ("running", "failed") or str(rec.get("reason") or "").startswith("diverged"):
        return None
    ours = {k: v for k, v in dataclasses.asdict(params).items() if k not in RESUME_MAY_DIFFER}
    recorded = {**dataclasses.asdict(Params()), **rec["params"]}  # a parameter it predates: its default
    theirs = {k: v for k, v in recorded.items() if k not in RESUME_MAY_DIFFER}
    rows = rec["epochs"]
    if ours != theirs or rec.get("machine") != fingerprint or not 0 < len(rows) < params.epochs:
        return None
    try:
        state = torch.load(out / RESUME, map_location="cpu", weights_only=True)
        weights = torch.load(out / rows[-1]["checkpoint"], map_location="cpu", weights_only=True)
    except Exception:  # missing or damaged (torch.load's errors vary): start over
        return None
    if state.get("epoch") != rows[-1]["epoch"]:
        return None
    return Interrupted(rec, weights, state)


def refuse_complete(out: Path) -> None:
    """FileExistsError if `out` holds a finished record (lib.record.FINISHED): never replaced."""
    path = out / "record.json"
    if not path.exists():
        return
    try:
        status = records.load(path)["status"]
    except records.RecordError:  # unreadable: nothing finished to protect
        return
    if status in records.FINISHED:
        raise FileExistsError(
            f"{path} is a {status} run; it is never overwritten. Choose another output_dir, "
            "or move that folder away to train it again."
        )
