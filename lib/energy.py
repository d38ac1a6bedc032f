"""Synaptic operations (SynOps) and an energy estimate per inference.

A spike of a hidden neuron costs one accumulate (AC) in every neuron of the next layer it
connects to, so the work it causes is its fan-out (Allred et al. sec. 1; counted this way in
sinabs and by Sorbaro et al. 2020). For layer l and sample b:

    synops[b, l] = sum_i fanout_l[i] * counts_l[b, i]          (counts: spikes summed over time)

Fan-outs of the SpikingLeNet, counted exactly:

    lif1 (6, 28, 28)   a spike at (c, i, j) enters avgpool cell (c, i//2, j//2) of the 14 x 14
                       map; that cell feeds conv2 (k5, no padding) at every output position
                       whose window covers it, in all 16 channels: 16 * ny * nx, with
                       ny, nx in 1..5 (fewer at the border). Computed as a transposed
                       convolution of ones (as sinabs does), then spread over the 2 x 2 cell.
    lif2 (16, 10, 10)  via its pool cell to all 120 fc1 neurons
    lif3 (120,)        84 (fc2)
    lif4 (84,)         10 (fc3, the readout)

The average pool's 1/4 is folded into conv2's and fc1's weights: each spike is one event
for the next layer, not a quarter of one. The fan-out counts synapses that exist, whatever
their weight (a zero weight still costs an AC on hardware that does not skip it).

Energy per inference (Horowitz 2014, "Computing's energy problem", ISSCC, 45 nm, 32-bit
float): a multiply-accumulate (MAC) costs 3.7 + 0.9 = 4.6 pJ, an accumulate 0.9 pJ.

    SNN: E = AC_PJ * sum_l synops[l] + MAC_PJ * conv1 MACs * (num_steps | 1)
    ANN: E = MAC_PJ * (MACs of conv1, conv2, fc1, fc2, fc3), once per inference

With direct encoding conv1 sees the analog image, so it multiplies: its MACs are not
spike-driven. Convention `input_macs`:

    "per_step" (default)  conv1 runs at every one of the num_steps, as on a time-stepped
                          neuromorphic chip fed the image each step. Conservative: never
                          flatters the SNN.
    "once"                conv1 runs once, as this implementation computes it (the input
                          current is the same at every step, a constant bias current).

With Poisson encoding conv1 is driven by input spikes, which are not counted; "per_step"
then counts its dense MACs at every step, an upper bound on that layer's work.
Both networks leave out what is the same or small in each: biases, pooling sums, and the
neuron updates (leak, threshold, reset).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAC_PJ = 4.6  # Horowitz 2014, 45 nm: 32-bit float multiply 3.7 pJ + add 0.9 pJ
AC_PJ = 0.9  # Horowitz 2014, 45 nm: 32-bit float add
SOURCE = "Horowitz 2014, ISSCC, 45 nm, 32-bit float: MAC 4.6 pJ (3.7 mult + 0.9 add), AC 0.9 pJ"
INPUT_MACS = ("per_step", "once")
POOL = 2  # SpikingLeNet's average pools after lif1 and lif2


def conv_fanout(conv, out_size) -> torch.Tensor:
    """(C_in, H_in, W_in): per input position of `conv`, how many (output channel, output
    position) pairs it feeds, given the output's (H_out, W_out). A transposed convolution of
    ones (as sinabs counts it), so borders, stride and padding are exact."""
    weight = conv.weight.detach()
    ones = torch.ones(1, conv.out_channels, *out_size, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        return F.conv_transpose2d(
            ones, torch.ones_like(weight), stride=conv.stride, padding=conv.padding, dilation=conv.dilation
        )[0]


def pooled(fanout, pool: int = POOL) -> torch.Tensor:
    """Fan-out before a pool x pool pooling: every neuron of a cell feeds what the cell feeds."""
    return fanout.repeat_interleave(pool, -2).repeat_interleave(pool, -1)


def fanouts(model) -> list[torch.Tensor]:
    """Per hidden neuron, the accumulates one of its spikes causes (module docstring);
    shaped like one sample of `model.activity`'s counts, on the model's device."""
    conv2, fc1, fc2, fc3 = model.conv2, model.fc1, model.fc2, model.fc3
    side = math.isqrt(model.layer_sizes[1] // conv2.out_channels)  # conv2's output: 10 x 10
    like = dict(device=conv2.weight.device, dtype=conv2.weight.dtype)
    return [
        pooled(conv_fanout(conv2, (side, side))),
        torch.full((conv2.out_channels, side, side), float(fc1.out_features), **like),
        torch.full((model.layer_sizes[2],), float(fc2.out_features), **like),
        torch.full((model.layer_sizes[3],), float(fc3.out_features), **like),
    ]


def synops_from_counts(counts, fanout) -> torch.Tensor:
    """(B, layers) spike-driven accumulates per sample from per-neuron counts (B, ...) and
    `fanouts(model)`. Computed in the counts' dtype: pass float64 counts for exact totals
    (float32 is exact only below 2**24 per sample), float32 where a gradient is wanted."""
    return torch.stack(
        [(c * f.to(c.dtype)).flatten(1).sum(1) for c, f in zip(counts, fanout, strict=True)], dim=1
    )


@torch.no_grad()
def synops(model, images, generator=None) -> torch.Tensor:
    """(B, layers) SynOps of each image: one forward pass, counted exactly in float64."""
    _, counts = model.activity(images, generator)
    return synops_from_counts([c.double() for c in counts], fanouts(model))


def dense_macs(model) -> tuple[int, ...]:
    """MACs of the same LeNet as a non-spiking network, per layer conv1, conv2, fc1, fc2, fc3:
    outputs x fan-in (no padding in LeNet, so every output sees a full window)."""
    conv1 = model.layer_sizes[0] * model.conv1.weight[0].numel()
    conv2 = model.layer_sizes[1] * model.conv2.weight[0].numel()
    return (conv1, conv2, *(fc.in_features * fc.out_features for fc in (model.fc1, model.fc2, model.fc3)))


def input_macs(model, convention: str = "per_step") -> int:
    """conv1's MACs per inference under the `input_macs` convention (module docstring)."""
    if convention not in INPUT_MACS:
        raise ValueError(f"unknown input_macs convention {convention!r}; valid: {', '.join(INPUT_MACS)}")
    if convention == "once" and model.encoding != "direct":
        raise ValueError(f"input_macs 'once' needs a constant input (direct encoding), not {model.encoding!r}")
    return dense_macs(model)[0] * (model.num_steps if convention == "per_step" else 1)


