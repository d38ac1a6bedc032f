"""LIF dynamics, surrogates and spike accounting, checked by hand and against references."""

import pytest
import torch
import torch.nn.functional as F

from lib.snn import (
    LAYERS,
    LIF,
    SURROGATES,
    FastSigmoidSpike,
    LIFParameters,
    PiecewiseLinearSpike,
    SpikingLeNet,
    encode,
    lif_recursion,
    pool_spikes,
    spike_count,
)


def test_three_step_lif_trace_by_hand():
    # beta 0.5, threshold 1, constant input 0.8:
    # t1: mem 0.8            -> no spike, mem 0.8
    # t2: mem 0.4 + 0.8 = 1.2 -> spike,    mem 0.2
    # t3: mem 0.1 + 0.8 = 0.9 -> no spike, mem 0.9
    lif = LIF(LIFParameters(beta=0.5, threshold=1.0))
    mem = torch.zeros(1)
    trace = []
    for _ in range(3):
        spk, mem = lif(torch.tensor([0.8]), mem)
        trace.append((spk.item(), round(mem.item(), 6)))
    assert trace == [(0.0, 0.8), (1.0, 0.2), (0.0, 0.9)]
    seq = lif.sequence(torch.full((3, 1), 0.8))
    assert seq.flatten().tolist() == [0.0, 1.0, 0.0]


def test_zero_reset_trace_by_hand():
    # the same neuron, reset to zero: t2 spikes and leaves 0 (not 0.2), so t3 is 0.8 (not 0.9)
    lif = LIF(LIFParameters(beta=0.5, threshold=1.0, reset="zero"))
    mem, trace = torch.zeros(1), []
    for _ in range(4):
        spk, mem = lif(torch.tensor([0.8]), mem)
        trace.append((spk.item(), round(mem.item(), 6)))
    assert trace == [(0.0, 0.8), (1.0, 0.0), (0.0, 0.8), (1.0, 0.0)]
    assert lif.sequence(torch.full((4, 1), 0.8)).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]


def independent_lif(currents, beta, threshold, reset="subtract"):
    """Plain-Python LIF of the same equations, one neuron at a time."""
    out = []
    for neuron in currents.T.tolist():
        mem, spikes = 0.0, []
        for cur in neuron:
            mem = beta * mem + cur
            spk = 1.0 if mem > threshold else 0.0
            mem = 0.0 if reset == "zero" and spk else mem - spk * threshold
            spikes.append(spk)
        out.append(spikes)
    return torch.tensor(out).T


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_agrees_spike_for_spike_with_independent_implementation(reset):
    torch.manual_seed(1)
    cur = torch.rand(50, 200, dtype=torch.float64) * 1.5
    expected = independent_lif(cur, 0.9, 1.0, reset)
    assert expected.sum() > 100  # the test exercises firing
    assert torch.equal(LIF(LIFParameters(0.9, 1.0, reset=reset)).sequence(cur), expected.to(cur.dtype))


def test_the_two_resets_differ_where_a_spike_leaves_a_remainder():
    torch.manual_seed(2)
    cur = torch.rand(30, 500) * 1.5
    subtract, zero = (LIF(LIFParameters(0.9, 1.0, reset=r)).sequence(cur) for r in ("subtract", "zero"))
    assert torch.equal(subtract[0], zero[0]) and zero.sum() < subtract.sum()  # zero forgets the excess


@pytest.mark.parametrize(
    "x, expected",  # gamma * max(0, 1 - |x| / width), gamma 2, width 0.5
    [(0.0, 2.0), (0.25, 1.0), (-0.25, 1.0), (0.5, 0.0), (-1.0, 0.0), (0.1, 1.6)],
)
def test_piecewise_linear_surrogate_at_known_points(x, expected):
    x = torch.tensor([x], requires_grad=True)
    spk = PiecewiseLinearSpike.apply(x, 2.0, 0.5)
    spk.backward()
    assert spk.item() == float(x.item() > 0)
    assert x.grad.item() == pytest.approx(expected)


@pytest.mark.parametrize(
    "x, expected",  # gamma / (1 + slope |x|)^2, gamma 1, slope 10
    [(0.0, 1.0), (0.1, 0.25), (-0.1, 0.25), (0.3, 1 / 16), (1.0, 1 / 121)],
)
def test_fast_sigmoid_surrogate_at_known_points(x, expected):
    x = torch.tensor([x], requires_grad=True)
    spk = FastSigmoidSpike.apply(x, 1.0, 10.0)
    spk.backward()
    assert spk.item() == float(x.item() > 0)
    assert x.grad.item() == pytest.approx(expected)


