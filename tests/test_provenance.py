"""The machines behind a table (lib.analysis.provenance), on hand-made records."""

from lib.analysis import provenance

# as lib.machine.machine writes them: on the CPU no CUDA version and the CPU model as the device
EPYC = {"cpu": "AMD EPYC 7B13", "cpu_capability": "AVX2", "threads": 1, "torch": "2.14.1+cu130", "cuda": None,
        "cudnn": None, "device_name": "AMD EPYC 7B13", "platform": "Linux-x86_64", "python": "3.11.7"}
H200 = {**EPYC, "threads": 16, "device_name": "NVIDIA H200", "cuda": "13.0", "cudnn": 91000}


def test_machines_grouped_and_counted():
    records = [{"machine": EPYC}, {"machine": H200}, {"machine": EPYC}, {"version": 1}]
    frame = provenance.machines(records)
    assert frame["runs"].tolist() == [2, 1, 1]
    assert frame.loc[0, "cudnn"] is None and frame.loc[1, "cudnn"] == 91000  # None not turned into NaN
    assert (frame.loc[2, list(provenance.FIELDS)] == "unknown").all()
    assert provenance.note(records) == (
        "Records: 4 runs on 3 machines: AMD EPYC 7B13 (AVX2), 1 thread, CPU, torch 2.14.1+cu130 (2 runs); "
        "AMD EPYC 7B13 (AVX2), 16 threads, NVIDIA H200 (CUDA 13.0, cuDNN 91000), torch 2.14.1+cu130 (1 run); "
        "an unrecorded machine (records before version 2) (1 run).")


def test_one_field_apart_is_another_machine():
    # the same CPU with oneDNN's other thread count runs other kernels: not merged
    assert len(provenance.machines([{"machine": EPYC}, {"machine": {**EPYC, "threads": 2}}])) == 2
    assert provenance.note([]) == "Records: none."


def test_the_lif_kernel_is_named_once_records_carry_it():
    fused = {**EPYC, "lif_kernel": "fused"}
    frame = provenance.machines([{"machine": fused}, {"machine": EPYC}, {"machine": fused}])
    assert frame["lif_kernel"].tolist() == ["fused", "torch"]  # unrecorded: the PyTorch path, the only one then
    assert provenance.note([{"machine": fused}]) == (
        "Records: 1 run on 1 machine: AMD EPYC 7B13 (AVX2), 1 thread, CPU, torch 2.14.1+cu130, "
        "fused LIF kernel (1 run).")
    assert "lif_kernel" not in provenance.machines([{"machine": EPYC}])  # older tables are unchanged


def test_compute_per_seed_by_hand():
    epoch = {"val_accuracy": 0.5}
    records = [
        {"params": {"seed": 1}, "epochs": [epoch] * 20, "wall_seconds": 1800.0},
        {"params": {"seed": 0}, "epochs": [epoch] * 20, "wall_seconds": 1500.0, "resumed": [{"after_epoch": 6}]},
        {"params": {"seed": 0}, "epochs": [epoch] * 2, "wall_seconds": 300.0},  # collapsed: stopped early
        {"params": {"seed": 0}, "epochs": [epoch] * 20, "wall_seconds": None},  # untimed: out of both sums
    ]
    frame = provenance.compute(records)
    assert frame["seed"].tolist() == [0, 1]
    assert frame["runs"].tolist() == [3, 1] and frame["untimed"].tolist() == [1, 0]
    assert frame["epochs"].tolist() == [22, 20] and frame["resumed"].tolist() == [1, 0]
    assert frame["run_hours"].tolist() == [0.5, 0.5]  # (1500 + 300) / 3600, 1800 / 3600
    assert frame["seconds_per_epoch"].tolist() == [1800 / 22, 90.0]
    assert provenance.compute([]).empty
