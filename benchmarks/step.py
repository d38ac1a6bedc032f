"""One training step of the same spiking LeNet, six ways, timed side by side.

    python benchmarks/step.py                 # (T=25, B=64) and (T=100, B=32) -> benchmarks/results/step.json
    python benchmarks/step.py --configs 8x64 --rounds 5 --out /tmp/step.json
    python benchmarks/step.py --configs 16x64 --threads 1 --impls lib,lib-torch,dense   # the sweeps' setting

A step is what lib.train.train_epoch does per batch: forward over T steps, loss
cross_entropy(logits, labels) + w * spikeCount, backward, Adam step. Implementations:

    lib          lib.snn.SpikingLeNet as lib.train uses it: layer by layer, each LIF layer one
                 fused CPU kernel (lib.kernels: recursion, 2x2 pool and count in one pass)
    lib-torch    the same network with lib.snn's PyTorch path for every LIF layer
                 (lif_layer_torch: LIFSequence, F.avg_pool2d, .sum(0)): the code before
                 lib.kernels, with the same numbers
    plain        SpikingLeNet(step_by_step=True): the straightforward PyTorch loop, every
                 layer one step at a time, autograd through every step (conv1 every step)
    snntorch     snnTorch Leaky neurons, its step-by-step idiom
    spikingjelly SpikingJelly LIFNode, multi-step mode ('m'), its CPU implementation
    norse        Norse lif_box_feed_forward_step in its multi-step SNN module
    dense        the dense bound: the same LeNet with ReLU instead of LIF, conv1 once on
                 the B images and everything after it on T x B images

All get the same weights (copied from `lib`), the same real CIFAR-10 batch, Adam with
the same learning rate, and -- except where a library cannot say it -- the same LIF:

    mem[t] = beta * mem[t-1] + cur[t];  spk[t] = H(mem[t] - threshold);  mem[t] -= spk[t] * threshold

with beta 0.9, threshold 1, the reset detached from the graph, and the triangle
surrogate gamma * max(0, 1 - |x| / width), gamma = width = 1. The peers also compute
conv1 once (direct input is constant over time), a model choice, not a library's.
Where each peer differs (also written into the JSON as "notes"):

    snntorch     no triangle surrogate in snntorch.surrogate: ours is passed as spike_grad.
                 reset_delay=False (the reset in the same step, as ours); in that mode
                 snnTorch's reset is not detached and, when mem > 2 * threshold, undoes itself.
    spikingjelly mem = v - v / tau + x with tau = 1 / (1 - beta) (rounds differently from
                 0.9 * v); spikes at mem >= threshold; PiecewiseQuadratic(alpha=1) is this triangle.
    norse        v += dt * tau_mem_inv * (i - v) scales the input by 1 - beta: the layers feeding
                 its neurons get weights and biases scaled by 1 / (1 - beta) so v equals our mem;
                 reset_subtract is not detached, so its reset_method is given a detached one;
                 its multi-step module indexes input[t] (backward grows with T^2, its cost).

Spike counts at initialisation are compared (same batch, same weights) to show that it
is the same computation. Timing: warm-up, then rounds in which every implementation
takes one step, in an order rotated every round so that machine drift hits all alike;
the median per implementation, and ratios from this one run. Also timed: one epoch of
the data pipeline alone (lib.data.batches over the 40,000 training images) against one
epoch of training (batches x the median lib step). The allocator is tuned as in
lib.train.run (keep_freed_memory); --malloc default measures glibc's defaults instead.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's lib, also without PYTHONPATH

from lib import data, kernels, snn  # noqa: E402
from lib.snn import LIFParameters, PiecewiseLinearSpike, SpikingLeNet  # noqa: E402
from lib.train import keep_freed_memory  # noqa: E402

BETA, THRESHOLD, LR, WEIGHT = 0.9, 1.0, 1e-3, 1e-6
IMPLS = ("lib", "lib-torch", "plain", "snntorch", "spikingjelly", "norse", "dense")
PEERS = ("snntorch", "spikingjelly", "norse")
LIF_FED = ("conv1", "conv2", "fc1", "fc2")  # the layers whose output is a LIF input current


class LeNetLayers(nn.Module):
    """The five weighted layers of lib's SpikingLeNet, same names, for copying weights."""

    def __init__(self, num_steps):
        super().__init__()
        self.num_steps = num_steps
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def cur1(self, images):
        """conv1 once, as a (T, B, 6, 28, 28) view: direct input is constant over time."""
        return self.conv1(images).unsqueeze(0).expand(self.num_steps, -1, -1, -1, -1)


