"""The paper's own results, as reference data beside ours.

Allred, Spencer, Srinivasan & Roy (2020), "Explicitly Trained Spiking Sparsity in Spiking
Neural Networks with Backpropagation", Tables 1 and 2 (CIFAR-10,
LeNet, 40,000 training images). Copied from the paper's text; its spike counts are in
the paper's own unit and its sigma0 values do not carry over to ours: with our spikeCount
per sample, 0.00055 x 294,130 spikes would be a loss term of about 160.

Per schedule: (sigma0, training epochs, test accuracy in [0, 1], average spike count).
"""

CITATION = "Allred, Spencer, Srinivasan & Roy 2020, Tables 1-2"

LOSS_FUNCTION = {  # the paper's row labels
    "baseline": "CrossEntropy (baseline)",
    "constant": "C.E. + sigma_constant",
    "linear": "C.E. + sigma_linear",
    "quadratic": "C.E. + sigma_quadratic",
    "alternating": "C.E. + sigma_alternate",
    "alternating_linear": "C.E. + sigma_alternate_linear",
}

TABLES = {
    # Table 1: best spiking sparsity with no increase in validation error.
    "table1": {
        "baseline": (0.0, 7, 0.6497, 294_130),
        "constant": (0.00055, 19, 0.6561, 95_671),
        "linear": (0.00006, 20, 0.6530, 95_544),
        "quadratic": (0.000008, 15, 0.6482, 100_294),
        "alternating": (0.0015, 20, 0.6546, 87_949),
        "alternating_linear": (0.0004, 16, 0.6645, 89_869),
    },
    # Table 2: the paper's "less than 1 % increase in validation error"; our rule (lib.analysis.select) allows
    # at most 1 percentage point.
    "table2": {
        "baseline": (0.0, 6, 0.6419, 276_586),
        "constant": (0.0007, 20, 0.6445, 83_493),
        "linear": (0.0001, 20, 0.6403, 81_902),
        "quadratic": (0.000008, 19, 0.6246, 82_501),
        "alternating": (0.002, 20, 0.6390, 78_411),
        "alternating_linear": (0.00045, 16, 0.6529, 83_864),
    },
}
