"""The regulariser baselines by hand, their registry beside the paper's schedules, and
one training step through each."""

import pytest
import torch

from lib import energy, penalties, schedules
from lib.params import Params
from lib.snn import LIFParameters, SpikingLeNet, spike_count
from lib.train import sparsity_penalty


def test_upper_bound_by_hand():
    # bound 1: layer a has excesses 0, 1, 2 -> squares 0, 1, 4, mean 5/3; layer b 4**2 = 16
    counts = [torch.tensor([[0.0, 2.0, 3.0]]), torch.tensor([[5.0]])]
    assert penalties.upper_bound(counts, 1.0).item() == pytest.approx(5 / 3 + 16)
    # the mean runs over batch and neurons: a second, silent sample halves layer b's term
    counts = [torch.zeros(2, 3), torch.tensor([[5.0], [0.0]])]
    assert penalties.upper_bound(counts, 1.0).item() == pytest.approx(8.0)


def test_upper_bound_gives_no_gradient_below_the_bound():
    counts = torch.tensor([[0.5, 1.0, 3.0]], requires_grad=True)
    penalties.upper_bound([counts], 1.0).backward()
    assert counts.grad.tolist() == [[0.0, 0.0, pytest.approx(2 * 2 / 3)]]  # d/dc mean((c - 1)**2)


def test_synops_penalty_is_the_batch_mean_of_total_synops():
    torch.manual_seed(0)
    model = SpikingLeNet(num_steps=2, p=LIFParameters(threshold=0.3))
    _, counts = model.activity(torch.randn(2, 3, 32, 32))
    fanout = energy.fanouts(model)
    expected = energy.synops_from_counts([c.double() for c in counts], fanout).sum(1).mean()
    assert penalties.synops(counts, fanout).item() == pytest.approx(expected.item(), rel=1e-6)


def test_layer_weighted_by_hand_and_with_unit_weights_is_spike_count():
    counts = [torch.tensor([[[2.0, 1.0]], [[0.0, 0.0]]]), torch.tensor([[4.0], [2.0]])]
    # sample 0: 0.5 * 3 + 2 * 4 = 9.5; sample 1: 2 * 2 = 4; mean 6.75
    assert penalties.layer_weighted(counts, (0.5, 2.0)).item() == 6.75
    totals = torch.stack([c.flatten(1).sum(1) for c in counts], 1)
    assert penalties.layer_weighted(counts, (1.0, 1.0)).item() == spike_count(totals).item()


def test_parse_layer_weights():
    assert penalties.parse_layer_weights("1,0.5, 0,2") == (1.0, 0.5, 0.0, 2.0)
    assert penalties.parse_layer_weights([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    for bad in ["1,1,1", "1,x,1,1", "1,1,1,-1", "1,1,1,nan", 3.0]:
        with pytest.raises(ValueError, match="layer_weights must be 4"):
            penalties.parse_layer_weights(bad)


def test_regulariser_schedules_beside_the_papers():
    assert schedules.NAMES == (*schedules.SCHEDULES, "upper_bound", "synops", "layer_weighted")
    assert set(penalties.PENALTIES) == set(schedules.REGULARISERS)
    for name in schedules.REGULARISERS:
        assert schedules.penalty(name) == name
        assert [schedules.weight(name, 2e-3, n, 5) for n in range(1, 6)] == [2e-3] * 5
    assert schedules.penalty("linear") is None
    with pytest.raises(ValueError, match="layer_weighted"):
        schedules.penalty("cosine")


@pytest.mark.parametrize("schedule", ["linear", *schedules.REGULARISERS])
def test_one_training_step_through_each_penalty_lowers_it(schedule):
    torch.manual_seed(0)
    model = SpikingLeNet(num_steps=3, p=LIFParameters(threshold=0.3))
    params = Params(schedule=schedule, sigma0=1.0, num_steps=3, spike_bound=0.5, layer_weights="1,2,3,4").check()
    per_neuron, penalty = sparsity_penalty(model, params)
    assert per_neuron == (schedule != "linear")
    images = torch.randn(4, 3, 32, 32)
    measure = lambda: penalty((model.activity if per_neuron else model)(images)[1])  # noqa: E731
    before = measure()
    before.backward()
    with torch.no_grad():  # a small step against the penalty's own gradient
        for p in model.parameters():
            if p.grad is not None:  # the readout fc3 plays no part in the penalty
                p -= 1e-2 * p.grad / (p.grad.norm() + 1e-12)
    assert measure().item() < before.item()


def test_build_binds_each_penalty_to_its_own_setting():
    model = SpikingLeNet()  # synops: lif4's 84 neurons feed the 10 readouts, so each spike costs 10
    silent = [torch.zeros(1, 6, 28, 28), torch.zeros(1, 16, 10, 10), torch.zeros(1, 120)]
    counts = [*silent, torch.tensor([[3.0] + [0.0] * 83])]  # one lif4 neuron, 3 spikes
    # upper_bound, bound 1: lif4's mean excess squared (3 - 1)**2 / 84; layer_weighted: 0.5 * 3
    assert penalties.build("upper_bound", model, 1.0, "9,9,9,9")(counts).item() == pytest.approx(4 / 84)
    assert penalties.build("synops", model, 1.0, "9,9,9,9")(counts).item() == 30.0
    assert penalties.build("layer_weighted", model, 1.0, "9,9,9,0.5")(counts).item() == 1.5
    with pytest.raises(ValueError, match="upper_bound, synops, layer_weighted"):
        penalties.build("l1", model, 1.0, "1,1,1,1")