def counts(*spikes_tbn):
    """(B, L) spikes per sample and layer from (T, B, ...) spike tensors."""
    return torch.stack([s.sum(0).flatten(1).sum(1) for s in spikes_tbn], 1)


class Dense(LeNetLayers):
    """ReLU instead of LIF, the rest as lib: the work a T-step net cannot avoid densely.
    Its "spikes" are the layers' summed activations, so the loss has the same shape."""

    def forward(self, images):
        T, B = self.num_steps, images.shape[0]
        h1 = F.relu(self.cur1(images).reshape(T * B, 6, 28, 28))
        h2 = F.relu(self.conv2(F.avg_pool2d(h1, 2)))
        h3 = F.relu(self.fc1(F.avg_pool2d(h2, 2).flatten(1)))
        h4 = F.relu(self.fc2(h3))
        logits = self.fc3(h4.view(T, B, 84).mean(0))
        return logits, counts(*(h.view(T, B, -1) for h in (h1, h2, h3, h4)))


class SnnTorchLeNet(LeNetLayers):
    def __init__(self, num_steps):
        import snntorch as snn

        super().__init__(num_steps)
        spike = lambda x: PiecewiseLinearSpike.apply(x, 1.0, 1.0)
        self.lif = nn.ModuleList(
            snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=spike, reset_mechanism="subtract", reset_delay=False)
            for _ in range(4)
        )

    def forward(self, images):
        cur1 = self.conv1(images)
        mems = [lif.reset_mem() for lif in self.lif]
        readout, recorded = 0, [[] for _ in self.lif]
        for _ in range(self.num_steps):
            h = cur1
            for i, layer in enumerate((None, self.conv2, self.fc1, self.fc2)):
                if layer is not None:
                    h = layer(h.flatten(1) if layer is self.fc1 else h)
                spk, mems[i] = self.lif[i](h, mems[i])
                recorded[i].append(spk)
                h = F.avg_pool2d(spk, 2) if i < 2 else spk
            readout = readout + self.fc3(h)
        return readout / self.num_steps, counts(*(torch.stack(r) for r in recorded))


class SpikingJellyLeNet(LeNetLayers):
    def __init__(self, num_steps):
        from spikingjelly.activation_based import layer, neuron, surrogate

        super().__init__(num_steps)
        self.conv2 = layer.Conv2d(6, 16, 5, step_mode="m")
        self.fc1, self.fc2 = layer.Linear(400, 120, step_mode="m"), layer.Linear(120, 84, step_mode="m")
        self.pool, self.flat = layer.AvgPool2d(2, step_mode="m"), layer.Flatten(step_mode="m")
        self.lif = nn.ModuleList(
            neuron.LIFNode(
                tau=1 / (1 - BETA), decay_input=False, v_threshold=THRESHOLD, v_reset=None,
                surrogate_function=surrogate.PiecewiseQuadratic(alpha=1.0), detach_reset=True, step_mode="m",
            )
            for _ in range(4)
        )

    def forward(self, images):
        from spikingjelly.activation_based import functional

        functional.reset_net(self)
        s1 = self.lif[0](self.cur1(images))
        s2 = self.lif[1](self.conv2(self.pool(s1)))
        s3 = self.lif[2](self.fc1(self.flat(self.pool(s2))))
        s4 = self.lif[3](self.fc2(s3))
        return self.fc3(s4.mean(0)), counts(s1, s2, s3, s4)


class NorseLeNet(LeNetLayers):
    def __init__(self, num_steps):
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step
        from norse.torch.module.snn import SNN

        super().__init__(num_steps)
        p = LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(1 - BETA), v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(THRESHOLD),
            v_reset=torch.as_tensor(0.0), method="triangle", alpha=1.0,
            reset_method=lambda z, v, reset, th: v - z.detach() * th,
        )
        state = lambda x: LIFBoxFeedForwardState(v=torch.zeros_like(x[0]))
        self.lif = nn.ModuleList(SNN(lif_box_feed_forward_step, state, p, dt=1.0) for _ in range(4))

    def forward(self, images):
        T, B = self.num_steps, images.shape[0]
        s1, _ = self.lif[0](self.cur1(images))
        s2, _ = self.lif[1](self.conv2(F.avg_pool2d(s1.flatten(0, 1), 2)).view(T, B, 16, 10, 10))
        s3, _ = self.lif[2](self.fc1(F.avg_pool2d(s2.flatten(0, 1), 2).view(T, B, 400)))
        s4, _ = self.lif[3](self.fc2(s3))
        return self.fc3(s4.mean(0)), counts(s1, s2, s3, s4)


