"""One experiment: train a SpikingLeNet with the spike-count loss, record every epoch.

    loss = cross_entropy(logits, target) + w(schedule, sigma0, n, N) * spikeCount   (eqs. 1-8)

or, for the baselines of `lib.schedules.REGULARISERS`, w * penalty(per-neuron counts) of
`lib.penalties`. After every epoch the validation and test splits are evaluated (accuracy,
and per sample spikes, SynOps and energy of `lib.energy`, per layer too) and
`record.json` is rewritten atomically in the output directory, so a crash loses at most
the epoch in progress. Its `status` is "running", then "complete", or "failed" with the
reason (bad input never gets that far: it is rejected by `Params.check` before any data
is loaded).

    from lib.train import run
    record = run(schedule="linear", sigma0=3e-6, epochs=10, output_dir="results/x")
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__, data, energy, penalties, schedules
from .snn import ENCODINGS, LAYERS, SPIKE_NORMALISATIONS, SURROGATES, LIFParameters, SpikingLeNet, spike_count


@dataclass
class Params:
    """Every setting of one run; the defaults are a sensible full run (DESIGN.md sec. 3)."""

    schedule: str = "baseline"  # sparsity weighting: lib.schedules.NAMES (the paper's, then REGULARISERS)
    sigma0: float = 1e-6  # scale of the spike-count loss (eqs. 4-8); the baseline ignores it
    epochs: int = 20  # N, the number of epochs the run is planned for
    granularity: str = "batch"  # how alternating schedules alternate: batch | epoch
    spike_normalisation: str = "sample_total"  # spikeCount unit: sample_total | per_neuron_step
    spike_bound: float = 1.0  # upper_bound schedule only: spikes per neuron per inference that cost nothing
    layer_weights: str = "1,1,1,1"  # layer_weighted schedule only: weights of lif1..lif4 spikes, comma-separated
    num_steps: int = 8  # T, simulation time steps per image
    beta: float = 0.9  # membrane decay per step
    threshold: float = 1.0  # firing threshold
    encoding: str = "direct"  # input encoding: direct | poisson
    surrogate: str = "piecewise_linear"  # surrogate gradient: piecewise_linear | fast_sigmoid
    surrogate_gamma: float = 1.0  # surrogate height at threshold
    surrogate_scale: float = 1.0  # triangle half-width, or fast-sigmoid slope
    detach_reset: bool = True  # no gradient through the reset (as SpyTorch)
    lr: float = 1e-3  # learning rate of the optimiser
    optimiser: str = "adam"  # adam | sgd (SGD with momentum 0.9: steps scale with the gradient, unlike Adam)
    init_gain: float = 1.0  # multiplies the initial weights of conv2, fc1, fc2; > 1 makes lif2-lif4 fire at the start
    batch_size: int = 64  # training batch size
    eval_batch_size: int = 1000  # evaluation batch size (memory only; no effect on numbers)
    seed: int = 0  # seeds the split, the initial weights, the batch order
    val_fraction: float = 0.2  # share of the 50,000 training images held out (paper: 20 %)
    train_size: int = 0  # training images used; 0 means all 40,000
    val_size: int = 0  # validation images used; 0 means all 10,000
    test_size: int = 0  # test images used; 0 means all 10,000
    data_dir: str = ""  # CIFAR-10 folder; "" means $CIFAR10_DIR
    cache_dir: str = ""  # decoded-data cache; "" means $SNN_CACHE_DIR or ~/.cache/explicit-sparsity
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads for torch; 0 means torch's default
    output_dir: str = "results/run"  # where record.json is written
    progress: bool = True  # a tqdm bar per epoch

    def check(self) -> Params:
        """Raise ValueError naming the first bad setting; return self when all are good."""
        schedules.check(self.schedule, self.granularity)
        choices = {
            "encoding": ENCODINGS,
            "surrogate": tuple(SURROGATES),
            "spike_normalisation": SPIKE_NORMALISATIONS,
            "optimiser": tuple(OPTIMISERS),
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        positive = ("epochs", "num_steps", "batch_size", "eval_batch_size")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("train_size", "val_size", "test_size", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0 (0 = all / default), got {value!r}")
        finite = {"sigma0": 0.0, "spike_bound": 0.0,
                  "lr": None, "init_gain": None, "threshold": None, "surrogate_scale": None, "surrogate_gamma": None}
        for name, minimum in finite.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if minimum is not None and value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
            if minimum is None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {self.beta!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.schedule != "baseline" and self.sigma0 == 0:
            raise ValueError(f"schedule {self.schedule!r} needs sigma0 > 0 (sigma0 = 0 is the baseline)")
        if not any(penalties.parse_layer_weights(self.layer_weights)) and self.schedule == "layer_weighted":
            raise ValueError("schedule 'layer_weighted' needs a layer weight > 0 (all 0 is the baseline)")
        resolve_device(self.device)
        return self

    @classmethod
    def from_dict(cls, values: dict) -> Params:
        """Params from a flat dict; unknown keys are an error, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_namespace(cls, namespace: dict) -> Params:
        """Params from the variables of that name in `namespace` (a notebook's `globals()`)."""
        return cls(**{f.name: namespace[f.name] for f in dataclasses.fields(cls) if f.name in namespace})


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Make glibc keep freed activations for reuse instead of returning them to the kernel.

    glibc serves blocks above its mmap threshold (adaptive, at most 32 MiB) with fresh
    pages and trims the top of the heap above its trim threshold, so every training step
    faults its activations back in page by page: about 1e5 minor page faults per step at
    T=100, B=32, roughly half the step time on a 2-core CPU. With both thresholds at
    1 GiB freed blocks are reused; the process keeps its per-step peak resident instead.
    Returns whether it was applied: not off glibc, and not when the user set
    MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ (their setting wins). Idempotent.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or any(map(os.environ.get, MALLOC_ENV)):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>; mallopt takes a C int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, threshold))


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to a temporary file beside `path`, then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


