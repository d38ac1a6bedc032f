"""One run's parameters (`Params`, checked before any work), and the network they describe.

    from lib.params import Params, initial_network
    params = Params(schedule="linear", sigma0=3e-6, epochs=10).check()   # ValueError on a bad setting
    net = initial_network(params)                                         # the SpikingLeNet it trains

docs/experiment.md lists every setting; `lib.train.run` trains one.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass

import torch

from . import data, penalties, schedules
from .machine import resolve_device
from .snn import ENCODINGS, RESETS, SPIKE_NORMALISATIONS, SURROGATES, LIFParameters, SpikingLeNet


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
    reset: str = "subtract"  # what a spike does to the membrane: subtract (the threshold) | zero (NIR's reset)
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
            "reset": RESETS,
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
        if self.reset == "zero" and not self.detach_reset:
            raise ValueError("reset 'zero' is implemented with the reset detached only: set detach_reset True")
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
# loss) of the paper-t8 profile, whose setting Params' defaults share (T = 8, no augmentation,
# init_gain 3, 20 epochs, all images; one seed): figures/paper-t8/table1.csv.
# The regularisers have no such selection: they need sigma0 given.
DEFAULT_SIGMA0 = {"baseline": 0.0, "constant": 3e-05, "linear": 2e-4, "quadratic": 2e-5,
                  "alternating": 4e-4, "alternating_linear": 2e-4}

# the smallest value of each int field (0 means "all" for the sizes, "torch's default" for threads)
INT_MIN = {"epochs": 1, "num_steps": 1, "batch_size": 1, "eval_batch_size": 1,
           "seed": 0, "train_size": 0, "val_size": 0, "test_size": 0, "threads": 0}

LR_SCHEDULES = ("constant", "cosine")  # lib.train.lr_at

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
        reset=params.reset,
    )
    return SpikingLeNet(num_steps=params.num_steps, encoding=params.encoding, p=lif)