def build(name, num_steps, state):
    if name in ("lib", "lib-torch", "plain"):
        model = SpikingLeNet(num_steps=num_steps, p=LIFParameters(BETA, THRESHOLD), step_by_step=name == "plain")
        if name == "lib-torch":
            for lif in model.lif:
                lif.layer = lambda cur, pool=False, num_steps=None, p=lif.p: snn.lif_layer_torch(
                    cur, p, pool, num_steps)
    else:
        model = {"snntorch": SnnTorchLeNet, "spikingjelly": SpikingJellyLeNet, "norse": NorseLeNet, "dense": Dense}[
            name
        ](num_steps)
    state = dict(state)
    if name == "norse":  # its integrator scales the input by dt * tau_mem_inv = 1 - beta
        state = {k: v / (1 - BETA) if k.split(".")[0] in LIF_FED else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if "lif" not in k], (name, missing, unexpected)
    return model, torch.optim.Adam(model.parameters(), lr=LR)


def step(model, optimiser, images, labels):
    logits, spikes = model(images)
    loss = F.cross_entropy(logits, labels) + WEIGHT * spikes.sum(1).mean()
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()


def available(names):
    out, missing = [], {}
    for name in names:
        module = {"snntorch": "snntorch", "spikingjelly": "spikingjelly", "norse": "norse"}.get(name)
        if module:
            try:
                __import__(module)
            except Exception as err:  # a peer that fails to import is reported, not fatal
                missing[name] = f"{type(err).__name__}: {err}"
                continue
        out.append(name)
    return out, missing


def bench_config(names, num_steps, batch_size, images, labels, rounds, warmup):
    torch.manual_seed(0)
    state = SpikingLeNet(num_steps=num_steps).state_dict()
    models = {name: build(name, num_steps, state) for name in names}
    with torch.no_grad():
        init_spikes = {name: models[name][0](images)[1].mean(0).tolist() for name in names}
    for _ in range(warmup):
        for name in names:
            step(*models[name], images, labels)
    times = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            step(*models[name], images, labels)
            times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "num_steps": num_steps,
        "batch_size": batch_size,
        "rounds": rounds,
        "warmup": warmup,
        "median_s": median,
        "times_s": times,
        "ratio_to_lib": {name: median[name] / median["lib"] for name in names} if "lib" in names else {},
        "init_spikes_per_sample": init_spikes,  # per layer lif1..lif4; dense: summed activations
        "floor": floor(num_steps, batch_size, median.get("lib")),
    }


def floor(num_steps, batch_size, lib_s):
    """The physical floor of a step: its FLOPs at this machine's sgemm rate, measured now."""
    flops, rate = step_flops(num_steps, batch_size), sgemm_rate()
    return {"flops": flops, "sgemm_flops_per_s": rate, "floor_s": flops / rate,
            "lib_over_floor": lib_s / (flops / rate) if lib_s else None}


def step_flops(num_steps, batch_size):
    """Multiply-adds x 2 of a training step's weighted layers, forward and backward (3x forward:
    the input and weight gradients; conv1's input needs none): the arithmetic no implementation of
    this network avoids. conv1 runs once on the B images, the rest on T x B."""
    T, B = num_steps, batch_size
    conv1 = B * 6 * 28 * 28 * 3 * 25
    rest = T * B * (16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10 / T)  # fc3 on the mean over time
    return 2 * (2 * conv1 + 3 * rest)


