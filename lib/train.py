"""One experiment: train a SpikingLeNet with the spike-count loss, record every epoch.

    loss = cross_entropy(logits, target) + w(schedule, sigma0, n, N) * spikeCount   (eqs. 1-8)

or, for the baselines of `lib.schedules.REGULARISERS`, w * penalty(per-neuron counts) of
`lib.penalties`. After every epoch the validation and test splits are evaluated (accuracy,
and per sample spikes, SynOps and energy of `lib.energy`, per layer too) and
`record.json` (the shape of `lib.record`) is rewritten atomically in the output directory,
so a crash loses at most the epoch in progress. With `val_fraction` 0 the run trains on all
50,000 training images and has no validation split: `data.val` is 0, every `val_*` column is
null, and the selection rules refuse such records (they choose on validation only); the test
split is the same 10,000 images. Such a run needs `stop_collapsed` False (the collapse stop
watches validation). The record's `status` is "running", then "complete", "collapsed"
(below) or "failed" with the reason (bad input never gets that far:
it is rejected by `Params.check` before any data is loaded). An output directory that
already holds a finished (complete or collapsed) record is refused before any work: a
finished run is never overwritten.

A run *collapses* when a hidden layer has not one validation spike (`lib.record.silent`, the
one collapse rule, applied to the epoch rows) in two consecutive epochs: the layers after it
receive nothing and the surrogate passes no gradient back through it, and the ablation study
(figures/ablations/README.md) found no such run recovering. With `stop_collapsed` (the default) it
stops there, before its last planned epoch (a run that reaches it is complete, collapsed or
not: `lib.analysis.select.collapsed` finds it), status "collapsed", reason naming the epochs: its
rows are final points like a complete run's, and the epochs it skips would only have added more
silent points.

A run that diverged is "failed" with the reason "diverged: ...". Diverged means: a
batch's loss is NaN or infinite, or an epoch's mean training cross-entropy is above
10 ln 10 = 23.0 (EXPLODED_CE), ten times that of a network guessing uniformly (ln 10),
from epoch 1 on: these networks start near ln 10 and go down, while an exploded one
(lr 1e6) trains on at chance accuracy with a loss in the millions.

Where the rest lives: the parameters and the network they describe in `lib.params`, the weights
after every epoch and the resume of an interrupted run in `lib.checkpoints`, the numbers of each
epoch row in `lib.evaluate`, the device and the machine fingerprint in `lib.machine`. So `run`
reads as the training loop it is.

    from lib.train import run
    record = run(schedule="linear", sigma0=3e-6, epochs=10, output_dir="results/x")
    record = run(schedule="linear", sigma0=3e-6, epochs=10, output_dir="results/x")
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import platform
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__, data, energy, penalties, schedules
from . import record as records
from .checkpoints import (
    CHECKPOINTS,
    RESUME,
    checkpoint_name,
    refuse_complete,
    resumable,
    save_checkpoint,
    save_resume_state,
)
from .evaluate import evaluate_splits
from .machine import keep_freed_memory, machine, resolve_device
from .params import DEFAULT_SIGMA0, OPTIMISERS, Params, initial_network
from .snn import LAYERS, spike_count


def collapsed(rows: list) -> bool:
    """Whether the last two epoch rows are both silent on validation (`lib.record.silent`)."""
    return len(rows) >= 2 and all(records.silent(row["val_spikes_per_layer"]) for row in rows[-2:])


EXPLODED_CE = 10 * math.log(10)  # the divergence rule of the module docstring


class Diverged(RuntimeError):
    """The training loss became NaN or infinite, or exploded (EXPLODED_CE)."""


def sparsity_penalty(model, params: Params):
    """`per_neuron, penalty`: the term w multiplies, and whether it needs the per-neuron counts
    of `model.activity` (the regularisers) or only the per-layer totals of `model(images)`."""
    name = schedules.penalty(params.schedule)
    if name is None:  # the paper's spikeCount (eq. 3)
        return False, lambda spikes: spike_count(spikes, params.spike_normalisation, params.num_steps)
    return True, penalties.build(name, model, params.spike_bound, params.layer_weights)


def train_epoch(model, optimiser, split, params: Params, epoch: int, generator) -> dict:
    """One epoch of the spike-count loss; returns the epoch's mean losses and weight."""
    model.train()
    n_batches = data.num_batches(split, params.batch_size)
    sums = torch.zeros(3, dtype=torch.float64)  # loss, ce, weight: summed over batches
    batches = data.batches(split, params.batch_size, generator)
    if params.progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=n_batches, desc=f"epoch {epoch}/{params.epochs}", leave=False)
    per_neuron, penalty = sparsity_penalty(model, params)
    for b, (images, labels) in enumerate(batches):
        images = data.augment(images, params.augment, generator)  # "none" draws nothing: same batch order
        if params.lr_schedule != "constant":  # constant: the optimiser's lr is never touched
            for group in optimiser.param_groups:
                group["lr"] = lr_at(params, epoch, b, n_batches)
        w = schedules.weight(params.schedule, params.sigma0, epoch, params.epochs, b, n_batches, params.granularity)
        logits, spikes = model.activity(images) if per_neuron else model(images)  # per-neuron | per-layer
        ce = F.cross_entropy(logits, labels)
        loss = ce + w * penalty(spikes) if w else ce
        if not torch.isfinite(loss):
            raise Diverged(f"diverged: loss is {loss.item()} at epoch {epoch}, batch {b}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        sums += torch.tensor([loss.item(), ce.item(), w], dtype=torch.float64)
    mean = (sums / n_batches).tolist()
    if mean[1] > EXPLODED_CE:
        raise Diverged(
            f"diverged: mean training cross-entropy {mean[1]:.4g} at epoch {epoch} is above "
            f"10 ln 10 = {EXPLODED_CE:.1f}, ten times chance level"
        )
    return {"train_loss": mean[0], "train_ce": mean[1], "sparsity_weight": mean[2]}


def lr_at(params: Params, epoch: int, batch: int, n_batches: int) -> float:
    """The learning rate of batch `batch` (from 0) of epoch `epoch` (from 1) of `n_batches`:

        constant   lr
        cosine     lr * (1 + cos(pi * t / (N * n_batches))) / 2,   t = (epoch - 1) * n_batches + batch

    cosine annealing without restarts (Loshchilov & Hutter 2017, SGDR, eq. 5 with lr_min = 0, one
    period over the N planned epochs; torch's CosineAnnealingLR stepped every batch): lr at the first
    batch, lr / 2 halfway, just above 0 at the last. A run that stops early (collapsed) has simply
    not reached the end of its schedule."""
    if params.lr_schedule == "constant":
        return params.lr
    t = (epoch - 1) * n_batches + batch
    return params.lr * (1 + math.cos(math.pi * t / (params.epochs * n_batches))) / 2


def run(params: Params | dict | None = None, **overrides) -> dict:
    """Train one experiment and return its record (also written to output_dir/record.json)."""
    values = dataclasses.asdict(params) if isinstance(params, Params) else dict(params or {})
    params = Params.from_dict({**values, **overrides}).check()
    if params.sigma0 is None:
        params = dataclasses.replace(params, sigma0=DEFAULT_SIGMA0[params.schedule])
    if params.schedule == "baseline":  # sigma0 has no effect there; record it as the paper does (0)
        params = dataclasses.replace(params, sigma0=0.0)
    device = resolve_device(params.device)
    out = Path(params.output_dir)
    refuse_complete(out)
    data_dir = data.resolve_data_dir(params.data_dir or None)  # no CIFAR-10: an error before any record
    data.check_sizes(data_dir, params.val_fraction, params.train_size, params.val_size, params.test_size)
    keep_freed_memory()
    if params.threads:
        torch.set_num_threads(params.threads)
    fingerprint = machine(device)
    previous = resumable(out, params, fingerprint)
    record: records.Record = {
        "version": records.VERSION,
        "params": dataclasses.asdict(params),
        "status": "running",
        "reason": None,
        "epochs": [],
        "versions": {"lib": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "device": str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})",
        "host": platform.node(),
        "seed": params.seed,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": None,
        "machine": fingerprint,
    }
    start = time.perf_counter()
    if previous:  # the attempts so far: their rows, start and time
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        after = previous.record["epochs"][-1]["epoch"]
        record.update(epochs=previous.record["epochs"], started=previous.record["started"],
                      resumed=[*previous.record.get("resumed", []), {"at": now, "after_epoch": after}])
        start -= previous.record.get("wall_seconds") or 0.0
    else:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # an earlier attempt's weights
    records.write(out / "record.json", record)

    try:  # from here on, whatever goes wrong is written to the record: it never stays "running"
        cifar = data.load_cifar10(data_dir, params.cache_dir or None)
        splits = data.prepare(
            cifar, params.seed, params.val_fraction, params.train_size, params.val_size, params.test_size, device
        )
        record["data"] = {
            "dir": str(data_dir),
            "train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
            "mean": splits.mean, "std": splits.std,
        }
        torch.manual_seed(params.seed)
        model = initial_network(params).to(device)
        record["energy"] = energy.reference(model)
        optimiser = OPTIMISERS[params.optimiser](model.parameters(), params.lr)
        generator = torch.Generator().manual_seed(params.seed)
        first = 1
        if previous:
            model.load_state_dict(previous.weights)
            optimiser.load_state_dict(previous.state["optimiser"])
            generator.set_state(previous.state["generator"])
            torch.set_rng_state(previous.state["torch"])
            if previous.state["cuda"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(previous.state["cuda"])
            first = previous.state["epoch"] + 1

        for epoch in range(first, params.epochs + 1):
            t0 = time.perf_counter()
            row = {"epoch": epoch, **train_epoch(model, optimiser, splits.train, params, epoch, generator)}
            train_seconds = time.perf_counter() - t0
            if len(splits.val):
                val, test = evaluate_splits(model, [splits.val, splits.test], params.eval_batch_size)
            else:  # val_fraction 0: no validation split, its columns are null
                (test,) = evaluate_splits(model, [splits.test], params.eval_batch_size)
                val = dict.fromkeys(test)
            row.update({f"val_{k}": v for k, v in val.items()})
            row.update({f"test_{k}": v for k, v in test.items()})
            row.update(train_seconds=train_seconds, seconds=time.perf_counter() - t0)
            save_checkpoint(model, out / checkpoint_name(epoch))  # before the row that names it
            save_resume_state(out, epoch, optimiser, generator)
            row["checkpoint"] = checkpoint_name(epoch)
            record["epochs"].append(row)
            record["wall_seconds"] = time.perf_counter() - start
            records.write(out / "record.json", record)
            if params.progress:
                print(
                    f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  w {row['sparsity_weight']:.3g}  "
                    + (f"val acc {row['val_accuracy']:.4f}  val spikes {row['val_spikes']:.0f}  "
                       if len(splits.val) else f"test acc {row['test_accuracy']:.4f}  (no validation)  ")
                    + f"({row['seconds']:.1f} s)",
                    flush=True,
                )
            if params.stop_collapsed and epoch < params.epochs and collapsed(record["epochs"]):
                silent = [LAYERS[i] for i, n in enumerate(row["val_spikes_per_layer"]) if n == 0]
                record.update(status="collapsed", reason=(
                    f"collapsed: a hidden layer silent on validation in epochs {epoch - 1} and {epoch} "
                    f"({', '.join(silent)} in epoch {epoch})"))
                break
        else:
            record["status"] = "complete"
    except Diverged as err:
        record.update(status="failed", reason=str(err))
    except BaseException as err:  # recorded, then raised: a crash never leaves "running"
        record.update(status="failed", reason=f"{type(err).__name__}: {err}")
        record["wall_seconds"] = time.perf_counter() - start
        records.write(out / "record.json", record)
        raise
    record["wall_seconds"] = time.perf_counter() - start
    records.write(out / "record.json", record)
    (out / RESUME).unlink(missing_ok=True)  # finished or diverged: nothing to resume
    return record
