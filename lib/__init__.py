"""Explicitly trained spiking sparsity (Allred, Spencer, Srinivasan & Roy 2020).

Modules: `snn` (LIF, surrogates, SpikingLeNet, spike accounting), `schedules` (the
sparsity-loss weightings sigma, eqs. 4-8), `penalties` (other sparsity regularisers),
`energy` (SynOps and the energy estimate), `data` (CIFAR-10 and the 80/20 split),
`train` (one experiment), `record` (its record.json, defined once), `profiles` (a
sweep's YAML: a grid, with or without factors), `sweep` (a profile's runs through
papermill; the one collector), `select` (the
paper's selection rule, Tables 1-2, and the one collapse rule), `report` (tables as
Markdown, CSV, LaTeX), `ablations` (a study's outcomes per variant), `plots` (figures),
`paper` (the paper's own numbers).
"""

__version__ = "0.1.0"
