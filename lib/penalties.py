"""Other sparsity regularisers, the baselines beside the paper's spikeCount.

Each penalty maps per-neuron spike counts (`SpikingLeNet.activity`: counts[l] is (B, ...),
spikes summed over time) to a scalar, averaged over the batch like spikeCount, and enters
the loss as the paper's term does: L = cross_entropy + w * penalty(counts), with w from
`lib.schedules.weight` (the regulariser schedules there keep w = sigma0).

    upper_bound     sum_l mean_{b, i in l} max(0, counts_l[b, i] - bound)**2
    synops          mean_b sum_l sum_i fanout_l[i] * counts_l[b, i]
    layer_weighted  mean_b sum_l lambda_l * sum_i counts_l[b, i]
"""

from __future__ import annotations

import math
from functools import partial

import torch

from . import energy


def upper_bound(counts, bound: float):
    """Per-neuron upper-bound activity penalty of Zenke & Vogels 2021 ("The remarkable
    robustness of surrogate gradient learning for instilling complex function in spiking
    neural networks", Neural Computation 33(4):899-925, Methods, activity regularization):
    each neuron's spike count above `bound`, squared; no cost below it.

    Reduction as in their lab's library stork (fmi-basel/stork, `regularizers.UpperBoundL2`
    with dims=False, one regulariser per layer): the mean over batch and the layer's neurons,
    summed over layers, so a layer counts by its typical neuron, not by its size. `bound` is
    in spikes per neuron per inference (over all num_steps), as stork's threshold is. Its
    default (`Params.spike_bound` = 1) is ours: one spike per image is free, so at
    num_steps = 8 a neuron pays only above a rate of 1/8 per step; bound 0 makes this a plain
    per-neuron L2 penalty on the counts.
    """
    return sum(torch.relu(c - bound).square().mean() for c in counts)


def synops(counts, fanout):
    """SynOps-weighted spike penalty, after Sorbaro, Liu, Bortone & Sheik 2020 ("Optimizing
    the energy consumption of spiking neural networks for neuromorphic applications",
    Frontiers in Neuroscience 14:662): each spike weighted by its fan-out, i.e. the total
    synaptic operations per sample (`lib.energy`), averaged over the batch. Linear in the
    counts, like the paper's spikeCount, so only the weights per neuron differ."""
    return energy.synops_from_counts(counts, fanout).sum(1).mean()


def layer_weighted(counts, layer_weights):
    """spikeCount with a weight per hidden layer, sum_l lambda_l * spikes_l, averaged over the
    batch: Allred et al. 2020's term (eq. 3) when every lambda_l is 1; ours beyond that.
    It sits between spikeCount and `synops`: with lambda_l the fan-out of layer l it is
    `synops` for lif2..lif4, whose neurons share one fan-out (120, 84, 10)."""
    return sum(lam * c.flatten(1).sum(1) for lam, c in zip(layer_weights, counts, strict=True)).mean()


def parse_layer_weights(value, num_layers: int = 4) -> tuple[float, ...]:
    """Layer weights from "1,0.5,0.5,1" (a flat papermill parameter) or a sequence of numbers;
    ValueError unless there are `num_layers` finite numbers >= 0."""
    items = value.split(",") if isinstance(value, str) else value
    try:
        weights = tuple(float(x) for x in items)
    except (TypeError, ValueError):
        weights = ()
    if len(weights) != num_layers:
        raise ValueError(f"layer_weights must be {num_layers} comma-separated numbers, got {value!r}")
    if not all(math.isfinite(x) and x >= 0 for x in weights):
        raise ValueError(f"layer_weights must be {num_layers} finite numbers >= 0, got {value!r}")
    return weights


PENALTIES = {
    # name: (model, bound, layer_weights) -> the penalty as a function of the counts alone
    "upper_bound": lambda model, bound, layer_weights: partial(upper_bound, bound=bound),
    "synops": lambda model, bound, layer_weights: partial(synops, fanout=energy.fanouts(model)),
    "layer_weighted": lambda model, bound, layer_weights: partial(
        layer_weighted, layer_weights=parse_layer_weights(layer_weights)
    ),
}


def build(name: str, model, bound: float, layer_weights):
    """The named penalty as a function of the counts alone, its settings bound."""
    if name not in PENALTIES:
        raise ValueError(f"unknown penalty {name!r}; valid: {', '.join(PENALTIES)}")
    return PENALTIES[name](model, bound, layer_weights)
