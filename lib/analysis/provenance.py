"""Which machines made the records behind a table, for its caption and the README.

Training amplifies the last bits of floating-point kernels: the same code and seed on
another CPU (or another thread count, or oneDNN off) gives other numbers. A record of
version 2 (`lib.record`) carries the machine's fingerprint, `record["machine"]`:

    cpu, cpu_capability, threads, torch, cuda, cudnn, device_name, platform, python

and, from records made since lib.kernels, `lif_kernel`: "fused" or "torch", the LIF layer's
code (the same numbers either way; a record without it ran the PyTorch path, the only one then).
`machines` groups the records by fingerprint (all fields equal = one machine, as far as the
numbers can tell); a version-1 record, or one without a fingerprint, counts as `unknown`.
`note` says it in one sentence.

What the records cost, `compute`: per seed, the runs, the epochs they trained and their
`wall_seconds` added up (each run's training and evaluation, its attempts summed when it was
resumed). A sweep of J runs at once takes about that sum / J on its own: the number to quote
for "a seed costs", and one that a sweep stopped and resumed over several sessions still has.
"""

from __future__ import annotations

import pandas as pd

FIELDS = ("cpu", "cpu_capability", "threads", "torch", "cuda", "cudnn", "device_name", "platform", "python")
KERNEL = "lif_kernel"
UNKNOWN = "unknown"


def fingerprint(record, kernel: bool = False) -> tuple:
    """The record's machine as a tuple of FIELDS (and, with `kernel`, its lif_kernel: "torch"
    when not recorded); a record without one: all `unknown`."""
    machine = record.get("machine")
    fields = (*FIELDS, KERNEL) if kernel else FIELDS
    if not machine:
        return (UNKNOWN,) * len(fields)
    return tuple(machine.get(f, "torch" if f == KERNEL else None) for f in fields)


def machines(records) -> pd.DataFrame:
    """One row per distinct fingerprint, most runs first: FIELDS (None kept as None), `lif_kernel`
    where a record names its kernel, and `runs`."""
    records = list(records)
    kernel = any(KERNEL in (r.get("machine") or {}) for r in records)
    fields = (*FIELDS, KERNEL) if kernel else FIELDS
    counts = {}
    for record in records:
        key = fingerprint(record, kernel)
        counts[key] = counts.get(key, 0) + 1
    rows = [{**dict(zip(fields, key, strict=True)), "runs": n} for key, n in counts.items()]
    frame = pd.DataFrame(rows, columns=[*fields, "runs"], dtype=object)  # object: an int field may be None
    return frame.sort_values("runs", ascending=False, kind="stable").reset_index(drop=True)


def describe(row) -> str:
    """One machine in words (the kernels that decide the numbers; platform and Python are in
    `machines`): `AMD EPYC 7B13 (AVX2), 1 thread, CPU, torch 2.14.1+cu130`."""
    if all(row[f] == UNKNOWN for f in FIELDS):
        return "an unrecorded machine (records before version 2)"
    threads = f"{row['threads']} thread{'' if row['threads'] == 1 else 's'}"
    # `lib.machine.machine` records cuda None for a run on the CPU, and then names the CPU again as its device
    device = "CPU" if row["cuda"] is None else f"{row['device_name']} (CUDA {row['cuda']}, cuDNN {row['cudnn']})"
    fused = ", fused LIF kernel" if row.get(KERNEL) == "fused" else ""
    return f"{row['cpu']} ({row['cpu_capability']}), {threads}, {device}, torch {row['torch']}{fused}"


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


COMPUTE_COLUMNS = ["seed", "runs", "epochs", "run_hours", "seconds_per_epoch", "resumed", "untimed"]


def compute(records) -> pd.DataFrame:
    """One row per seed, in order: `runs`, `epochs` (rows of the timed records: a collapsed
    run stops early), `run_hours` (sum of `wall_seconds`), `seconds_per_epoch` (their ratio),
    `resumed` (runs resumed at least once) and `untimed` (records without `wall_seconds`, left
    out of both sums: the hours are then a lower bound)."""
    rows = {}
    for r in records:
        row = rows.setdefault(r["params"]["seed"],
                              {"runs": 0, "epochs": 0, "run_hours": 0.0, "resumed": 0, "untimed": 0})
        row["runs"] += 1
        if r.get("wall_seconds") is None:
            row["untimed"] += 1
            continue
        row["epochs"] += len(r["epochs"])
        row["run_hours"] += r["wall_seconds"] / 3600
        row["resumed"] += bool(r.get("resumed"))
    frame = pd.DataFrame([{"seed": seed, **row} for seed, row in sorted(rows.items())], columns=COMPUTE_COLUMNS)
    frame["seconds_per_epoch"] = 3600 * frame["run_hours"] / frame["epochs"].where(frame["epochs"] > 0)
    return frame


def note(records) -> str:
    """`Records: 16 runs on 1 machine: AMD EPYC ... (16 runs).` for a caption."""
    frame = machines(records)
    if frame.empty:
        return "Records: none."
    total, count = int(frame["runs"].sum()), len(frame)
    parts = "; ".join(f"{describe(row)} ({_runs(row['runs'])})" for _, row in frame.iterrows())
    return f"Records: {_runs(total)} on {count} machine{'s' if count != 1 else ''}: {parts}."
