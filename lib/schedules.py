"""Sparsity-loss weightings sigma (Allred et al. 2020, eqs. 4-8).

The total loss is L = cross_entropy + sigma(spikeCount) (eqs. 1-3), and every sigma of
the paper is linear in spikeCount: sigma(spikeCount) = w * spikeCount. `weight` returns
the factor w for epoch n (counted from 1) of a run planned for N epochs:

    baseline            w = 0                                   (cross entropy only)
    constant            w = sigma0                              (eq. 4)
    linear              w = sigma0 * n / N                      (eq. 5)
    quadratic           w = sigma0 * n**2 / N                   (eq. 6, as printed: not n**2 / N**2)
    alternating         w = A * sigma0                          (eq. 7)
    alternating_linear  w = A * sigma0 * n / N                  (eq. 8)

A in {0, 1} switches the sparsity loss on for a fraction p(n) = (n - 1) / (N - 1) of
training, rising from never (epoch 1) to always (epoch N). The paper does not say how
finely it alternates; two granularities are offered:

    "batch" (default)  within epoch n, batch b of B is on iff floor((b+1) p) > floor(b p):
                       p * B batches, spread evenly over the epoch;
    "epoch"            epoch n is on iff the running sum p(1) + ... + p(n) crosses an
                       integer at n: whole epochs, their share following p.

With N = 1 there is no "rising": p = 1 (the last epoch is always on).

Beside the paper's schedules, REGULARISERS holds other sparsity terms as baselines
(`lib.penalties`), run by the same name: L = cross_entropy + w * penalty(counts) with
w = sigma0 at every epoch, the constant strength those regularisers are used with.

    upper_bound     per-neuron spikes above a bound, squared (Zenke & Vogels 2021)
    synops          spikes weighted by fan-out (after Sorbaro et al. 2020)
    layer_weighted  spikeCount with a weight per layer
"""

from __future__ import annotations

import math

from . import paper


def _constant(sigma0, n, N):
    return sigma0


def _linear(sigma0, n, N):
    return sigma0 * n / N


def _quadratic(sigma0, n, N):
    return sigma0 * n**2 / N


def _baseline(sigma0, n, N):
    return 0.0


SCHEDULES = {
    # name: (the factor before A, alternates?)
    "baseline": (_baseline, False),
    "constant": (_constant, False),
    "linear": (_linear, False),
    "quadratic": (_quadratic, False),
    "alternating": (_constant, True),
    "alternating_linear": (_linear, True),
}

REGULARISERS = {
    # name: (the factor, alternates?, the penalty of lib.penalties.PENALTIES in place of spikeCount)
    "upper_bound": (_constant, False, "upper_bound"),
    "synops": (_constant, False, "synops"),
    "layer_weighted": (_constant, False, "layer_weighted"),
}

NAMES = (*SCHEDULES, *REGULARISERS)

LABELS = {  # row labels of tables and figures: the paper's (lib.paper), then the regulariser baselines (ours)
    **paper.LOSS_FUNCTION,
    "upper_bound": "C.E. + upper bound (Zenke & Vogels 2021)",
    "synops": "C.E. + SynOps (after Sorbaro et al. 2020)",
    "layer_weighted": "C.E. + layer-weighted spikeCount",
}
"""Every schedule name `weight` and `lib.train.run` accept: the paper's, then the baselines."""

GRANULARITIES = ("batch", "epoch")


def check(schedule: str, granularity: str = "batch") -> None:
    """Raise ValueError for an unknown schedule or granularity."""
    if schedule not in NAMES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(NAMES)}")
    if granularity not in GRANULARITIES:
        raise ValueError(
            f"unknown granularity {granularity!r}; valid: {', '.join(GRANULARITIES)}"
        )


def on_fraction(epoch: int, num_epochs: int) -> float:
    """p(n) = (n - 1) / (N - 1): the share of epoch n in which A = 1."""
    return 1.0 if num_epochs == 1 else (epoch - 1) / (num_epochs - 1)


def alternation(epoch, num_epochs, batch=0, granularity="batch") -> int:
    """A(n) in {0, 1} for batch `batch` (from 0) of epoch `epoch` (from 1). Per batch it needs
    no batch count: over batches 0..B-1 the rule turns on floor(B p) of them, whatever B is."""
    if granularity == "epoch":
        before = math.fsum(on_fraction(k, num_epochs) for k in range(1, epoch))
        now = before + on_fraction(epoch, num_epochs)
        return int(math.floor(now + 1e-9) > math.floor(before + 1e-9))
    p = on_fraction(epoch, num_epochs)
    return int(math.floor((batch + 1) * p + 1e-9) > math.floor(batch * p + 1e-9))


def weight(schedule, sigma0, epoch, num_epochs, batch=0, num_batches=1, granularity="batch"):
    """The factor w of L_sparsity = w * spikeCount (module docstring, eqs. 4-8)."""
    check(schedule, granularity)
    if not 1 <= epoch <= num_epochs:
        raise ValueError(f"epoch must be in 1..{num_epochs}, got {epoch}")
    if not 0 <= batch < num_batches:
        raise ValueError(f"batch must be in 0..{num_batches - 1}, got {batch}")
    factor, alternates = SCHEDULES[schedule] if schedule in SCHEDULES else REGULARISERS[schedule][:2]
    w = factor(sigma0, epoch, num_epochs)
    if alternates:
        w *= alternation(epoch, num_epochs, batch, granularity)
    return float(w)


def penalty(schedule: str) -> str | None:
    """The `lib.penalties` name a schedule weights, or None for the paper's spikeCount."""
    check(schedule)
    return REGULARISERS[schedule][2] if schedule in REGULARISERS else None


def epoch_weights(schedule, sigma0, num_epochs, num_batches=1, granularity="batch"):
    """The mean weight w of each epoch 1..N over its `num_batches` batches (for plots)."""
    return [
        math.fsum(weight(schedule, sigma0, n, num_epochs, b, num_batches, granularity) for b in range(num_batches))
        / num_batches
        for n in range(1, num_epochs + 1)
    ]
