"""SynOps by hand and by brute force, and the energy estimate's arithmetic."""

import pytest
import torch
import torch.nn.functional as F

from lib import energy
from lib.snn import LIFParameters, SpikingLeNet


def test_conv_fanout_of_a_4x4_map_into_a_3x3_conv_by_hand():
    # a 3x3 window slides over 2x2 positions: a corner pixel is in 1 window, an edge pixel
    # in 2, a centre pixel in 4; 4 windows x 9 weights = 36 accumulates in all
    fanout = energy.conv_fanout(torch.nn.Conv2d(1, 1, 3), (2, 2))
    assert fanout.tolist() == [[[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]]
    # two output channels: every pair doubles
    assert torch.equal(energy.conv_fanout(torch.nn.Conv2d(1, 2, 3), (2, 2)), 2 * fanout)


def test_pooled_fanout_by_hand():
    # an 8x8 spike map, 2x2 pooled to 4x4, into the 3x3 conv above: spike (i, j) feeds what
    # pool cell (i // 2, j // 2) feeds
    fanout = energy.pooled(energy.conv_fanout(torch.nn.Conv2d(1, 1, 3), (2, 2)))
    assert fanout.shape == (1, 8, 8)
    assert fanout[0, 0].tolist() == [1, 1, 2, 2, 2, 2, 1, 1]
    assert fanout[0, 2].tolist() == [2, 2, 4, 4, 4, 4, 2, 2]
    assert fanout.sum() == 4 * 36


def test_synops_from_counts_by_hand():
    counts = [torch.tensor([[[1.0, 0.0], [2.0, 1.0]]]), torch.tensor([[3.0, 0.0]])]
    fanout = [torch.tensor([[4.0, 9.0], [5.0, 7.0]]), torch.tensor([10.0, 10.0])]
    # 1*4 + 2*5 + 1*7 = 21; 3*10 = 30
    assert energy.synops_from_counts(counts, fanout).tolist() == [[21.0, 30.0]]


def brute_force_fanouts(model):
    """Each hidden neuron alone as a one-hot spike map, sent through the next layer (pool,
    then conv2 or a linear layer) with every weight 1 and no bias: the sum of the next layer's
    inputs then counts each (weight, output) pair the spike touches once."""
    out = []
    sum_pool = lambda x: F.avg_pool2d(x, 2) * 4  # the spike itself, not a quarter of it
    one_hot = torch.eye(4704).view(4704, 6, 28, 28)
    out.append(F.conv2d(sum_pool(one_hot), torch.ones_like(model.conv2.weight)).flatten(1).sum(1).view(6, 28, 28))
    one_hot = torch.eye(1600).view(1600, 16, 10, 10)
    out.append((sum_pool(one_hot).flatten(1) @ torch.ones(400, 120)).sum(1).view(16, 10, 10))
    out.append((torch.eye(120) @ torch.ones(120, 84)).sum(1))
    out.append((torch.eye(84) @ torch.ones(84, 10)).sum(1))
    return out


def test_lenet_fanouts_equal_brute_force_and_known_values():
    model = SpikingLeNet()
    fast, slow = energy.fanouts(model), brute_force_fanouts(model)
    for f, s in zip(fast, slow, strict=True):
        assert torch.equal(f, s)
    # lif1: a corner spike's pool cell is in 1 x 1 windows, a centre one in 5 x 5; 16 channels
    assert fast[0][0, 0, 0] == 16 and fast[0][0, 13, 13] == 16 * 25
    assert fast[0].sum() == 4 * 240_000  # 4 spikes per pool cell x conv2's 240,000 MACs
    assert [f.unique().tolist() for f in fast[1:]] == [[120.0], [84.0], [10.0]]


def test_lenet_synops_equal_brute_force_count_on_images():
    torch.manual_seed(0)
    model = SpikingLeNet(num_steps=4, p=LIFParameters(threshold=0.3))  # low threshold: every layer spikes
    images = torch.randn(3, 3, 32, 32)
    result = energy.synops(model, images)
    _, counts = model.activity(images)
    assert all(c.sum() > 0 for c in counts)
    slow = brute_force_fanouts(model)
    # per sample, per spiking neuron: its spikes times the pairs its one-hot map touched
    expected = [
        [sum(n * f for n, f in zip(c[b].flatten().tolist(), s.flatten().tolist(), strict=True)) for c, s in
         zip(counts, slow, strict=True)]
        for b in range(3)
    ]
    assert result.dtype == torch.float64 and result.shape == (3, 4)
    assert result.tolist() == expected


def test_dense_macs_of_the_same_lenet_by_hand():
    model = SpikingLeNet(num_steps=8)
    # conv1 6*28*28 outputs x 3*5*5; conv2 16*10*10 x 6*5*5; fc 400*120, 120*84, 84*10
    assert energy.dense_macs(model) == (352_800, 240_000, 48_000, 10_080, 840)
    assert energy.input_macs(model) == 8 * 352_800
    assert energy.input_macs(model, "once") == 352_800
    ref = energy.reference(model)
    assert ref["ann_macs"] == 651_720
    assert ref["ann_energy_pj"] == pytest.approx(4.6 * 651_720)
    assert ref["mac_pj"] == 4.6 and ref["ac_pj"] == 0.9 and "Horowitz 2014" in ref["source"]


def test_energy_is_spike_driven_accumulates_plus_conv1_macs():
    model = SpikingLeNet(num_steps=2)
    assert energy.energy_pj(1000.0, model) == pytest.approx(0.9 * 1000 + 4.6 * 2 * 352_800)
    assert energy.energy_pj(1000.0, model, "once") == pytest.approx(0.9 * 1000 + 4.6 * 352_800)
    totals = torch.tensor([0.0, 10.0], dtype=torch.float64)
    assert energy.energy_pj(totals, model, "once").tolist() == pytest.approx([4.6 * 352_800, 9 + 4.6 * 352_800])


def test_energy_conventions_are_checked():
    with pytest.raises(ValueError, match="per_step, once"):
        energy.input_macs(SpikingLeNet(), "never")
    with pytest.raises(ValueError, match="direct"):
        energy.input_macs(SpikingLeNet(encoding="poisson"), "once")


def test_breakdown_sums_to_the_energy_estimate():
    model = SpikingLeNet(num_steps=4)
    ref = energy.reference(model)
    parts = energy.breakdown([1000.0, 200.0, 30.0, 4.0], ref)
    assert list(parts) == ["conv1 input (MACs)", "lif1 spikes (ACs)", "lif2 spikes (ACs)", "lif3 spikes (ACs)",
                           "lif4 spikes (ACs)"]
    assert parts["conv1 input (MACs)"] == pytest.approx(4.6 * 352_800 * 4)
    assert parts["lif2 spikes (ACs)"] == pytest.approx(0.9 * 200)
    assert sum(parts.values()) == pytest.approx(energy.energy_pj(1234.0, model))
