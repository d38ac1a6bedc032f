"""The fused CPU LIF kernel (lib.kernels) against lib.snn's PyTorch path (`lif_layer_torch`):
the same spikes, pooled spikes, counts and gradients, layer by layer and through the network on
real CIFAR-10 batches; and the fallback where the kernel cannot be built. The PyTorch path
against plain autograd (the reset kept in the graph) is tests/test_snn.py's step-by-step test,
which runs the fused path too."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lib import kernels, snn
from lib.data import load_cifar10, prepare
from lib.params import Params, initial_network
from lib.snn import SURROGATES, LIFParameters, lif_layer_torch

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("SNN_FUSED") == "0":
    pytest.skip("SNN_FUSED=0: the fused kernel is switched off", allow_module_level=True)


def test_the_kernel_is_built_and_runs_by_default():
    """`make install` builds it; a machine with a compiler never silently runs the slow path."""
    assert kernels.available() and kernels.name() == "fused"
    assert kernels.supports(torch.zeros(2, 3, 4, 4), pool=True)
    assert not kernels.supports(torch.zeros(2, 3, 5, 4), pool=True)  # odd planes: the PyTorch path
    assert not kernels.supports(torch.zeros(2, 3, dtype=torch.int64), pool=False)


def lif(surrogate, detach_reset, reset="subtract"):
    return LIFParameters(threshold=1.0, surrogate=surrogate, detach_reset=detach_reset, reset=reset,
                         scale=1.0 if surrogate == "piecewise_linear" else 5.0, gamma=0.7)


# (reset, detach_reset): subtraction with the reset detached or in the graph; the zero reset (detached)
RESETS = [("subtract", True), ("subtract", False), ("zero", True)]


# (neurons, pooled, direct): lif1 of the LeNet with direct encoding (the current repeated over
# time) and with an input over time; lif2 (several channels to a plane); lif3, lif4; a VGG-sized layer
LAYERS = [((6, 28, 28), True, True), ((6, 28, 28), True, False), ((16, 10, 10), True, False),
          ((120,), False, False), ((84,), False, False), ((64, 8, 8), True, True)]


@pytest.mark.parametrize("neurons,pool,direct", LAYERS)
@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("reset,detach_reset", RESETS)
@pytest.mark.parametrize("T", [1, 5, 16, 40])
def test_fused_layer_equals_the_pytorch_path(neurons, pool, direct, surrogate, reset, detach_reset, T):
    p = lif(surrogate, detach_reset, reset)
    torch.manual_seed(T)
    B = 4
    x = (torch.randn((B, *neurons) if direct else (T, B, *neurons)) * 1.5).requires_grad_()
    steps = T if direct else None
    ref_out, ref_count = lif_layer_torch(x, p, pool, steps)
    g_out, g_count = torch.randn_like(ref_out), torch.randn_like(ref_count)
    ((ref_out * g_out).sum() + (ref_count * g_count).sum()).backward()
    ref_grad, x.grad = x.grad, None
    out, count = kernels.FusedLIF.apply(x, p, pool, steps)
    assert ref_count.sum() > 0 and ref_out.shape == out.shape and ref_count.shape == count.shape
    assert torch.equal(out, ref_out) and torch.equal(count, ref_count)
    ((out * g_out).sum() + (count * g_count).sum()).backward()
    # the same operations in the same order: equal on these shapes (a repeated current's gradient
    # is summed over time in at::native's order, which changes for a few columns of odd sizes)
    torch.testing.assert_close(x.grad, ref_grad, rtol=1e-6, atol=1e-7)
    assert torch.equal(x.grad, ref_grad)
    # only one of the two outputs reaching the loss (the count unused: the baseline's loss)
    x.grad = None
    out, count = kernels.FusedLIF.apply(x, p, pool, steps)
    (out * g_out).sum().backward()
    only_out, x.grad = x.grad, None
    ref_out, _ = lif_layer_torch(x, p, pool, steps)
    (ref_out * g_out).sum().backward()
    assert torch.equal(only_out, x.grad)
    with torch.no_grad():  # inference
        assert all(map(torch.equal, kernels.forward(x, p, pool, steps), lif_layer_torch(x, p, pool, steps)))


def test_float64_and_a_long_sequence():
    p = lif("fast_sigmoid", False)
    x = (torch.randn(300, 2, 3, 4, 4, dtype=torch.float64) * 1.5).requires_grad_()
    ref_out, ref_count = lif_layer_torch(x, p, True)
    ref_out.sum().add(ref_count.square().sum()).backward()
    ref_grad, x.grad = x.grad, None
    out, count = kernels.FusedLIF.apply(x, p, True, None)
    out.sum().add(count.square().sum()).backward()
    assert out.dtype == torch.float64 and torch.equal(out, ref_out) and torch.equal(count, ref_count)
    torch.testing.assert_close(x.grad, ref_grad, rtol=1e-12, atol=1e-14)


def test_bad_shapes_are_refused_before_any_work():
    p = LIFParameters()
    with pytest.raises(ValueError, match=r"\(C, H, W\) neurons"):
        kernels.FusedLIF.apply(torch.zeros(3, 2, 16), p, True, None)
    with pytest.raises(RuntimeError, match="steps, T"):
        torch.ops.snn_lif.forward(torch.zeros(3, 2, 16), 4, 0, 0, False, 0.9, 1.0, 0, 1.0, 1.0, True, False, True)
    with pytest.raises(RuntimeError, match="H and W even"):
        torch.ops.snn_lif.forward(torch.zeros(3, 2, 15), 3, 3, 5, False, 0.9, 1.0, 0, 1.0, 1.0, True, False, True)


@pytest.fixture(scope="module")
def cifar_batches(cifar10_dir, cache_dir):
    splits = prepare(load_cifar10(cifar10_dir, cache_dir), seed=0, train_size=96, val_size=16, test_size=16)
    return [splits.train.images[:64], splits.train.images[64:]], [splits.train.labels[:64], splits.train.labels[64:]]


def step(model, images, labels, fused: bool, monkeypatch):
    """One training loss's outputs and gradients, with the fused kernel or lib.snn's PyTorch path."""
    with monkeypatch.context() as m:
        if not fused:
            m.setattr(snn.kernels, "supports", lambda cur, pool: False)
        model.zero_grad()
        logits, spikes = model(images, generator=torch.Generator().manual_seed(1))
        (F.cross_entropy(logits, labels) + 1e-4 * spikes.sum(1).mean()).backward()
    return logits.detach(), spikes, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["direct", "poisson"])
def test_real_cifar10_batches_give_the_same_step(cifar_batches, encoding, monkeypatch):
    """A full batch of 64 and the last, short batch (32): spikes and logits bit for bit, gradients
    within 1e-6 relative (equal here)."""
    torch.manual_seed(0)
    model = initial_network(Params(num_steps=16, encoding=encoding))
    for images, labels in zip(*cifar_batches, strict=True):
        logits, spikes, grads = step(model, images, labels, True, monkeypatch)
        ref_logits, ref_spikes, ref_grads = step(model, images, labels, False, monkeypatch)
        assert spikes[:, 3].sum() > 0
        assert torch.equal(spikes, ref_spikes) and torch.equal(logits, ref_logits)
        for name, grad in grads.items():
            assert grad.abs().sum() > 0, name
            torch.testing.assert_close(grad, ref_grads[name], rtol=1e-6, atol=0, msg=name)


FALLBACK = textwrap.dedent("""
    import warnings, torch
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        from lib import kernels
        from lib.snn import SpikingLeNet
        net = SpikingLeNet(num_steps=3)
        logits, spikes = net(torch.randn(2, 3, 32, 32))
        logits.sum().backward()
        kernels.available()
    messages = [str(w.message) for w in caught if "fused LIF kernel" in str(w.message)]
    print(kernels.name(), len(messages), messages[0] if messages else "")
""")


def test_without_a_compiler_one_warning_and_the_pytorch_path(tmp_path):
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext"),
           "PYTHONPATH": str(REPO)}
    env.pop("SNN_FUSED", None)
    done = subprocess.run([sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    path, warned, message = done.stdout.strip().split(" ", 2)
    assert path == "torch" and warned == "1", done.stdout
    assert "could not be built" in message and "PyTorch path" in message


def test_snn_fused_0_chooses_the_pytorch_path_silently():
    env = {**os.environ, "SNN_FUSED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-W", "error", "-c", "from lib import kernels; print(kernels.name())"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "torch", done.stderr


def test_records_name_the_kernel():
    from lib.machine import machine

    assert machine(torch.device("cpu"))["lif_kernel"] == "fused"
