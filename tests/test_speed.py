"""The paths lib.train takes for speed, against plain references: evaluation without autograd
against the autograd path, and the allocator setting against glibc's own accounting. The fast
LIF and network against the step-by-step formulation are in tests/test_snn.py; speed itself
is measured in benchmarks/."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lib.machine import MALLOC_ENV
from lib.snn import LIFParameters, SpikingLeNet

REPO = Path(__file__).resolve().parents[1]


def test_evaluation_without_autograd_gives_the_same_numbers():
    torch.manual_seed(0)
    net = SpikingLeNet(num_steps=5, p=LIFParameters(threshold=0.5))
    images = torch.randn(3, 3, 32, 32)
    logits, spikes = net(images)
    with torch.no_grad():
        eval_logits, eval_spikes = net(images)
    assert torch.equal(spikes, eval_spikes) and torch.equal(logits.detach(), eval_logits)


# In a fresh process (glibc's defaults, nothing allocated yet by this test session): whether
# keep_freed_memory applied, and how many bytes glibc's mallinfo2 counts as mmapped before
# and after one 64 MiB malloc. glibc's mmap threshold is at most 32 MiB by default, so such a
# block is mmapped unless the threshold was raised to 1 GiB.
MMAPPED_BY_ONE_MALLOC = textwrap.dedent("""
    import ctypes
    from lib.machine import keep_freed_memory

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype, libc.malloc.restype = Mallinfo2, ctypes.c_void_p
    applied = keep_freed_memory()
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(64 << 20)
    print(applied, libc.mallinfo2().hblkhd - before)
""")


def mmapped_by_one_malloc(**env):
    clean = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    out = subprocess.run(
        [sys.executable, "-c", MMAPPED_BY_ONE_MALLOC], env={**clean, "PYTHONPATH": str(REPO), **env},
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and mallinfo2")
def test_keep_freed_memory_serves_large_blocks_from_the_heap_unless_the_user_set_glibc():
    applied, mmapped = mmapped_by_one_malloc()
    assert applied and mmapped == 0  # reusable heap memory, not fresh pages
    applied, mmapped = mmapped_by_one_malloc(MALLOC_TRIM_THRESHOLD_="131072")
    assert not applied and mmapped >= 64 << 20  # the user's setting wins: glibc's default mmap
