"""Explicitly trained spiking sparsity (Allred, Spencer, Srinivasan & Roy 2020).

Modules: `snn` (LIF, surrogates, SpikingLeNet, spike accounting), `schedules` (the
sparsity-loss weightings sigma, eqs. 4-8), `data` (CIFAR-10 and the 80/20 split),
`train` (one experiment and its record), `sweep` (profiles, grids of runs through
papermill), `select` (the paper's selection rule, Tables 1-2), `report` (tables as
Markdown, CSV, LaTeX), `plots` (figures), `paper` (the paper's own numbers).
"""

__version__ = "0.1.0"
