"""A trained SpikingLeNet as a NIR graph, and the same graph run in snnTorch.

NIR (the Neuromorphic Intermediate Representation, `nir` on PyPI; Pedersen et al., Nature
Communications 2024) describes a network as a graph of continuous-time nodes that
simulators (snnTorch, Norse, SpikingJelly, sinabs, Lava) and chips import. `to_nir` writes

    Input (3, 32, 32) -> Conv2d conv1 -> LIF lif1 -> AvgPool2d 2 -> Conv2d conv2 -> LIF lif2
    -> AvgPool2d 2 -> Flatten (16, 5, 5) -> Affine fc1 -> LIF lif3 -> Affine fc2 -> LIF lif4
    -> Affine fc3 -> Output (10)

with the trained weights unchanged. Shapes are NIR's: one sample, no batch dimension.

Our neuron (lib/snn.py) in discrete time, zero initial state:

    mem[t] = beta * mem[t-1] + cur[t];  spk[t] = H(mem[t] - threshold), H(0) = 0;
    mem[t] -= spk[t] * threshold  (reset by subtraction)

NIR's LIF node is `tau dv/dt = (v_leak - v) + r I`, spike `z = v > v_threshold`, then
`v = v_reset`. Its forward-Euler step of length dt is

    v[t] = (1 - dt/tau) v[t-1] + (r dt/tau) I[t]

so our neuron is exactly that step with

    tau = dt / (1 - beta)     (beta = 1 - dt/tau; needs 0 <= beta < 1)
    r = tau / dt = 1 / (1 - beta)   (the input enters unscaled: r dt/tau = 1)
    v_leak = 0,  v_threshold = threshold,  v_reset = 0

and dt = 1e-4 s by default: a NIR file carries no time step, and snnTorch's importer
assumes 1e-4 (it computes beta = 1 - 1e-4/tau); an importer with its own dt must be given
this one. The choices NIR cannot express, and what they cost:

- Reset. Every NIR spiking node (IF, LIF, CubaLIF) resets *to* v_reset; none subtracts
  the threshold. The file says reset to 0, the closest: the two agree whenever a spike
  leaves mem - threshold = 0, and otherwise the zero reset forgets the excess above the
  threshold. `compare` measures the difference (benchmarks/nir_roundtrip.py): on a small
  trained LeNet (T = 8, 1,000 test images) the file as written keeps 80 % of our
  predictions and 13 % (lif1) to 49 % (lif4) fewer spikes, while snnTorch's import matches
  the network the file describes exactly. NIR could say our reset only as a cycle (an LI
  node, a Threshold node, and a recurrent Linear of weight -beta * threshold), which the
  importers here do not map.
- Readout. NIR has no averaging over time: the graph's Output is fc3 at every step, and
  the runner averages it over the T steps. fc3 is affine, so this equals our logits
  (fc3 of the time-averaged lif4 spikes).
- Input. With `direct` encoding the normalised image is fed as the input at every one of
  the T steps; T (`num_steps`) and the encoding go into the graph's metadata, which NIR
  keeps but does not interpret.

The round trip (`import_snntorch`, `run_imported`, `compare`) loads the file with
snnTorch's own importer (`snntorch.import_from_nir`), which maps these nodes one to one:
LIF -> `snn.Leaky(beta = 1 - 1e-4/tau, threshold = v_threshold / (r dt/tau))` with
`reset_mechanism="zero"`, the spike `mem - threshold > 0` and the reset in the same step
(reset_delay=False): exactly the Euler step above with NIR's reset. Its Flatten keeps
NIR's batch-free start_dim = 0, so `run_imported` feeds one image at a time, as NIR's
shapes mean.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .snn import LAYERS, SpikingLeNet

DT = 1e-4
"""The Euler time step the graph is written for (snnTorch's importer assumes it)."""


def lif_constants(lif) -> tuple[float, float]:
    """(beta, threshold) of one of lib.snn's LIF layers: the one place that reads them."""
    return float(lif.beta), float(lif.threshold)


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _lif_node(lif, shape, dt: float):
    import nir

    beta, threshold = lif_constants(lif)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"NIR's LIF needs 0 <= beta < 1 (tau = dt / (1 - beta)), got beta = {beta}")
    tau = dt / (1.0 - beta)
    full = lambda value: np.full(shape, value, dtype=np.float32)  # NIR wants one value per neuron
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(threshold), v_reset=full(0.0))


def to_nir(model: SpikingLeNet, dt: float = DT):
    """The NIR graph of `model` (module docstring: node list and parameter mapping)."""
    import nir

    if not isinstance(model, SpikingLeNet):
        raise TypeError(f"to_nir exports a lib.snn.SpikingLeNet, got {type(model).__name__}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    pool = lambda: nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))

    def conv(layer, input_shape):
        return nir.Conv2d(input_shape=input_shape, weight=_array(layer.weight), stride=1, padding=0,
                          dilation=1, groups=1, bias=_array(layer.bias))

    def affine(layer):
        return nir.Affine(weight=_array(layer.weight), bias=_array(layer.bias))

    nodes = {
        "input": nir.Input(input_type=np.array([3, 32, 32])),
        "conv1": conv(model.conv1, (32, 32)),
        "lif1": _lif_node(model.lif[0], (6, 28, 28), dt),
        "pool1": pool(),
        "conv2": conv(model.conv2, (14, 14)),
        "lif2": _lif_node(model.lif[1], (16, 10, 10), dt),
        "pool2": pool(),
        "flatten": nir.Flatten(input_type={"input": np.array([16, 5, 5])}, start_dim=0, end_dim=-1),
        "fc1": affine(model.fc1),
        "lif3": _lif_node(model.lif[2], (120,), dt),
        "fc2": affine(model.fc2),
        "lif4": _lif_node(model.lif[3], (84,), dt),
        "fc3": affine(model.fc3),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    metadata = {"dt": dt, "num_steps": model.num_steps, "encoding": model.encoding,
                "readout": "mean of output over the num_steps steps", "reset": "by subtraction in training"}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), metadata=metadata)


