"""A network's accuracy, spikes, SynOps and energy on a split: the numbers of every epoch row."""

from __future__ import annotations

import math

import torch

from . import data, energy
from .snn import LAYERS


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
