"""The fast path used by lib.train against the plain step-by-step reference, and the
allocator setting of the training entry point. Speed itself is measured in benchmarks/."""

import pytest
import torch
import torch.nn.functional as F

from lib.snn import SURROGATES, SpikingLeNet, spike_count
from lib.train import MALLOC_ENV, keep_freed_memory


def training_step(net, images, labels, weight=1e-3):
    """One step as lib.train.train_epoch takes it: CE + w * spikeCount, backward, Adam.

    Returns the gradients before the Adam step: Adam divides by sqrt(v), so gradients that
    agree to float rounding can still give visibly different updates where they are ~0."""
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    logits, spikes = net(images, generator=torch.Generator().manual_seed(5))
    loss = F.cross_entropy(logits, labels) + weight * spike_count(spikes)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    optimiser.step()
    return spikes, grads


@pytest.mark.parametrize("encoding", ["direct", "poisson"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("detach_reset", [True, False])
def test_training_step_fast_equals_step_by_step(encoding, surrogate, detach_reset):
    settings = dict(
        num_steps=6, threshold=0.5, encoding=encoding, surrogate=surrogate, detach_reset=detach_reset,
        surrogate_scale=1.0 if surrogate == "piecewise_linear" else 5.0,
    )
    torch.manual_seed(0)
    fast = SpikingLeNet(**settings)
    ref = SpikingLeNet(**settings, step_by_step=True)
    ref.load_state_dict(fast.state_dict())
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 9, 3])
    spikes, grads = training_step(fast, images, labels)
    ref_spikes, ref_grads = training_step(ref, images, labels)
    assert spikes[:, 3].sum() > 0  # every layer fires, so every LIF's backward is exercised
    assert torch.equal(spikes, ref_spikes)
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_evaluation_without_autograd_gives_the_same_numbers():
    torch.manual_seed(0)
    net = SpikingLeNet(num_steps=5, threshold=0.5)
    images = torch.randn(3, 3, 32, 32)
    logits, spikes = net(images)
    with torch.no_grad():
        eval_logits, eval_spikes = net(images)
    assert torch.equal(spikes, eval_spikes) and torch.equal(logits.detach(), eval_logits)


def test_keep_freed_memory_applies_and_yields_to_the_users_setting(monkeypatch):
    for name in MALLOC_ENV:
        monkeypatch.delenv(name, raising=False)
    applied = keep_freed_memory()
    assert isinstance(applied, bool)
    assert keep_freed_memory() == applied  # idempotent
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert keep_freed_memory() is False
