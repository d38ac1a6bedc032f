"""What validation + test evaluation costs per epoch, against training, at the quick scale.

    python benchmarks/eval_cost.py                     # -> benchmarks/results/eval_cost.json
    python benchmarks/eval_cost.py --out /tmp/e.json --rounds 3

The quick profile's setting (params/quick.yaml): 20,000 training / 5,000 validation / 5,000
test images, T = 8, batch 64, one torch thread. One process does, back to back, `rounds`
times: one training epoch (`lib.train.train_epoch`, the same code a run times), then the
evaluation of validation and test as a run does it after every epoch (`lib.evaluate.evaluate_splits`),
then the evaluation as it was before (`evaluate_before` below: a copy of lib.train's earlier
`evaluate`, float64 per-sample SynOps, with every LIF layer through the autograd Function, which
keeps the membranes and computes the surrogate even without grad). Ratios are eval seconds /
training-epoch seconds of the same round (the machine is shared: neighbouring measurements see the same load), and both
evaluations' numbers must be identical (asserted). Then, after the last round, the two
evaluations of the validation split alternate `--repeats` times: the minimum of each is the
least load-disturbed comparison of the two code paths.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib import data, energy, snn  # noqa: E402
from lib.evaluate import evaluate_splits
from lib.machine import keep_freed_memory
from lib.params import Params, initial_network
from lib.train import train_epoch  # noqa: E402


@torch.no_grad()
def evaluate_before(model, split: data.Split, batch_size: int) -> dict:
    """lib.evaluate.evaluate as it was before the layer-by-layer evaluation (LIF layers patched back by `old_lif`)."""
    model.eval()
    fanout = energy.fanouts(model)
    correct, spikes = 0, torch.zeros(len(snn.LAYERS), dtype=torch.float64)
    synops = torch.zeros(len(snn.LAYERS), dtype=torch.float64)
    for images, labels in data.batches(split, batch_size):
        logits, counts = model.activity(images)
        spk = torch.stack([c.flatten(1).sum(1) for c in counts], dim=1)
        correct += (logits.argmax(1) == labels).sum().item()
        spikes += spk.sum(0).double().cpu()
        synops += energy.synops_from_counts([c.double() for c in counts], fanout).sum(0).cpu()
    per_layer = (spikes / len(split)).tolist()
    synops_per_layer = (synops / len(split)).tolist()
    return {
        "accuracy": correct / len(split), "spikes": math.fsum(per_layer), "spikes_per_layer": per_layer,
        "synops": math.fsum(synops_per_layer), "synops_per_layer": synops_per_layer,
        "energy_pj": energy.energy_pj(math.fsum(synops_per_layer), model),
    }


def old_lif(model):
    """Route every LIF layer of `model` through LIFSequence.apply, as before the inference path."""
    for lif in model.lif:
        lif.sequence = lambda cur, p=lif.p: snn.LIFSequence.apply(cur, p)
    return model


OUT = Path(__file__).resolve().parent / "results" / "eval_cost.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num-steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    keep_freed_memory()  # as a run does
    params = Params(epochs=10, num_steps=args.num_steps, train_size=20000, val_size=5000, test_size=5000,
                    batch_size=64, threads=1, progress=False, schedule="linear", sigma0=2e-4)
    cifar = data.load_cifar10(data.resolve_data_dir(None), None)
    splits = data.prepare(cifar, 0, 0.2, params.train_size, params.val_size, params.test_size)
    torch.manual_seed(0)
    model = initial_network(params)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.lr)
    generator = torch.Generator().manual_seed(0)
    rounds = []
    for r in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        train_epoch(model, optimiser, splits.train, params, r, generator)
        t1 = time.perf_counter()
        fast = evaluate_splits(model, [splits.val, splits.test], params.eval_batch_size)
        t2 = time.perf_counter()
        before = old_lif(initial_network(params))
        before.load_state_dict(model.state_dict())
        t3 = time.perf_counter()
        ref = [evaluate_before(before, s, 1000) for s in (splits.val, splits.test)]
        t4 = time.perf_counter()
        assert fast == ref, (fast, ref)  # the same accuracy, spikes, SynOps, energy: bit for bit
        rounds.append({"train_epoch_s": t1 - t0, "eval_s": t2 - t1, "eval_before_s": t4 - t3,
                       "eval_ratio": (t2 - t1) / (t1 - t0), "eval_before_ratio": (t4 - t3) / (t1 - t0),
                       "val_accuracy": fast[0]["accuracy"], "val_spikes": fast[0]["spikes"]})
        print(json.dumps(rounds[-1]), flush=True)
    fast_s, before_s = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        evaluate_splits(model, [splits.val], params.eval_batch_size)
        t1 = time.perf_counter()
        evaluate_before(before, splits.val, 1000)
        fast_s.append(t1 - t0)
        before_s.append(time.perf_counter() - t1)
    result = {
        "setting": {"train": params.train_size, "val": params.val_size, "test": params.test_size,
                    "num_steps": params.num_steps, "batch_size": params.batch_size,
                    "eval_batch_size": params.eval_batch_size, "threads": 1},
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                    "load_average": os.getloadavg()},
        "rounds": rounds,
        "median_eval_ratio": statistics.median(r["eval_ratio"] for r in rounds),
        "median_eval_before_ratio": statistics.median(r["eval_before_ratio"] for r in rounds),
        "val_eval_s": {"now": fast_s, "before": before_s, "min_now": min(fast_s), "min_before": min(before_s),
                       "speedup_of_min": min(before_s) / min(fast_s)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