RESETS = [("subtract", True), ("subtract", False), ("zero", True)]  # (reset, detach_reset)


@pytest.mark.parametrize("name", list(SURROGATES))
@pytest.mark.parametrize("reset,detach_reset", RESETS)
def test_fused_lif_gradient_equals_step_by_step_autograd(name, reset, detach_reset):
    torch.manual_seed(0)
    cur = (torch.rand(12, 64, dtype=torch.float64) * 1.6).requires_grad_()
    weights = torch.randn(12, 64, dtype=torch.float64)
    lif = LIF(LIFParameters(0.8, 1.0, name, 1.0, 1.0 if name == "piecewise_linear" else 5.0, detach_reset, reset))
    (lif.sequence(cur) * weights).sum().backward()
    fused = cur.grad.clone()
    cur.grad = None
    mem, total = torch.zeros(64, dtype=torch.float64), 0
    for t in range(12):
        spk, mem = lif(cur[t], mem)
        total = total + (spk * weights[t]).sum()
    total.backward()
    torch.testing.assert_close(fused, cur.grad)


def gradients(net, images, labels, weight=1e-3):
    """Outputs and gradients of one training loss as lib.train.train_epoch takes it:
    CE + w * spikeCount."""
    logits, spikes = net(images, generator=torch.Generator().manual_seed(5))
    (F.cross_entropy(logits, labels) + weight * spike_count(spikes)).backward()
    return logits, spikes, {name: p.grad for name, p in net.named_parameters()}


@pytest.mark.parametrize("encoding", ["direct", "poisson"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("reset,detach_reset", RESETS)
def test_lenet_shapes_and_fast_path_equals_step_by_step(encoding, surrogate, reset, detach_reset):
    lif = LIFParameters(threshold=0.5, surrogate=surrogate, detach_reset=detach_reset, reset=reset,
                        scale=1.0 if surrogate == "piecewise_linear" else 5.0)
    torch.manual_seed(0)
    fast = SpikingLeNet(num_steps=6, encoding=encoding, p=lif)
    ref = SpikingLeNet(num_steps=6, encoding=encoding, p=lif, step_by_step=True)
    ref.load_state_dict(fast.state_dict())
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 9, 3])
    logits, spikes, grads = gradients(fast, images, labels)
    ref_logits, ref_spikes, ref_grads = gradients(ref, images, labels)
    assert logits.shape == (4, 10) and spikes.shape == (4, 4)
    assert spikes[:, 3].sum() > 0  # every layer fires, so every LIF's backward is exercised
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(logits, ref_logits)
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_spike_counts_equal_explicit_sum_over_recorded_spikes():
    torch.manual_seed(0)
    net = SpikingLeNet(num_steps=4, p=LIFParameters(threshold=0.3))
    recorded = {i: [] for i in range(4)}
    originals = [lif.forward for lif in net.lif]

    def recording(i):
        def forward(cur, mem):
            spk, mem = originals[i](cur, mem)
            recorded[i].append(spk.detach())
            return spk, mem

        return forward

    for i, lif in enumerate(net.lif):
        lif.forward = recording(i)
    net.step_by_step = True
    images = torch.randn(2, 3, 32, 32)
    _, spikes = net(images)
    # recorded[i]: one (B, ...) tensor per step -> (T, B, ...) -> sum over all but B
    per_layer = [torch.stack(recorded[i]).transpose(0, 1).flatten(1).sum(1) for i in range(4)]
    explicit = torch.stack(per_layer, 1)
    assert torch.equal(spikes, explicit)
    assert spikes[:, :2].sum() > 0
    net.step_by_step = False
    assert torch.equal(net(images)[1], spikes)


def test_poisson_encoding_is_signed_rate_code():
    images = torch.tensor([0.0, 0.5, -1.0, 3.0]).view(1, 1, 1, 4)
    spikes = encode(images, 4000, "poisson", torch.Generator().manual_seed(0))
    rate = spikes.mean(0).flatten()
    assert rate[0] == 0 and rate[2] == -1 and rate[3] == 1
    assert abs(rate[1] - 0.5) < 0.03
    with pytest.raises(ValueError, match="direct"):
        encode(images, 2, "latency")