def energy_pj(synops_total, model, convention: str = "per_step"):
    """SNN energy per inference in pJ from its total SynOps (a number or a tensor of them)."""
    return AC_PJ * synops_total + MAC_PJ * input_macs(model, convention)


def breakdown(synops_per_layer, ref: dict, layers=("lif1", "lif2", "lif3", "lif4")) -> dict:
    """The SNN's energy per inference in pJ, part by part, from its SynOps per hidden layer and
    a record's `reference`: conv1's MACs on the input, then each layer's spikes as ACs. The
    parts sum to `energy_pj` of the same SynOps."""
    parts = {"conv1 input (MACs)": ref["mac_pj"] * ref["snn_input_macs"]}
    parts.update({f"{name} spikes (ACs)": ref["ac_pj"] * s for name, s in zip(layers, synops_per_layer, strict=True)})
    return parts


def reference(model, convention: str = "per_step") -> dict:
    """The constants and the non-spiking LeNet's energy, for a run's record."""
    macs = dense_macs(model)
    return {
        "source": SOURCE,
        "mac_pj": MAC_PJ,
        "ac_pj": AC_PJ,
        "input_macs": convention,
        "conv1_macs_per_step": macs[0],
        "snn_input_macs": input_macs(model, convention),
        "ann_macs": sum(macs),
        "ann_energy_pj": MAC_PJ * sum(macs),
    }
