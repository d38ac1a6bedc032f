"""python -m lib.kernels: build the fused LIF kernel (or find it built) and say which path lib.snn runs."""

from . import SOURCE, library_name, name

print(f"lib.kernels: the {name()} LIF kernel runs on the CPU ({library_name()}, from {SOURCE.name})")