def test_spike_count_normalisations():
    spikes = torch.tensor([[4.0, 2.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    assert spike_count(spikes).item() == 4.0
    per_neuron_step = spike_count(spikes, "per_neuron_step", num_steps=2, layer_sizes=(4, 2, 1, 1))
    assert per_neuron_step.item() == pytest.approx(4.0 / 16)
    with pytest.raises(ValueError, match="sample_total"):
        spike_count(spikes, "per_layer_max")


def test_bad_network_settings():
    with pytest.raises(ValueError, match="num_steps"):
        SpikingLeNet(num_steps=0)
    with pytest.raises(ValueError, match="direct"):
        SpikingLeNet(encoding="rate")
    with pytest.raises(ValueError, match="fast_sigmoid"):
        SpikingLeNet(p=LIFParameters(surrogate="arctan"))
    with pytest.raises(ValueError, match="piecewise_linear"):
        LIF(LIFParameters(surrogate="tanh"))
    with pytest.raises(TypeError, match="LIFParameters"):
        LIF(0.5)  # the constants are one value, not positional numbers
    with pytest.raises(ValueError, match="unknown reset 'hard'; valid: subtract, zero"):
        LIF(LIFParameters(reset="hard"))
    with pytest.raises(ValueError, match="reset 'zero' is implemented with the reset detached only"):
        LIF(LIFParameters(reset="zero", detach_reset=False))


def test_activity_gives_per_neuron_counts_that_sum_to_spikes():
    torch.manual_seed(0)
    net = SpikingLeNet(num_steps=3, p=LIFParameters(threshold=0.3))
    images = torch.randn(2, 3, 32, 32)
    logits, counts = net.activity(images)
    assert [tuple(c.shape) for c in counts] == [(2, 6, 28, 28), (2, 16, 10, 10), (2, 120), (2, 84)]
    assert all(c.max() <= 3 and c.min() >= 0 for c in counts)  # at most one spike per step
    _, spikes = net(images)
    assert torch.equal(torch.stack([c.flatten(1).sum(1) for c in counts], 1), spikes)


def test_training_builds_every_lif_layer_from_params():
    from lib.params import Params, initial_network

    params = Params(beta=0.5, threshold=0.7, surrogate="fast_sigmoid", surrogate_gamma=2.0, surrogate_scale=3.0,
                    detach_reset=False, num_steps=3, encoding="poisson")
    model = initial_network(params)
    assert [lif.p for lif in model.lif] == [LIFParameters(0.5, 0.7, "fast_sigmoid", 2.0, 3.0, False)] * 4
    assert (model.num_steps, model.encoding) == (3, "poisson")


def test_pool_spikes_is_avg_pool2d_bit_for_bit_on_spikes():
    spikes = (torch.rand(7, 3, 12, 8, generator=torch.Generator().manual_seed(0)) > 0.6).float()
    assert torch.equal(pool_spikes(spikes), F.avg_pool2d(spikes, 2))
    # by hand: one window [[1, 1], [0, 1]] -> 0.75
    assert pool_spikes(torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]])).item() == 0.75
    with pytest.raises(ValueError, match="2x2"):
        pool_spikes(spikes, 3)


def test_inference_lif_recursion_matches_the_autograd_layer_and_keeps_no_graph():
    p = LIFParameters(beta=0.8, threshold=0.7)
    cur = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    with_grad = LIF(p).sequence(cur)
    with torch.no_grad():
        without = LIF(p).sequence(cur)
    assert with_grad.grad_fn is not None and without.grad_fn is None
    assert torch.equal(with_grad.detach(), without)
    assert torch.equal(lif_recursion(cur.detach(), p), without)


def test_the_layer_table_matches_the_network():
    net = SpikingLeNet(num_steps=5)
    rows = net.layers()
    assert [r["layer"] for r in rows if r["neurons"]] == list(LAYERS)
    assert tuple(r["neurons"] for r in rows if r["neurons"]) == SpikingLeNet.layer_sizes
    assert sum(r["parameters"] or 0 for r in rows) == sum(p.numel() for p in net.parameters())
    _, counts = net.activity(torch.zeros(2, 3, 32, 32))
    shapes = ["x".join(map(str, c.shape[1:])) for c in counts]
    assert shapes == [r["shape"] for r in rows if r["neurons"]]
