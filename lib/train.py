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

The record's `machine` is the hardware fingerprint of `machine()`: the floating-point kernels
differ between machines, and training amplifies the difference, so every number says
where it was made.

    from lib.train import run
    record = run(schedule="linear", sigma0=3e-6, epochs=10, output_dir="results/x")
"""

from __future__ import annotations

import ast
import ctypes
import dataclasses
import datetime
import math
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from . import __version__, data, energy, kernels, penalties, schedules
from . import record as records
from .snn import ENCODINGS, LAYERS, SPIKE_NORMALISATIONS, SURROGATES, LIFParameters, SpikingLeNet, spike_count


@dataclass
class Params:
    """Every setting of one run; the defaults are a full paper-scale run (docs/experiment.md)."""

    schedule: str = "baseline"  # sparsity weighting: lib.schedules.NAMES (the paper's, then REGULARISERS)
    sigma0: float | None = None  # scale of the spike-count loss (eqs. 4-8); None: DEFAULT_SIGMA0[schedule]
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
    lr_schedule: str = "constant"  # constant | cosine (lr to 0 over the planned epochs, every batch: lr_at)
    init_gain: float = 3.0  # multiplies the initial weights of conv2, fc1, fc2; > 1 makes lif2-lif4 fire at the start
    batch_size: int = 64  # training batch size
    augment: str = "none"  # training batches only: none | crop_flip (lib.data: pad 4, random 32x32 crop, random flip)
    eval_batch_size: int = 1000  # evaluation batch size (memory only; no effect on numbers)
    stop_collapsed: bool = True  # stop ("collapsed") once a hidden layer is silent on validation 2 epochs running
    seed: int = 0  # seeds the split, the initial weights, the batch order
    val_fraction: float = 0.2  # share of the 50,000 training images held out (paper: 20 %); 0: none, train on all
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
        """Raise ValueError naming the first bad setting; return self when all are good.

        Every field is first checked against its annotated type, strictly: a bool is only
        True or False (the string "False", as papermill -r or a quoted YAML value gives,
        is refused, never read as true), an int is not a float or a bool (seed=1.5 is
        refused), a float is a finite int or float, a str a str. Then the ranges."""
        for field in dataclasses.fields(self):
            value, kind = getattr(self, field.name), field.type
            if kind == "bool" and not isinstance(value, bool):
                raise ValueError(f"{field.name} must be True or False, got {value!r} ({type(value).__name__})")
            if kind == "str" and not isinstance(value, str):
                raise ValueError(f"{field.name} must be a string, got {value!r} ({type(value).__name__})")
            if kind == "float | None" and value is None:
                continue
            if kind in ("float", "float | None") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise ValueError(f"{field.name} must be a finite number, got {value!r}")
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int) or value < INT_MIN[field.name]):
                raise ValueError(f"{field.name} must be an integer >= {INT_MIN[field.name]}, got {value!r}")
        schedules.check(self.schedule, self.granularity)
        choices = {
            "encoding": ENCODINGS,
            "surrogate": tuple(SURROGATES),
            "spike_normalisation": SPIKE_NORMALISATIONS,
            "optimiser": tuple(OPTIMISERS),
            "lr_schedule": LR_SCHEDULES,
            "augment": data.AUGMENTATIONS,
        }
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.sigma0 is None and self.schedule not in DEFAULT_SIGMA0:
            raise ValueError(f"schedule {self.schedule!r} has no default sigma0; give one")
        finite = {"sigma0": 0.0, "spike_bound": 0.0,
                  "lr": None, "init_gain": None, "threshold": None, "surrogate_scale": None, "surrogate_gamma": None}
        for name, minimum in finite.items():
            value = getattr(self, name)
            if value is None:  # sigma0 left to its default
                continue
            if minimum is not None and value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
            if minimum is None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {self.beta!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.val_fraction == 0 and self.val_size:
            raise ValueError(f"val_size {self.val_size} with val_fraction 0: there is no validation split")
        if self.val_fraction == 0 and self.stop_collapsed:
            raise ValueError("stop_collapsed watches the validation split, and val_fraction 0 has none: "
                             "set stop_collapsed False (test numbers never decide anything)")
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

    @classmethod
    def from_notebook(cls, namespace: dict, extra=("grid", "factors", "resources")) -> Params:
        """The checked Params of a notebook's parameters (`namespace`: its `globals()`).

        papermill injects an unknown `-p NAME` with only a warning, and the run would go on with
        the default: that is refused here, naming it and the valid names. papermill's injected cell
        opens with "# Parameters" in the kernel's input history `In`; `extra` names the keys a
        profile passes along (`-f params/<profile>.yaml`) that one run ignores."""
        injected = {
            node.id
            for cell in namespace.get("In", [])
            if cell.startswith("# Parameters")
            for node in ast.walk(ast.parse(cell))
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        valid = [f.name for f in dataclasses.fields(cls)] + list(extra)
        unknown = sorted(injected - set(valid))
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
        return cls.from_namespace(namespace).check()

    def changes(self) -> dict:
        """The settings that differ from Params' defaults."""
        defaults = dataclasses.asdict(Params())
        return {name: value for name, value in dataclasses.asdict(self).items() if value != defaults[name]}


