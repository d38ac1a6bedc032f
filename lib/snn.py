"""Spiking LeNet with surrogate gradients and per-layer spike accounting.

Leaky integrate-and-fire (LIF) neuron, zero initial state, reset by subtraction (the default)
or to zero (`reset="zero"`, NIR's reset):

    mem[t] = beta * mem[t-1] + cur[t]
    spk[t] = H(mem[t] - threshold)            H(x) = 1 if x > 0 else 0
    mem[t] = mem[t] - spk[t] * threshold      (subtract)   or   mem[t] * (1 - spk[t])   (zero)

H has no useful derivative, so backpropagation uses a surrogate for d spk / d mem
(Neftci, Mostafa & Zenke 2019). The paper (Allred et al., sec. 2.4) uses a
piece-wise linear surrogate; the fast sigmoid of SuperSpike (the one SpyTorch uses)
is offered beside it. A layer's constants, these equations' and the surrogate's, are one
value: `LIFParameters(beta, threshold, surrogate, gamma, scale, detach_reset, reset)`.

The network is the paper's "LeNet"; its shapes are ours (the train notebook's section 4
lists every choice the paper leaves open):

    conv1 3->6 k5 -> LIF -> avgpool 2 -> conv2 6->16 k5 -> LIF -> avgpool 2
    -> fc1 400->120 -> LIF -> fc2 120->84 -> LIF -> fc3 84->10 (readout, mean over time)

`SpikingLeNet` returns `(logits, spikes)`, where `spikes[b, l]` is the number of spikes
of sample b in hidden LIF layer l, summed over all neurons and time steps: the
paper's spikeCount (eq. 3) is `spikes.sum(1)`, averaged over the batch.

Evaluation order. The four LIF layers are computed one after another, each over all
`num_steps` at once: a layer's input at every step only needs the previous layer's
spikes, so each convolution / linear layer runs once on a (num_steps * B) batch and
only the cheap elementwise LIF recursion loops over time. With direct encoding the
input current of conv1 is the same at every step and is computed once. This gives the
same numbers as the step-by-step formulation (`step_by_step=True`, kept as the
reference) and is several times faster. On the CPU each LIF layer is one fused kernel
(`lib.kernels`: the recursion, the 2x2 pool and the per-neuron count in one pass over time,
its backward one reverse pass), with the same numbers as the PyTorch path (`lif_layer_torch`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import kernels

LAYERS = ("lif1", "lif2", "lif3", "lif4")
"""Names of the hidden LIF layers, in the order of the columns of `spikes`."""


# ---------------------------------------------------------------------------
# Surrogate spike functions: forward is the Heaviside step of x = mem - threshold.


class PiecewiseLinearSpike(torch.autograd.Function):
    """Heaviside forward; piece-wise linear ("triangle") surrogate backward.

    d spk / d x = gamma * max(0, 1 - |x| / width)      (x = mem - threshold)

    The triangle surrogate of Esser et al. 2016 / Bellec et al. 2018, called
    "linear" in Neftci, Mostafa & Zenke 2019 (sec. "Surrogate derivatives") and
    "piece-wise linear" in Allred et al. 2020 (sec. 2.4).
    """

    @staticmethod
    def forward(ctx, x, gamma: float, width: float):
        ctx.save_for_backward(x)
        ctx.gamma, ctx.width = gamma, width
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spk):
        (x,) = ctx.saved_tensors
        return grad_spk * piecewise_linear_grad(x, ctx.gamma, ctx.width), None, None


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward; fast-sigmoid surrogate backward (SuperSpike).

    d spk / d x = gamma / (1 + slope * |x|) ** 2        (x = mem - threshold)

    Zenke & Ganguli 2018 (SuperSpike, eq. 5), as in SpyTorch (Zenke 2019), which
    the paper used; SpyTorch's scale is slope = 100, gamma = 1.
    """

    @staticmethod
    def forward(ctx, x, gamma: float, slope: float):
        ctx.save_for_backward(x)
        ctx.gamma, ctx.slope = gamma, slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spk):
        (x,) = ctx.saved_tensors
        return grad_spk * fast_sigmoid_grad(x, ctx.gamma, ctx.slope), None, None


# The derivatives overwrite `x` when inplace=True (the fused LIF's scratch buffer);
# either way each allocates at most one tensor.


def piecewise_linear_grad(x, gamma: float, width: float, inplace: bool = False):
    """gamma * max(0, 1 - |x| / width)"""
    y = x.abs_() if inplace else x.abs()
    return y.div_(width).neg_().add_(1.0).clamp_(min=0.0).mul_(gamma)