def sgemm_rate(rounds=20, n=512):
    """FLOP/s of torch.mm on n x n float32 matrices at the current thread count (median of rounds)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times)


def pipeline_epoch(split, batch_size):
    """Seconds for one shuffled epoch of lib.data.batches alone."""
    generator = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _batch in data.batches(split, batch_size, generator):
        pass  # a batch is gathered (copied out of the split) as it is yielded: that is the work
    return time.perf_counter() - t0


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "host": platform.node()}


def versions():
    from importlib import metadata

    out = {"torch": torch.__version__, "python": platform.python_version()}
    for name in PEERS:  # distribution metadata: spikingjelly has no __version__
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="25x64,100x32", help="TxB,... (num_steps x batch size)")
    parser.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    parser.add_argument("--rounds", type=int, default=15, help="timed steps per implementation")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per implementation first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--malloc", choices=("tuned", "default"), default="tuned", help="glibc allocator settings")
    parser.add_argument("--no-allocator-comparison", action="store_true",
                        help="skip the second run under glibc's default allocator (a subprocess)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "step.json"))
    args = parser.parse_args(argv)

    tuned = keep_freed_memory() if args.malloc == "tuned" else False
    if args.threads:
        torch.set_num_threads(args.threads)
    names, missing = available([n for n in args.impls.split(",") if n])
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",")]
    cifar = data.load_cifar10()
    train = data.prepare(cifar, seed=0).train
    result = {
        "command": "python benchmarks/step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "allocator_tuned": tuned,
        "lif_kernel": kernels.name(),
        "load_average_start": os.getloadavg(),
        "not_run": missing,
        "notes": {k: " ".join(v.split()) for k, v in NOTES.items()},
        "configs": [],
    }
    for num_steps, batch_size in configs:
        images, labels = train.images[:batch_size], train.labels[:batch_size]
        print(f"T={num_steps} B={batch_size}: {', '.join(names)}", flush=True)
        row = bench_config(names, num_steps, batch_size, images, labels, args.rounds, args.warmup)
        if "lib" in names:
            n_batches = data.num_batches(train, batch_size)
            pipeline = statistics.median(pipeline_epoch(train, batch_size) for _ in range(3))
            epoch = n_batches * row["median_s"]["lib"]
            row["data_pipeline"] = {"epoch_s": pipeline, "train_epoch_s_estimate": epoch, "batches": n_batches,
                                    "fraction": pipeline / (pipeline + epoch)}
        result["configs"].append(row)
        print_config(row)
    result["load_average_end"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")  # kept even if the second run fails
    if args.malloc == "tuned" and not args.no_allocator_comparison and tuned:
        result["glibc_default_allocator"] = default_allocator_run(args, names)
        out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return result


def default_allocator_run(args, names):
    """Every implementation again, interleaved, in a fresh process with glibc's allocator
    defaults (the allocator is per process, so this part is not interleaved with the first)."""
    tmp = Path(args.out).with_suffix(".glibc-default.tmp.json")
    cmd = [sys.executable, __file__, "--malloc", "default", "--impls", ",".join(names), "--configs", args.configs,
           "--threads", str(args.threads),
           "--rounds", str(args.rounds), "--warmup", str(args.warmup), "--out", str(tmp)]
    print("glibc default allocator:", flush=True)
    subprocess.run(cmd, check=True)
    sub = json.loads(tmp.read_text())
    tmp.unlink()
    return [{k: c[k] for k in ("num_steps", "batch_size", "median_s", "ratio_to_lib")} for c in sub["configs"]]


def print_config(row):
    median, ratio = row["median_s"], row["ratio_to_lib"]
    print(f"  {'impl':13s} {'median ms':>10s} {'x lib':>7s}   init spikes per sample (lif1..lif4)")
    for name in median:
        spikes = " ".join(f"{s:9.0f}" for s in row["init_spikes_per_sample"][name])
        print(f"  {name:13s} {1000 * median[name]:10.1f} {ratio.get(name, float('nan')):7.2f}   {spikes}")
    peers = [n for n in PEERS if n in median]
    if "lib" in median and peers:
        fastest = min(peers, key=median.get)
        print(f"  fastest peer {fastest}: {median[fastest] / median['lib']:.2f}x lib's step time")
    if "lib" in median and "lib-torch" in median:
        print(f"  lib / lib-torch (fused kernel against the PyTorch path): {median['lib'] / median['lib-torch']:.2f}")
    if "lib" in median and "dense" in median:
        print(f"  lib / dense bound: {median['lib'] / median['dense']:.2f}")
    if row.get("floor", {}).get("lib_over_floor"):
        f = row["floor"]
        print(f"  floor: {f['flops'] / 1e9:.2f} GFLOP at {f['sgemm_flops_per_s'] / 1e9:.0f} GFLOP/s sgemm = "
              f"{1000 * f['floor_s']:.1f} ms; lib / floor: {f['lib_over_floor']:.2f}")
    if "data_pipeline" in row:
        d = row["data_pipeline"]
        print(f"  data pipeline: {d['epoch_s']:.2f} s per epoch = {100 * d['fraction']:.2f} % of an epoch")


NOTES = {
    "conv1": "every spiking implementation but 'plain' computes conv1 once (direct input); 'plain' every step",
    "snntorch": "surrogate: lib's triangle passed as spike_grad (snnTorch has none); reset_delay=False; its reset "
    "is then not detached and undoes itself when mem > 2 * threshold",
    "spikingjelly": "mem = v - v / tau + x, tau = 1 / (1 - beta) (rounding differs from beta * v); spikes at "
    "mem >= threshold; PiecewiseQuadratic(alpha=1) is the triangle",
    "norse": "LIF-box with dt = 1, tau_mem_inv = 1 - beta; weights and biases of conv1, conv2, fc1, fc2 scaled by "
    "1 / (1 - beta) so v = our mem; detached subtractive reset_method given; multi-step module indexes input[t]",
    "dense": "ReLU instead of LIF; 'spikes' are summed activations (same loss shape)",
}


if __name__ == "__main__":
    main()
