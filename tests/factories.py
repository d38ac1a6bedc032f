"""The one factory for the records tests write by hand: `lib.record`'s shape, numbers a test can
check by hand.

    epoch_row(1, 0.60, 200)                    # validation accuracy and spikes; the rest derived
    record("linear", 1e-6, [row, ...], seed=1)  # a complete record of those rows

Derived unless given: test accuracy 0.01 below validation, one test spike more than validation,
spikes a quarter in each of the four layers, no SynOps, 1 pJ. A test whose numbers depend on any
of these passes its own (`test_spikes_per_layer=[...]`, `test_synops=...`); every key of a row
or a record can be given."""

from lib import record as records


def quarters(spikes: float) -> list:
    return [spikes / 4] * 4


def epoch_row(n: int, val_accuracy, val_spikes, test_accuracy=None, test_spikes=None, **fields) -> dict:
    """Epoch `n`'s row: accuracies in [0, 1], spikes per sample; `fields` override or add keys."""
    test_accuracy = val_accuracy - 0.01 if test_accuracy is None else test_accuracy
    test_spikes = val_spikes + 1 if test_spikes is None else test_spikes
    return {"epoch": n, "val_accuracy": val_accuracy, "val_spikes": val_spikes, "test_accuracy": test_accuracy,
            "test_spikes": test_spikes, "val_spikes_per_layer": quarters(val_spikes),
            "test_spikes_per_layer": quarters(test_spikes), "val_synops": 0.0, "test_synops": 0.0,
            "test_synops_per_layer": [0.0] * 4, "test_energy_pj": 1.0, **fields}


def record(schedule: str, sigma0: float, rows: list, seed: int = 0, params=None, **fields) -> dict:
    """A complete record of `rows` (epoch_row's): `params` adds run parameters to schedule, sigma0
    and seed; `fields` override or add keys of the record (`run_id`, `data`, `machine`, ...)."""
    return {"version": records.VERSION, "status": "complete",
            "params": {**(params or {}), "schedule": schedule, "sigma0": sigma0, "seed": seed},
            "epochs": rows, **fields}