def fast_sigmoid_grad(x, gamma: float, slope: float, inplace: bool = False):
    """gamma / (1 + slope * |x|) ** 2"""
    y = x.abs_() if inplace else x.abs()
    return y.mul_(slope).add_(1.0).square_().reciprocal_().mul_(gamma)


SURROGATES = {
    # name: (autograd function, its derivative, the name of its shape parameter)
    "piecewise_linear": (PiecewiseLinearSpike, piecewise_linear_grad, "width"),
    "fast_sigmoid": (FastSigmoidSpike, fast_sigmoid_grad, "slope"),
}


# ---------------------------------------------------------------------------
# LIF dynamics.


class LIFParameters(NamedTuple):
    """The constants of a LIF layer, one value (as norse's `LIFParameters`).

        mem[t] = beta * mem[t-1] + cur[t]
        spk[t] = H(mem[t] - threshold)
        mem[t] = mem[t] - spk[t] * threshold        reset "subtract"
        mem[t] = mem[t] * (1 - spk[t])              reset "zero" (NIR's LIF: v = v_reset = 0)

    backward: d spk / d mem = the `surrogate` named in SURROGATES, of height `gamma` at the
    threshold and shape `scale` (the triangle's half-width, or the fast sigmoid's slope), and
    no gradient through the reset's spk when `detach_reset` (as SpyTorch). The zero reset is
    implemented with the reset detached only (`check_lif_parameters` refuses the other).
    """

    beta: float = 0.9  # membrane decay per step
    threshold: float = 1.0  # firing threshold
    surrogate: str = "piecewise_linear"  # a name of SURROGATES
    gamma: float = 1.0  # surrogate height at the threshold
    scale: float = 1.0  # triangle half-width, or fast-sigmoid slope
    detach_reset: bool = True  # no gradient through the reset
    reset: str = "subtract"  # a name of RESETS: subtract the threshold, or set the membrane to zero


RESETS = ("subtract", "zero")
"""What a spike does to the membrane: subtract the threshold (ours), or reset it to zero (NIR's)."""


def check_lif_parameters(p) -> None:
    """Raise TypeError unless `p` is a LIFParameters, ValueError for an unknown surrogate or reset."""
    if not isinstance(p, LIFParameters):
        raise TypeError(f"expected LIFParameters(beta, threshold, ...), got {p!r}")
    if p.surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {p.surrogate!r}; valid: {', '.join(SURROGATES)}")
    if p.reset not in RESETS:
        raise ValueError(f"unknown reset {p.reset!r}; valid: {', '.join(RESETS)}")
    if p.reset == "zero" and not p.detach_reset:
        raise ValueError("reset 'zero' is implemented with the reset detached only (detach_reset True)")


def spike(x, p: LIFParameters):
    """spk = H(x), x = mem - threshold, with the surrogate gradient of `p`."""
    return SURROGATES[p.surrogate][0].apply(x, p.gamma, p.scale)


def lif_step(cur, mem, p: LIFParameters):
    """One LIF time step: `spk, mem = lif_step(cur, mem, p)` (LIFParameters' equations)."""
    mem = p.beta * mem + cur
    spk = spike(mem - p.threshold, p)
    reset = spk.detach() if p.detach_reset else spk
    return spk, (mem - reset * mem if p.reset == "zero" else mem - reset * p.threshold)


def lif_recursion(cur, p: LIFParameters, mems=None):
    """spk (T, ...) of the LIF recursion over `cur` (T, ...) from zero state; `mems`, if given,
    receives mem[t] before its reset (what the surrogate needs). No autograd.

    Only the recursion itself loops over time, and it writes into preallocated buffers (no
    temporaries per step): three small kernels per step. Without `mems` the membrane stays in
    one buffer, updated in place: the inference path, the same operations in the same order,
    so the same spikes. `cur` may be an expanded view (direct encoding): it is never copied."""
    beta, threshold, zero = p.beta, p.threshold, p.reset == "zero"
    spk = torch.empty(cur.shape, dtype=cur.dtype, device=cur.device)
    mem = torch.zeros_like(spk[0])  # mem[t - 1] after its reset
    keep = torch.empty_like(mem) if zero else None  # 1 - spk[t]: exact, so m * keep is m or +0
    for t in range(cur.shape[0]):
        m = mem if mems is None else mems[t]
        torch.mul(mem, beta, out=m)  # not add(alpha=beta): that fuses (FMA) and rounds differently
        m.add_(cur[t])
        torch.gt(m, threshold, out=spk[t])
        if zero:
            torch.mul(m, torch.le(m, threshold, out=keep), out=mem)  # keep = 1 - spk[t]
        else:
            torch.sub(m, spk[t], alpha=threshold, out=mem)
    return spk


