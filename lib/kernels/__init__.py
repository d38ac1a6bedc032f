"""Fused CPU kernels for the LIF layer (`lif_cpu.cpp`), built on first use, with a fallback.

    out, count = FusedLIF.apply(cur, p, pool, num_steps)

runs the LIF recursion of `lib.snn.LIFParameters` p over all T steps of `cur` (T, B, ...), or
of `cur` (B, ...) repeated `num_steps` times (direct encoding), in one pass per neuron and returns
`out`, the spikes (T, B, ...) or, with `pool`, their 2x2 average pool
(T, B, C, H/2, W/2), and `count` (B, ...), each neuron's spikes summed over time. Its backward is
one reverse pass that recomputes the membranes from `cur`: nothing but `cur` is kept between
forward and backward; a current repeated over time is read once, and its gradient is summed over
time inside the kernel.

The numbers are those of lib.snn's PyTorch path (`LIFSequence`, `F.avg_pool2d`, `.sum(0)`): the
same spikes, pooled spikes and counts bit for bit, and the same gradients (tests/test_kernels.py
checks both, and tests/test_snn.py the network against plain autograd). One exception: a current
repeated over time has its gradient summed over time in the order of PyTorch's reduction, which
sums the last (B * neurons) mod 4 vector widths (64 floats on AVX512) in another order; those
few differ in the last bit (the LeNet's lif1 at an even batch size has none).

The extension is compiled by `torch.utils.cpp_extension.load` into torch's extension cache
(`$TORCH_EXTENSIONS_DIR`, default ~/.cache/torch_extensions) the first time it is needed:
`make install` does that once (`python -m lib.kernels`), so runs only load it. One build carries
an AVX512, an AVX2 and a plain x86-64 copy of each loop and picks the CPU's at load time. Where
it cannot be built (no C++ compiler, no ninja), `available()` warns once and returns False, and
lib.snn runs its PyTorch path; `SNN_FUSED=0` chooses that path without a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import warnings
from functools import cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("lif_cpu.cpp")
# -ffp-contract=off: beta * mem + cur must round twice, as PyTorch's two kernels do (lif_cpu.cpp)
CFLAGS = ["-O3", "-ffp-contract=off", "-fopenmp"]
SURROGATE_IDS = {"piecewise_linear": 0, "fast_sigmoid": 1}
DTYPES = (torch.float32, torch.float64)
PLANE = 1024  # neurons a pooled layer's plane holds at most (whole channels; one channel if larger)


def library_name() -> str:
    """The extension's name: a digest of its source and flags, so a changed kernel is a new build."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    return f"snn_lif_{digest}"


@cache
def available() -> bool:
    """Whether the fused kernels are loaded (building them if needed); warns once when they cannot be."""
    if os.environ.get("SNN_FUSED", "1") == "0":
        return False
    try:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # not its "no CUDA" note
        from torch.utils import cpp_extension

        _ninja_on_path()
        cpp_extension.load(name=library_name(), sources=[str(SOURCE)], extra_cflags=CFLAGS,
                           extra_ldflags=["-fopenmp"], is_python_module=False, verbose=False)
    except Exception as err:  # no compiler, no ninja, a failed build: all mean the PyTorch path
        warnings.warn(f"lib.kernels: the fused LIF kernel could not be built ({type(err).__name__}: "
                      f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}); lib.snn runs its "
                      "PyTorch path, with the same numbers, about twice as slow", RuntimeWarning, stacklevel=2)
        return False
    return True


def _ninja_on_path() -> None:
    """cpp_extension runs `ninja` from PATH: the one pip installed beside this Python, if none is there."""
    here = Path(sys.executable).parent
    if shutil.which("ninja") is None and (here / "ninja").exists():
        os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"


def name() -> str:
    """Which LIF kernel lib.snn runs on the CPU: "fused" or "torch" (records name it)."""
    return "fused" if available() else "torch"


def supports(cur: torch.Tensor, pool: bool) -> bool:
    """Whether FusedLIF can take `cur`: a CPU float32/float64 tensor, pooled planes of even size."""
    if cur.device.type != "cpu" or cur.dtype not in DTYPES:
        return False
    if pool and (cur.dim() < 3 or cur.shape[-1] % 2 or cur.shape[-2] % 2):
        return False
    return available()


def _arguments(cur: torch.Tensor, pool: bool, num_steps: int | None):
    """(the kernel's cur, T, H, W, broadcast, out's shape, count's shape): cur as (T, P, S), or as
    (P, S) when it is the same at every step (num_steps given, cur (B, ...))."""
    broadcast = num_steps is not None
    T = num_steps if broadcast else cur.shape[0]
    neurons = cur.shape[1:] if broadcast else cur.shape[2:]
    B = cur.shape[0] if broadcast else cur.shape[1]
    if pool and len(neurons) != 3:
        raise ValueError(f"a pooled LIF layer takes (C, H, W) neurons, got {tuple(neurons)}")
    H, W = (neurons[1], neurons[2]) if pool else (0, 0)
    # a plane (the kernel's unit of work): channels of a sample, about PLANE neurons, or a sample
    group = max((g for g in range(1, neurons[0] + 1) if neurons[0] % g == 0 and g * H * W <= PLANE), default=1) \
        if pool else 1
    planes = B * neurons[0] // group if pool else B
    flat = cur.reshape(planes, -1) if broadcast else cur.reshape(T, planes, -1)
    out_neurons = (neurons[0], H // 2, W // 2) if pool else tuple(neurons)
    return flat.contiguous(), T, H, W, broadcast, (T, B, *out_neurons), (B, *neurons)


def _ops():
    if not available():
        raise RuntimeError("the fused LIF kernel is not available (lib.kernels.available() is False)")
    return torch.ops.snn_lif


def _lif(p) -> tuple:
    return (float(p.beta), float(p.threshold), SURROGATE_IDS[p.surrogate], float(p.gamma), float(p.scale),
            bool(p.detach_reset), p.reset == "zero")


class FusedLIF(torch.autograd.Function):
    """`out, count = FusedLIF.apply(cur, p, pool, num_steps)`: the module docstring's layer. `p`
    is a LIFParameters; `num_steps` None means cur is (T, B, ...), an int that cur (B, ...) is the
    input at each of that many steps (its gradient is then (B, ...), summed over time)."""

    @staticmethod
    def forward(ctx, cur, p, pool: bool, num_steps: int | None):
        flat, T, H, W, broadcast, out_shape, count_shape = _arguments(cur, pool, num_steps)
        out, count = _ops().forward(flat, T, H, W, broadcast, *_lif(p), True)
        ctx.save_for_backward(flat)
        ctx.args, ctx.p, ctx.shape = (T, H, W, broadcast), p, cur.shape
        return out.view(out_shape), count.view(count_shape)

    @staticmethod
    def backward(ctx, g_out, g_count):
        (flat,) = ctx.saved_tensors
        none = flat.new_empty(0)
        g_out = none if g_out is None else g_out.contiguous()
        g_count = none if g_count is None else g_count.contiguous()
        grad = _ops().backward(flat, g_out, g_count, *ctx.args, *_lif(ctx.p))
        return grad.view(ctx.shape), None, None, None


def forward(cur: torch.Tensor, p, pool: bool, num_steps: int | None = None):
    """FusedLIF's `out, count` without autograd (inference)."""
    flat, T, H, W, broadcast, out_shape, count_shape = _arguments(cur, pool, num_steps)
    out, count = _ops().forward(flat, T, H, W, broadcast, *_lif(p), True)
    return out.view(out_shape), count.view(count_shape)
