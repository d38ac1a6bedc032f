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

Two files, two meanings (`to_nir(model, convention=...)`, recorded in metadata["convention"]):

- "nir" (default): the NIR-standard reading above. Any NIR importer that follows the spec
  (snnTorch's does) runs our weights with reset to zero, not our network.
- "sinabs": the file sinabs 3.1.3's importer (`sinabs.from_nir`) reads as our network
  exactly. That importer maps LIF -> `LIFSqueeze(tau_mem = tau, spike_threshold =
  v_threshold, norm_input=False, min_v_mem=None)` with sinabs's defaults: time in steps,
  decay exp(-1/tau), the input unscaled (r is ignored), spikes at v >= threshold, reset by
  *subtraction* (MembraneSubtract, v_reset ignored) in the same step, so the next step
  decays the subtracted membrane, as ours. The file therefore writes tau = -1/ln(beta) in
  steps (`sinabs_tau`: the float32 value whose float32 exp(-1/tau) is beta exactly; a
  beta with none is refused), r = 1/(1 - beta) (NIR's exact integration over one step then
  adds the input unscaled, so the file still states our neuron, but with dt = 1 step and
  v_reset = 0 that sinabs does not read) and, since sinabs maps no AvgPool2d, SumPool2d
  with the 1/4 folded into conv2's and fc1's weights (a power of two: the same floats).
  Two differences remain in sinabs: its default spike function is MultiSpike
  (floor(v / threshold) spikes in a step, each subtracting a threshold), which
  `import_sinabs(single_spike=True)` replaces with sinabs's own SingleSpike; and v >=
  instead of our v > threshold, a tie of measure zero with float inputs. Measured
  (benchmarks/nir_roundtrip.py, the same network and images as above): with SingleSpike
  100 % of our predictions and the same spikes to 1 in 7.7 million (lif1; lif2-4
  identical); with sinabs's MultiSpike as imported, 83.7 % of the predictions and 4 %
  (lif1) to 134 % (lif4) more spikes. SpikingJelly 2.0.0's importer cannot: it maps LIF to
  a hard reset to v_reset (it requires v_reset finite and equal to v_leak).
  A "sinabs" file is not for other importers: they would read tau in seconds.

The "nir" round trip (`import_snntorch`, `run_imported`, `compare`) loads the file with
snnTorch's own importer (`snntorch.import_from_nir`), which maps these nodes one to one:
LIF -> `snn.Leaky(beta = 1 - 1e-4/tau, threshold = v_threshold / (r dt/tau))` with
`reset_mechanism="zero"`, the spike `mem - threshold > 0` and the reset in the same step
(reset_delay=False): exactly the Euler step above with NIR's reset. Its Flatten keeps
NIR's batch-free start_dim = 0, so `run_imported` feeds one image at a time, as NIR's
shapes mean.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from .. import record
from ..snn import LAYERS, SpikingLeNet

DT = 1e-4
"""The Euler time step the graph is written for (snnTorch's importer assumes it)."""


def lif_constants(lif) -> tuple[float, float]:
    """(beta, threshold) of one of lib.snn's LIF layers: the one place that reads them."""
    return float(lif.p.beta), float(lif.p.threshold)


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _lif_node(lif, shape, dt: float, convention: str = "nir"):
    import nir

    beta, threshold = lif_constants(lif)
    if not 0.0 < beta < 1.0 if convention == "sinabs" else not 0.0 <= beta < 1.0:
        raise ValueError(f"NIR's LIF needs 0 <= beta < 1 (0 < beta for sinabs), got beta = {beta}")
    tau = sinabs_tau(beta) if convention == "sinabs" else dt / (1.0 - beta)
    r = 1.0 / (1.0 - beta) if convention == "sinabs" else tau / dt
    full = lambda value: np.full(shape, value, dtype=np.float32)  # NIR wants one value per neuron
    return nir.LIF(tau=full(tau), r=full(r), v_leak=full(0.0), v_threshold=full(threshold), v_reset=full(0.0))


def sinabs_tau(beta: float) -> np.float32:
    """The float32 tau (in time steps) whose sinabs decay exp(-1/tau), computed in float32
    by torch as sinabs does, equals float32(beta) exactly; -1/ln(beta) rounded can miss it
    by an ulp, so the neighbouring float32 values are tried too."""
    target = torch.tensor(beta, dtype=torch.float32)
    tau = np.float32(-1.0 / np.log(beta))
    up, down = [tau], [tau]
    for _ in range(64):
        up.append(np.nextafter(up[-1], np.float32(np.inf)))
        down.append(np.nextafter(down[-1], np.float32(0)))
    candidates = [tau] + [c for pair in zip(up[1:], down[1:], strict=True) for c in pair]
    for candidate in candidates:
        if torch.exp(-1.0 / torch.tensor(candidate)) == target:
            return candidate
    raise ValueError(f"no float32 tau near {tau} gives exp(-1/tau) == beta = {beta} in float32")


CONVENTIONS = ("nir", "sinabs")
"""The two readings `to_nir` can write (module docstring: which file means what)."""


def to_nir(model: SpikingLeNet, dt: float = DT, convention: str = "nir"):
    """The NIR graph of `model` (module docstring: node list and parameter mapping).

    convention "nir": NIR's own LIF, forward Euler at `dt`, reset to zero (the closest NIR
    can say). "sinabs": the file sinabs's importer reads as our neuron exactly (time in
    steps, tau = -1/ln(beta), average pools as sum pools with the 1/4 in the next weights).
    """
    import nir

    if not isinstance(model, SpikingLeNet):
        raise TypeError(f"to_nir exports a lib.snn.SpikingLeNet, got {type(model).__name__}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    sinabs = convention == "sinabs"
    zero = model.lif[0].p.reset == "zero"
    if sinabs and zero:
        raise ValueError("a network that resets to zero has no 'sinabs' file (sinabs resets by subtraction); "
                         "its 'nir' file describes it exactly")
    kernel = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    pool = lambda: nir.SumPool2d(**kernel) if sinabs else nir.AvgPool2d(**kernel)
    # A sum pool is 4 times the average; a quarter of the next layer's weights undoes it
    # exactly (a power of two, so every product is the same float as ours).
    after_pool = 0.25 if sinabs else 1.0

    def conv(layer, input_shape, scale=1.0):
        return nir.Conv2d(input_shape=input_shape, weight=_array(layer.weight) * np.float32(scale), stride=1, padding=0,
                          dilation=1, groups=1, bias=_array(layer.bias))

    def affine(layer, scale=1.0):
        return nir.Affine(weight=_array(layer.weight) * np.float32(scale), bias=_array(layer.bias))

    def lif(i, shape):
        return _lif_node(model.lif[i], shape, dt, convention)

    nodes = {
        "input": nir.Input(input_type=np.array([3, 32, 32])),
        "conv1": conv(model.conv1, (32, 32)),
        "lif1": lif(0, (6, 28, 28)),
        "pool1": pool(),
        "conv2": conv(model.conv2, (14, 14), after_pool),
        "lif2": lif(1, (16, 10, 10)),
        "pool2": pool(),
        "flatten": nir.Flatten(input_type={"input": np.array([16, 5, 5])}, start_dim=0, end_dim=-1),
        "fc1": affine(model.fc1, after_pool),
        "lif3": lif(2, (120,)),
        "fc2": affine(model.fc2),
        "lif4": lif(3, (84,)),
        "fc3": affine(model.fc3),
        "output": nir.Output(output_type=np.array([10])),
    }
    names = list(nodes)
    metadata = {"convention": convention, "dt": 1.0 if sinabs else dt, "num_steps": model.num_steps,
                "encoding": model.encoding, "readout": "mean of output over the num_steps steps",
                "reset": ("by subtraction: sinabs reads LIF so and ignores v_reset" if sinabs
                          else "to v_reset = 0 as NIR says, as in training" if zero
                          else "to v_reset = 0 as NIR says; by subtraction in training")}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:], strict=True)), metadata=metadata)