class LIFSequence(torch.autograd.Function):
    """A LIF layer over all time steps as one autograd node: `spk = LIFSequence.apply(cur, p)`.

    forward: cur (T, ...) -> spk (T, ...), the recursion of LIFParameters from zero state.
    backward, with s[t] = surrogate'(mem[t] - threshold) and g = dL/d spk:

        dL/dmem[t] = g[t] * s[t] + beta * dL/dmem[t+1] * (1 - threshold * s[t])

    where the reset factor (1 - threshold * s) is 1 when the reset is detached, as in
    SpyTorch ("we do not want to backprop through the reset"), and (1 - spk[t]) for the zero
    reset (detached: the membrane after a spike is 0 whatever it was); dL/dcur[t] = dL/dmem[t].
    Saving only s (one tensor) instead of every intermediate of a step-by-step graph
    is what makes this cheap; `tests/test_snn.py` checks it against autograd.
    """

    @staticmethod
    def forward(ctx, cur, p: LIFParameters):
        # The surrogate is computed for all steps at once from the saved membranes.
        need_grad = ctx.needs_input_grad[0]
        mems = torch.empty(cur.shape, dtype=cur.dtype, device=cur.device) if need_grad else None
        spk = lif_recursion(cur, p, mems)
        grad_fn = SURROGATES[p.surrogate][1]
        sg = grad_fn(mems.sub_(p.threshold), p.gamma, p.scale, inplace=True) if need_grad else None
        keep = torch.rsub(spk, 1) if need_grad and p.reset == "zero" else None  # 1 - spk[t]
        ctx.save_for_backward(sg, keep)
        ctx.p = p
        return spk

    @staticmethod
    def backward(ctx, grad_spk):
        # dL/dmem[t] = g[t] * s[t] + beta * dL/dmem[t+1] * (1 - threshold * s[t]):
        # the first term for all steps at once, then the recursion in place.
        sg, keep = ctx.saved_tensors
        beta, threshold = ctx.p.beta, ctx.p.threshold
        grad = torch.mul(grad_spk, sg).contiguous()
        for t in reversed(range(grad.shape[0] - 1)):
            # the zero reset: dL/dmem[t+1] * (1 - spk[t]) is exact, then the same step as subtract's
            grad[t].add_(grad[t + 1] if keep is None else grad[t + 1] * keep[t], alpha=beta)
            if not ctx.p.detach_reset:
                grad[t].addcmul_(sg[t], grad[t + 1], value=-beta * threshold)
        return grad, None


def lif_layer(cur, p: LIFParameters, pool: bool = False, num_steps: int | None = None):
    """A LIF layer over all time steps, as the network uses it: `out, count = lif_layer(cur, p)`.

    cur: (T, B, *neurons), or (B, *neurons) the same at each of `num_steps` steps (direct
    encoding). out: the spikes (T, B, *neurons) or, with `pool`, their 2x2 average pool
    (T, B, C, H/2, W/2); count: (B, *neurons), each neuron's spikes summed over time.

    On the CPU this is the fused kernel of `lib.kernels` (one pass over time per neuron, the
    pool and the count written in it, the backward recomputing the membranes); elsewhere, or
    where that kernel cannot be built, the PyTorch path below. Both give the same numbers."""
    if kernels.supports(cur, pool):
        if torch.is_grad_enabled() and cur.requires_grad:
            return kernels.FusedLIF.apply(cur, p, pool, num_steps)
        return kernels.forward(cur, p, pool, num_steps)
    return lif_layer_torch(cur, p, pool, num_steps)