@torch.no_grad()
def evaluate(model, split: data.Split, batch_size: int) -> dict:
    """Accuracy in [0, 1], and per sample on average: spikes and SynOps (total and per layer)
    and the energy estimate of `lib.energy` (its default conventions)."""
    model.eval()
    fanout = energy.fanouts(model)
    correct, spikes = 0, torch.zeros(len(LAYERS), dtype=torch.float64)
    synops = torch.zeros(len(LAYERS), dtype=torch.float64)
    for images, labels in data.batches(split, batch_size):
        logits, counts = model.activity(images)
        spk = torch.stack([c.flatten(1).sum(1) for c in counts], dim=1)  # as model(images) sums them
        correct += (logits.argmax(1) == labels).sum().item()
        spikes += spk.sum(0).double().cpu()
        synops += energy.synops_from_counts([c.double() for c in counts], fanout).sum(0).cpu()
    per_layer = (spikes / len(split)).tolist()
    synops_per_layer = (synops / len(split)).tolist()
    return {
        "accuracy": correct / len(split), "spikes": math.fsum(per_layer), "spikes_per_layer": per_layer,
        "synops": math.fsum(synops_per_layer), "synops_per_layer": synops_per_layer,
        "energy_pj": energy.energy_pj(math.fsum(synops_per_layer), model),
    }