# sigma0 when none is given: Table 1's selection per schedule (the largest sigma0 at no validation
# loss) in the paper profile's earlier run, whose setting Params' defaults share (T = 8, no
# augmentation, init_gain 3, 20 epochs, all images; one seed): figures/paper-t8/table1.csv.
# The regularisers have no such selection: they need sigma0 given.
DEFAULT_SIGMA0 = {"baseline": 0.0, "constant": 3e-05, "linear": 2e-4, "quadratic": 2e-5,
                  "alternating": 4e-4, "alternating_linear": 2e-4}

# the smallest value of each int field (0 means "all" for the sizes, "torch's default" for threads)
INT_MIN = {"epochs": 1, "num_steps": 1, "batch_size": 1, "eval_batch_size": 1,
           "seed": 0, "train_size": 0, "val_size": 0, "test_size": 0, "threads": 0}


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


def cpu_model() -> str:
    """The processor's model name: /proc/cpuinfo on Linux, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> records.Machine:
    """The hardware fingerprint of a run on `device` (call it after setting the thread count)."""
    cpu = cpu_model()
    cuda = device.type == "cuda"
    return {
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "lif_kernel": "torch" if cuda else kernels.name(),  # lib.kernels' fused loops or PyTorch's ops
    }


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
    theirs = {k: v for k, v in rec["params"].items() if k not in RESUME_MAY_DIFFER}
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


def evaluate(model, split: data.Split, batch_size: int) -> dict:
    """Accuracy in [0, 1], and per sample on average: spikes and SynOps (total and per layer)
    and the energy estimate of `lib.energy` (its default conventions)."""
    return evaluate_splits(model, [split], batch_size)[0]


@torch.no_grad()
def evaluate_splits(model, splits, batch_size: int) -> list[dict]:
    """`evaluate` of each of `splits`, in one pass without autograd (lib.snn's inference path).

    Exact in float32 where it counts, so the order of summation cannot change a number:
    spikes are 0 or 1, so a neuron's count summed over time and over a batch is an integer
    below 2**24 (T * batch_size spikes at most); the per-layer totals and the SynOps
    (sum over neurons of fan-out x count, integers) are then summed in float64."""
    model.eval()
    fanout = [f.double() for f in energy.fanouts(model)]
    if batch_size * model.num_steps >= 2**24:
        raise ValueError(f"eval batch {batch_size} x T {model.num_steps} spikes per neuron: not exact in float32")
    results = []
    for split in splits:
        correct, spikes = 0, torch.zeros(len(LAYERS), dtype=torch.float64)
        synops = torch.zeros(len(LAYERS), dtype=torch.float64)
        for images, labels in data.batches(split, batch_size):
            logits, counts = model.activity(images)
            correct += (logits.argmax(1) == labels).sum().item()
            for layer, (c, f) in enumerate(zip(counts, fanout, strict=True)):
                per_neuron = c.sum(0).double().cpu()  # an integer per neuron
                spikes[layer] += per_neuron.sum()
                synops[layer] += (per_neuron * f.cpu()).sum()
        per_layer = (spikes / len(split)).tolist()
        synops_per_layer = (synops / len(split)).tolist()
        results.append({
            "accuracy": correct / len(split), "spikes": math.fsum(per_layer), "spikes_per_layer": per_layer,
            "synops": math.fsum(synops_per_layer), "synops_per_layer": synops_per_layer,
            "energy_pj": energy.energy_pj(math.fsum(synops_per_layer), model),
        })
    return results


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


LR_SCHEDULES = ("constant", "cosine")


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


OPTIMISERS = {
    "adam": lambda parameters, lr: torch.optim.Adam(parameters, lr=lr),
    "sgd": lambda parameters, lr: torch.optim.SGD(parameters, lr=lr, momentum=0.9),
}


def initial_network(params: Params) -> SpikingLeNet:
    """The network a run of `params` starts from: its `architecture`, initialised by PyTorch's
    defaults (seeded by the caller), then the weights feeding lif2-lif4 scaled by `init_gain`:
    with the defaults lif3 and lif4 are silent at the start, which passes no surrogate gradient
    through them."""
    model = architecture(params)
    if params.init_gain != 1.0:
        with torch.no_grad():
            for layer in (model.conv2, model.fc1, model.fc2):
                layer.weight.mul_(params.init_gain)
    return model


def architecture(params: Params) -> SpikingLeNet:
    """The SpikingLeNet of `params`' LIF constants, surrogate, T and encoding, with PyTorch's
    default initialisation (no `init_gain`)."""
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