def lif_layer_torch(cur, p: LIFParameters, pool: bool = False, num_steps: int | None = None):
    """`lif_layer` in PyTorch operations: `LIFSequence` (or, without autograd, `lif_recursion`),
    then `F.avg_pool2d` (or `pool_spikes`, the same numbers) and `.sum(0)`."""
    if num_steps is not None:  # constant over time: an expanded view, never copied
        cur = cur.unsqueeze(0).expand(num_steps, *cur.shape)
    grad = torch.is_grad_enabled() and cur.requires_grad
    spk = LIFSequence.apply(cur, p) if grad else lif_recursion(cur, p)
    count = spk.sum(0)
    if not pool:
        return spk, count
    T, B, C, H, W = spk.shape
    pooled = (F.avg_pool2d if grad else pool_spikes)(spk.view(T * B, C, H, W), 2)
    return pooled.view(T, B, C, H // 2, W // 2), count


class LIF(nn.Module):
    """Leaky integrate-and-fire layer of constants `p` (LIFParameters).

    `spk, mem = lif(cur, mem)` advances one step; `lif.sequence(cur)` runs all steps
    of `cur` (T, ...) from zero state and returns `spk` (T, ...); `lif.layer(cur, pool)` is
    `lif_layer`: spikes (or pooled spikes) and each neuron's count, fused on the CPU.
    """

    def __init__(self, p: LIFParameters = LIFParameters()):  # noqa: B008 (a NamedTuple is immutable)
        super().__init__()
        check_lif_parameters(p)
        self.p = p

    def forward(self, cur, mem):
        return lif_step(cur, mem, self.p)

    def sequence(self, cur):
        if torch.is_grad_enabled() and cur.requires_grad:
            return LIFSequence.apply(cur, self.p)
        return lif_recursion(cur, self.p)  # inference: no membranes kept, no surrogate computed

    def layer(self, cur, pool: bool = False, num_steps: int | None = None):
        """`out, count = lif.layer(cur)`: `lif_layer` with this layer's constants."""
        return lif_layer(cur, self.p, pool, num_steps)

    def extra_repr(self):
        return repr(self.p)


# ---------------------------------------------------------------------------
# Input encoding.

ENCODINGS = ("direct", "poisson")


def encode(images, num_steps: int, encoding: str, generator=None):
    """Input at every time step, (num_steps, B, C, H, W), from normalised images.

    direct: the image itself is the input current at every step.
    poisson: signed rate coding as in Lee, Sarwar & Roy 2019 (same lab as the paper):
    at each step a pixel emits sign(x) with probability min(|x|, 1). Input spikes are
    never counted as network spikes.
    """
    if encoding == "direct":
        return images.unsqueeze(0).expand(num_steps, *images.shape)
    if encoding == "poisson":
        rates = images.abs().clamp(max=1.0).expand(num_steps, *images.shape)
        fire = torch.rand(rates.shape, generator=generator, device=images.device) < rates
        return fire.to(images.dtype) * images.sign()
    raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")


# ---------------------------------------------------------------------------
# The network.


def pool_spikes(spk, size: int = 2):
    """F.avg_pool2d(spk, 2) of spikes (N, C, H, W), H and W even, without autograd, bit for bit:
    a window's sum of four 0/1 values is an exact float in any order, so adding rows, then
    columns, then scaling by 1/4 gives avg_pool2d's numbers, several times faster on a CPU
    (about 5x at 1 thread, benchmarks/eval_cost.py). Only for 0/1 inputs: other values could round
    differently from avg_pool2d's order of summation."""
    if size != 2:
        raise ValueError(f"pool_spikes pools 2x2 windows, got size {size}")
    n, c, h, w = spk.shape
    rows = spk.view(n, c, h // 2, 2, w)
    rows = rows[:, :, :, 0] + rows[:, :, :, 1]  # (n, c, h/2, w)
    cols = rows.view(n, c, h // 2, w // 2, 2)
    return (cols[..., 0] + cols[..., 1]).mul_(0.25)


class SpikingLeNet(nn.Module):
    """LeNet-5 with LIF neurons; `logits, spikes = net(images)`.

    Every hidden layer has the LIF constants `p`; `SpikingLeNet()` is T = 8 steps, direct
    encoding and LIFParameters' defaults. images: (B, 3, 32, 32) normalised. logits: (B, 10),
    the readout fc3 averaged over time. spikes: (B, 4), spikes per sample in lif1..lif4
    summed over neurons and time.
    """

    def __init__(
        self,
        num_steps: int = 8,
        encoding: str = "direct",
        p: LIFParameters = LIFParameters(),  # noqa: B008 (a NamedTuple is immutable: one default is safe)
        step_by_step: bool = False,
    ):
        super().__init__()
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")
        check_lif_parameters(p)
        self.num_steps, self.encoding, self.step_by_step = num_steps, encoding, step_by_step
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.lif = nn.ModuleList(LIF(p) for _ in LAYERS)

    # Neurons per hidden layer (6*28*28, 16*10*10, 120, 84): the unit for
    # spike normalisations such as spikes per neuron per step.
    layer_sizes = (4704, 1600, 120, 84)

    def layers(self) -> list[dict]:
        """The network as a table, a row per stage from image to logits: name, what it is, its
        output per image (shape) and, for a LIF layer, its neurons; parameters per weighted layer."""
        rows, lif = [], iter(LAYERS)
        stages = [("conv1", self.conv1, (6, 28, 28)), ("lif", None, (6, 28, 28)), ("pool", None, (6, 14, 14)),
                  ("conv2", self.conv2, (16, 10, 10)), ("lif", None, (16, 10, 10)), ("pool", None, (16, 5, 5)),
                  ("fc1", self.fc1, (120,)), ("lif", None, (120,)), ("fc2", self.fc2, (84,)), ("lif", None, (84,)),
                  ("fc3", self.fc3, (10,))]
        for name, module, shape in stages:
            row = {"layer": name, "what": "", "shape": "x".join(map(str, shape)), "neurons": "", "parameters": ""}
            if module is not None:
                row["what"] = repr(module)
                row["parameters"] = sum(p.numel() for p in module.parameters())
            elif name == "lif":
                row.update(layer=next(lif), what=f"LIF over {self.num_steps} steps", neurons=math.prod(shape))
            else:
                row["what"] = "2x2 average pool of the spikes"
            rows.append(row)
        rows[-1]["what"] += ", averaged over the steps: the logits"
        return rows

    def forward(self, images, generator=None):
        logits, counts = self.activity(images, generator)
        return logits, torch.stack([c.flatten(1).sum(1) for c in counts], dim=1)

    def activity(self, images, generator=None):
        """`logits, counts`: counts[l] is (B, *neurons of layer l), each neuron's spikes summed
        over time; the primitive under `forward`'s per-layer totals, and under any
        per-neuron penalty or synaptic-operation count."""
        inputs = encode(images, self.num_steps, self.encoding, generator)
        if self.step_by_step:
            return self._activity_step_by_step(inputs)
        return self._activity_layer_by_layer(images, inputs)

    def _activity_layer_by_layer(self, images, inputs):
        T, B = self.num_steps, images.shape[0]
        if self.encoding == "direct":  # the same current at every step: convolve once
            out1, n1 = self.lif[0].layer(self.conv1(images), pool=True, num_steps=T)
        else:
            cur1 = self.conv1(inputs.reshape(T * B, *images.shape[1:])).view(T, B, 6, 28, 28)
            out1, n1 = self.lif[0].layer(cur1, pool=True)
        cur2 = self.conv2(out1.reshape(T * B, 6, 14, 14))
        out2, n2 = self.lif[1].layer(cur2.view(T, B, 16, 10, 10), pool=True)
        spk3, n3 = self.lif[2].layer(self.fc1(out2.reshape(T, B, 400)))
        spk4, n4 = self.lif[3].layer(self.fc2(spk3))
        logits = self.fc3(spk4.mean(0))  # fc3 is linear: mean of readouts = readout of mean
        return logits, [n1, n2, n3, n4]

    def _activity_step_by_step(self, inputs):
        """Reference formulation: every layer advances one step at a time."""
        mems = [torch.zeros((), device=inputs.device)] * len(LAYERS)
        counts = [0.0] * len(LAYERS)
        readout = 0.0
        for x in inputs.unbind(0):
            h = x
            for i, (layer, pool) in enumerate(
                ((self.conv1, True), (self.conv2, True), (self.fc1, False), (self.fc2, False))
            ):
                if layer is self.fc1:
                    h = h.flatten(1)
                spk, mems[i] = self.lif[i](layer(h), mems[i])
                counts[i] = counts[i] + spk
                h = F.avg_pool2d(spk, 2) if pool else spk
            readout = readout + self.fc3(h)
        return readout / self.num_steps, counts


def spike_count(spikes, normalisation: str = "sample_total", num_steps: int = 1,
                layer_sizes=SpikingLeNet.layer_sizes):
    """The paper's spikeCount from per-layer spikes (B, L): a scalar, mean over the batch.

    sample_total: total spikes per sample (the paper's, eq. 3 and Tables 1-2).
    per_neuron_step: spikes per neuron per time step, so that sigma0 does not depend
    on num_steps or on the layer sizes (a firing rate in [0, 1]).
    """
    total = spikes.sum(1).mean()
    if normalisation == "sample_total":
        return total
    if normalisation == "per_neuron_step":
        return total / (num_steps * math.fsum(layer_sizes))
    raise ValueError(
        f"unknown spike normalisation {normalisation!r}; valid: {', '.join(SPIKE_NORMALISATIONS)}"
    )


SPIKE_NORMALISATIONS = ("sample_total", "per_neuron_step")