class Diverged(RuntimeError):
    """The loss became NaN or infinite."""


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
        w = schedules.weight(params.schedule, params.sigma0, epoch, params.epochs, b, n_batches, params.granularity)
        logits, spikes = model.activity(images) if per_neuron else model(images)  # per-neuron | per-layer
        ce = F.cross_entropy(logits, labels)
        loss = ce + w * penalty(spikes) if w else ce
        if not torch.isfinite(loss):
            raise Diverged(f"loss is {loss.item()} at epoch {epoch}, batch {b}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        sums += torch.tensor([loss.item(), ce.item(), w], dtype=torch.float64)
    mean = (sums / n_batches).tolist()
    return {"train_loss": mean[0], "train_ce": mean[1], "sparsity_weight": mean[2]}


OPTIMISERS = {
    "adam": lambda parameters, lr: torch.optim.Adam(parameters, lr=lr),
    "sgd": lambda parameters, lr: torch.optim.SGD(parameters, lr=lr, momentum=0.9),
}


def build_model(params: Params) -> SpikingLeNet:
    """The network of `params`, initialised by PyTorch's defaults (seeded by the caller), then
    the weights feeding lif2-lif4 scaled by `init_gain`: with the defaults lif3 and lif4 are
    silent at the start, which passes no surrogate gradient through them."""
    model = _network(params)
    if params.init_gain != 1.0:
        with torch.no_grad():
            for layer in (model.conv2, model.fc1, model.fc2):
                layer.weight.mul_(params.init_gain)
    return model


def _network(params: Params) -> SpikingLeNet:
    lif = LIFParameters(
        beta=params.beta,
        threshold=params.threshold,
        surrogate=params.surrogate,
        gamma=params.surrogate_gamma,
        scale=params.surrogate_scale,
        detach_reset=params.detach_reset,
    )
    return SpikingLeNet(num_steps=params.num_steps, encoding=params.encoding, p=lif)


def run(params: Params | dict | None = None, **overrides) -> dict:
    """Train one experiment and return its record (also written to output_dir/record.json)."""
    values = dataclasses.asdict(params) if isinstance(params, Params) else dict(params or {})
    params = Params.from_dict({**values, **overrides}).check()
    if params.schedule == "baseline":  # sigma0 has no effect there; record it as the paper does (0)
        params = dataclasses.replace(params, sigma0=0.0)
    device = resolve_device(params.device)
    data_dir = data.resolve_data_dir(params.data_dir or None)  # no CIFAR-10: an error before any record
    keep_freed_memory()
    if params.threads:
        torch.set_num_threads(params.threads)
    out = Path(params.output_dir)
    record = {
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
    }
    start = time.perf_counter()
    write_json_atomic(out / "record.json", record)

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
        model = build_model(params).to(device)
        record["energy"] = energy.reference(model)
        optimiser = OPTIMISERS[params.optimiser](model.parameters(), params.lr)
        generator = torch.Generator().manual_seed(params.seed)

        for epoch in range(1, params.epochs + 1):
            t0 = time.perf_counter()
            row = {"epoch": epoch, **train_epoch(model, optimiser, splits.train, params, epoch, generator)}
            train_seconds = time.perf_counter() - t0
            for name in ("val", "test"):
                result = evaluate(model, getattr(splits, name), params.eval_batch_size)
                row.update({f"{name}_{k}": v for k, v in result.items()})
            row.update(train_seconds=train_seconds, seconds=time.perf_counter() - t0)
            record["epochs"].append(row)
            record["wall_seconds"] = time.perf_counter() - start
            write_json_atomic(out / "record.json", record)
            if params.progress:
                print(
                    f"epoch {epoch:3d}  loss {row['train_loss']:.4f}  w {row['sparsity_weight']:.3g}  "
                    f"val acc {row['val_accuracy']:.4f}  val spikes {row['val_spikes']:.0f}  "
                    f"({row['seconds']:.1f} s)",
                    flush=True,
                )
        record["status"] = "complete"
    except Diverged as err:
        record.update(status="failed", reason=str(err))
    except BaseException as err:  # recorded, then raised: a crash never leaves "running"
        record.update(status="failed", reason=f"{type(err).__name__}: {err}")
        record["wall_seconds"] = time.perf_counter() - start
        write_json_atomic(out / "record.json", record)
        raise
    record["wall_seconds"] = time.perf_counter() - start
    write_json_atomic(out / "record.json", record)
    return record

