"""Explicitly trained spiking sparsity (Allred, Spencer, Srinivasan & Roy 2020).

The core, at the top of `lib/`: `snn` (LIF, surrogates, SpikingLeNet, spike accounting) and
`kernels` (its fused CPU kernel), `schedules` (the sparsity-loss weightings sigma, eqs. 4-8),
`penalties` (other sparsity regularisers), `energy` (SynOps and the energy estimate), `data`
(CIFAR-10 and the 80/20 split), `train` (one experiment), `record` (its record.json, defined once,
and the collapse rule), `paper` (the paper's own numbers).

The machinery, one sub-package a layer (imports go one way, tests/test_layers.py):
`lib.analysis` (both selection rules, tables, comparison, provenance, plots, ablation outcomes),
`lib.sweep` (profiles, run folders and states, execution, the Ray executor, the commands) and
`lib.export` (published models, NIR, archives).
"""

__version__ = "0.1.0"
