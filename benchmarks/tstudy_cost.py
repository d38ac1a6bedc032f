"""One training epoch at T = 8, 16 and 32 side by side: the cost estimate of params/tstudy.yaml.

    python benchmarks/tstudy_cost.py [--rounds 3] [--out benchmarks/results/tstudy_cost.json]

1,920 training images (30 batches of 64), then evaluation of 1,000 validation images, per T,
at 1 thread, linear schedule sigma0 2e-4, in one process; rounds alternate the order of T
(8, 16, 32, then 32, 16, 8) so that drifting load hits every T alike. Ratios are T's training
epoch over T = 8's of the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib import data  # noqa: E402
from lib.evaluate import evaluate_splits
from lib.machine import keep_freed_memory
from lib.params import Params, initial_network
from lib.train import train_epoch  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "tstudy_cost.json"
STEPS = (8, 16, 32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    keep_freed_memory()  # as a run does
    cifar = data.load_cifar10(data.resolve_data_dir(None), None)
    splits = data.prepare(cifar, 0, 0.2, 1920, 1000, 1, "cpu")
    rounds = []
    for r in range(args.rounds):
        row = {}
        for steps in STEPS if r % 2 == 0 else reversed(STEPS):
            params = Params(num_steps=steps, epochs=10, schedule="linear", sigma0=2e-4, progress=False)
            torch.manual_seed(0)
            model = initial_network(params)
            optimiser = torch.optim.Adam(model.parameters(), params.lr)
            t0 = time.perf_counter()
            train_epoch(model, optimiser, splits.train, params, 1, torch.Generator().manual_seed(0))
            t1 = time.perf_counter()
            evaluate_splits(model, [splits.val], 1000)
            row[str(steps)] = {"train_epoch_s": t1 - t0, "eval_1000_s": time.perf_counter() - t1}
        for steps in STEPS[1:]:
            row[f"ratio_{steps}"] = row[str(steps)]["train_epoch_s"] / row["8"]["train_epoch_s"]
        rounds.append(row)
        print(json.dumps(row), flush=True)
    result = {"setting": {"train_images": 1920, "eval_images": 1000, "batch_size": 64, "threads": 1},
              "load_average": os.getloadavg(), "rounds": rounds,
              **{f"median_ratio_{s}": statistics.median(x[f"ratio_{s}"] for x in rounds) for s in STEPS[1:]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
