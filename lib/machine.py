"""Where a run runs: its device, the allocator setting, and the hardware fingerprint its record keeps.

The record's `machine` is the hardware fingerprint of `machine()`: the floating-point kernels
differ between machines, and training amplifies the difference, so every number says
where it was made.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import torch

from . import kernels
from . import record as records


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Make glibc keep freed activations for reuse instead of returning them to the kernel.

    glibc serves blocks above its mmap threshold (adaptive, at most 32 MiB) with fresh
    pages and trims the top of the heap above its trim threshold, so every training step
    faults its activations back in page by page: about 1e5 minor page faults per step at
    T=100, B=32, roughly half the step time on a 2-core CPU. With both thresholds at
    1 GiB freed blocks are reused; the process keeps its per-step peak resident instead.
    Returns whether it was applied: not off glibc, and not when the user set
    MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_ (their setting wins). Idempotent.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or any(map(os.environ.get, MALLOC_ENV)):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>; mallopt takes a C int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, threshold))


def cpu_model() -> str:
    """The processor's model name: /proc/cpuinfo on Linux, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> records.Machine:
    """The hardware fingerprint of a run on `device` (call it after setting the thread count)."""
    cpu = cpu_model()
    cuda = device.type == "cuda"
    return {
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "lif_kernel": "torch" if cuda else kernels.name(),  # lib.kernels' fused loops or PyTorch's ops
    }