def write_nir(model: SpikingLeNet, path, dt: float = DT, convention: str = "nir") -> Path:
    """Write `to_nir(model, dt, convention)` to `path` (a `.nir` HDF5 file) atomically; return the path."""
    import nir

    path = Path(path)
    graph = to_nir(model, dt, convention)
    record.atomic(path, lambda tmp: nir.write(tmp, graph))
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


def import_sinabs(graph_or_path, num_steps: int, single_spike: bool = True) -> torch.nn.Module:
    """The graph (or a `.nir` file) as sinabs builds it with its own importer (`sinabs.from_nir`).

    sinabs 3.1.3's importer checks `any(node.v_leak) != 0`, which fails on a per-neuron array
    of more than one dimension; each LIF's v_leak (all zeros, checked) is handed to it as one
    zero instead, which sinabs uses for nothing else. Its LIF fires floor(v / threshold)
    spikes per step (MultiSpike); `single_spike` sets sinabs's own SingleSpike, one spike.
    """
    import warnings

    import nir
    import sinabs
    from sinabs.activation import SingleSpike

    graph = nir.read(graph_or_path) if isinstance(graph_or_path, (str, Path)) else copy.deepcopy(graph_or_path)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):
            if np.any(node.v_leak != 0):
                raise ValueError(f"{name}: sinabs needs v_leak = 0")
            node.v_leak = np.zeros(1, dtype=np.float32)
    with warnings.catch_warnings():  # sinabs calls nirtorch's deprecated `load`
        warnings.simplefilter("ignore", DeprecationWarning)
        module = sinabs.from_nir(graph, num_timesteps=num_steps)
    if single_spike:
        for name in LAYERS:
            module.get_submodule(name).spike_fn = SingleSpike
    return module.eval()