def write_nir(model: SpikingLeNet, path, dt: float = DT) -> Path:
    """Write `to_nir(model, dt)` to `path` (a `.nir` HDF5 file) atomically; return the path."""
    import nir

    path = Path(path)
    graph = to_nir(model, dt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------
# The round trip: the file imported by snnTorch, run T steps, compared with ours.


def import_snntorch(graph_or_path) -> torch.nn.Module:
    """The graph (or a `.nir` file) as snnTorch builds it with its own importer."""
    import contextlib
    import io

    import nir
    from snntorch.import_nir import import_from_nir

    graph = nir.read(graph_or_path) if isinstance(graph_or_path, (str, Path)) else graph_or_path
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints progress notes
        return import_from_nir(graph)


def run_imported(module: torch.nn.Module, images, num_steps: int):
    """`logits, counts` of the imported network on `images` (B, 3, 32, 32), direct input.

    Like `SpikingLeNet.activity`: logits (B, 10) is the Output averaged over the steps and
    counts[l] (B, *neurons) each neuron's spikes of layer LAYERS[l] summed over time. One
    image at a time from zero state (NIR's shapes have no batch dimension).
    """
    import snntorch

    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    neurons = [module.get_submodule(name) for name in LAYERS]
    current = [None] * len(LAYERS)
    hooks = [n.register_forward_hook(lambda _m, _i, spk, i=i: current.__setitem__(i, spk))
             for i, n in enumerate(neurons)]
    logits, counts = [], [[] for _ in LAYERS]
    try:
        with torch.no_grad():
            for image in images:
                for n in neurons:
                    if not isinstance(n, snntorch.Leaky):
                        raise TypeError(f"expected snntorch.Leaky neurons, got {type(n).__name__}")
                    n.reset_mem()
                readout, total = 0.0, [0.0] * len(LAYERS)
                for _ in range(num_steps):
                    out, _state = module(image)
                    readout = readout + out
                    total = [t + s for t, s in zip(total, current, strict=True)]
                logits.append(readout / num_steps)
                for per_layer, t in zip(counts, total, strict=True):
                    per_layer.append(t)
    finally:
        for h in hooks:
            h.remove()
    return torch.stack(logits), [torch.stack(c) for c in counts]


class ResetToZeroLIF(torch.nn.Module):
    """NIR's LIF in our discrete time: our step, but the membrane is set to 0 after a spike."""

    def __init__(self, beta: float, threshold: float):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, cur, mem):
        mem = self.beta * mem + cur
        spk = (mem > self.threshold).to(mem.dtype)
        return spk, mem * (1.0 - spk)


def with_reset_to_zero(model: SpikingLeNet) -> SpikingLeNet:
    """A copy of `model` whose neurons reset to zero, as the NIR file says: the network the
    export describes, computed by our own code (step by step) as an independent oracle."""
    twin = copy.deepcopy(model)
    twin.step_by_step = True
    twin.lif = torch.nn.ModuleList(ResetToZeroLIF(*lif_constants(lif)) for lif in model.lif)
    return twin


def compare(model: SpikingLeNet, images, labels=None, dt: float = DT) -> dict:
    """Export `model`, import it in snnTorch, run both on `images`; the agreement.

    Returns, per network ("ours": reset by subtraction; "ours_reset_to_zero": the same
    weights with NIR's reset; "snntorch": the imported file) the spikes per image of each
    layer (mean over images) and, with `labels`, the accuracy; and for the imported network
    against each of ours: the fraction of images with the same prediction and the relative
    difference of the total spikes per layer.
    """
    if model.encoding != "direct":
        raise ValueError(f"compare needs direct encoding (a deterministic input), got {model.encoding!r}")
    with tempfile.TemporaryDirectory() as folder:
        imported = import_snntorch(write_nir(model, Path(folder) / "model.nir", dt))
    model = model.eval()
    with torch.no_grad():
        runs = {"ours": model.activity(images), "ours_reset_to_zero": with_reset_to_zero(model).activity(images)}
    runs["snntorch"] = run_imported(imported, images, model.num_steps)
    out = {"images": len(images), "num_steps": model.num_steps, "dt": dt, "networks": {}, "agreement": {}}
    spikes = {}
    for name, (logits, counts) in runs.items():
        spikes[name] = [float(c.sum()) for c in counts]
        entry = {"spikes_per_image": dict(zip(LAYERS, (s / len(images) for s in spikes[name]), strict=True))}
        if labels is not None:
            entry["accuracy"] = float((logits.argmax(1) == labels).float().mean())
        out["networks"][name] = entry
    pred = runs["snntorch"][0].argmax(1)
    for name in ("ours", "ours_reset_to_zero"):
        out["agreement"][f"snntorch_vs_{name}"] = {
            "same_prediction": float((pred == runs[name][0].argmax(1)).float().mean()),
            "spike_difference": {layer: (b - a) / a if a else float(b != a)
                                 for layer, a, b in zip(LAYERS, spikes[name], spikes["snntorch"], strict=True)},
        }
    return out
