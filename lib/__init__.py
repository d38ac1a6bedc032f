"""Explicitly trained spiking sparsity (Allred, Spencer, Srinivasan & Roy 2020).

Modules: `snn` (LIF, surrogates, SpikingLeNet, spike accounting), `schedules` (the
sparsity-loss weightings sigma, eqs. 4-8), `data` (CIFAR-10 and the 80/20 split),
`train` (one experiment and its record).
"""

__version__ = "0.1.0"