def run_sinabs(module: torch.nn.Module, images, num_steps: int, chunk: int = 100):
    """`logits, counts` of a sinabs-imported network on `images`, as `run_imported`.

    sinabs's layers take (batch * time, ...) with each sample's steps consecutive; states
    are reset before every chunk of images.
    """
    import sinabs

    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    current = {}
    hooks = [module.get_submodule(name).register_forward_hook(lambda _m, _i, spk, n=name: current.__setitem__(n, spk))
             for name in LAYERS]
    logits, counts = [], [[] for _ in LAYERS]
    try:
        with torch.no_grad():
            for batch in torch.split(images, chunk):
                sinabs.reset_states(module)
                out = module(batch.repeat_interleave(num_steps, dim=0))
                out = out[0] if isinstance(out, tuple) else out  # nirtorch returns (output, state)
                logits.append(out.reshape(len(batch), num_steps, -1).mean(1))
                for per_layer, name in zip(counts, LAYERS, strict=True):
                    spk = current[name]
                    per_layer.append(spk.reshape(len(batch), num_steps, *spk.shape[1:]).sum(1))
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(logits), [torch.cat(c) for c in counts]


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


def compare(model: SpikingLeNet, images, labels=None, dt: float = DT, sinabs: bool | None = None) -> dict:
    """Export `model`, import it in snnTorch (and sinabs), run all on `images`; the agreement.

    Returns, per network ("ours": reset by subtraction; "ours_reset_to_zero": the same
    weights with NIR's reset; "snntorch": the "nir" file in snnTorch; "sinabs": the
    "sinabs" file in sinabs with SingleSpike; "sinabs_multispike": the same as sinabs's
    importer leaves it) the spikes per image of each layer (mean over images) and, with
    `labels`, the accuracy; and for each imported network against ours (and snnTorch's
    against ours_reset_to_zero): the fraction of images with the same prediction, the
    relative difference of the total spikes per layer, and whether every neuron's count
    is identical. `sinabs`: include it (default: when it is installed).
    """
    import importlib.util

    if model.encoding != "direct":
        raise ValueError(f"compare needs direct encoding (a deterministic input), got {model.encoding!r}")
    if sinabs is None:
        sinabs = importlib.util.find_spec("sinabs") is not None
    model = model.eval()
    steps = model.num_steps
    with torch.no_grad():
        runs = {"ours": model.activity(images), "ours_reset_to_zero": with_reset_to_zero(model).activity(images)}
    with tempfile.TemporaryDirectory() as folder:
        runs["snntorch"] = run_imported(import_snntorch(write_nir(model, Path(folder) / "model.nir", dt)),
                                        images, steps)
        if sinabs:
            path = write_nir(model, Path(folder) / "sinabs.nir", convention="sinabs")
            runs["sinabs"] = run_sinabs(import_sinabs(path, steps), images, steps)
            runs["sinabs_multispike"] = run_sinabs(import_sinabs(path, steps, single_spike=False), images, steps)
    out = {"images": len(images), "num_steps": steps, "dt": dt, "networks": {}, "agreement": {}}
    spikes = {}
    for name, (logits, counts) in runs.items():
        spikes[name] = [float(c.sum()) for c in counts]
        entry = {"spikes_per_image": dict(zip(LAYERS, (s / len(images) for s in spikes[name]), strict=True))}
        if labels is not None:
            entry["accuracy"] = float((logits.argmax(1) == labels).float().mean())
        out["networks"][name] = entry
    pairs = [("snntorch", "ours"), ("snntorch", "ours_reset_to_zero")]
    pairs += [("sinabs", "ours"), ("sinabs_multispike", "ours")] if sinabs else []
    for theirs, ours in pairs:
        out["agreement"][f"{theirs}_vs_{ours}"] = {
            "same_prediction": float((runs[theirs][0].argmax(1) == runs[ours][0].argmax(1)).float().mean()),
            "spike_difference": {layer: (b - a) / a if a else float(b != a)
                                 for layer, a, b in zip(LAYERS, spikes[ours], spikes[theirs], strict=True)},
            "identical_neuron_counts": all(torch.equal(a, b) for a, b in zip(runs[ours][1], runs[theirs][1],
                                                                              strict=True)),
        }
    return out
