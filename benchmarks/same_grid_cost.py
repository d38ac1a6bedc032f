"""One epoch of the paper profile's earlier setting, old code against this code, side by side.

    python benchmarks/same_grid_cost.py [--old b672e79] [--rounds 3] [--out benchmarks/results/same_grid_cost.json]

The earlier paper setting (T = 8, no augmentation, 40,000 / 10,000 / 10,000 images, the 31-run grid
of figures/paper-t8) took 2 h 14 min a seed with the code of commit b672e79. Is this code faster
on that same grid? Each round trains one epoch of the same run (constant, sigma0 3e-5, seed 0,
init_gain 3, one thread, validation and test evaluated as every epoch of a sweep does) once with
the old commit's lib (a temporary git worktree) and once with this tree's, each in a fresh
process, in an order alternated every round so that drifting load hits both alike. It reports
each epoch's training and total seconds (`train_seconds`, `seconds` of the run's record) and
the ratio this / old per round and its median: the per-epoch cost of the same grid, measured
side by side. Needs git and $CIFAR10_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "results" / "same_grid_cost.json"
RUN = dict(schedule="constant", sigma0=3e-5, seed=0, epochs=1, num_steps=8, init_gain=3.0,
           threads=1, progress=False)
SCRIPT = "import json, sys; from lib.train import run; print(json.dumps(run(**json.loads(sys.argv[1]))['epochs'][-1]))"


def one_epoch(tree: Path, out: Path) -> dict:
    """Train one epoch with the lib of `tree` in a fresh process; the record's epoch row."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = json.dumps({**RUN, "output_dir": str(out)})
    done = subprocess.run([sys.executable, "-c", SCRIPT, args], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: row[k] for k in ("train_seconds", "seconds", "val_accuracy", "test_spikes")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="b672e79", help="the commit whose code made figures/paper-t8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not os.environ.get("CIFAR10_DIR"):
        parser.error("set CIFAR10_DIR to the CIFAR-10 folder")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.old], check=True)
        try:
            trees = {"old": old, "this": ROOT}
            rounds = []
            for r in range(args.rounds):
                row = {}
                for name in ("old", "this") if r % 2 == 0 else ("this", "old"):
                    row[name] = one_epoch(trees[name], Path(tmp) / f"{name}-{r}")
                row["ratio_seconds"] = row["this"]["seconds"] / row["old"]["seconds"]
                row["ratio_train_seconds"] = row["this"]["train_seconds"] / row["old"]["train_seconds"]
                rounds.append(row)
                print(json.dumps(row), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
    this_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
    result = {"setting": {**RUN, "train": 40000, "val": 10000, "test": 10000},
              "old": args.old, "this": this_commit, "load_average": os.getloadavg(), "rounds": rounds,
              "median_ratio_seconds": statistics.median(x["ratio_seconds"] for x in rounds),
              "median_ratio_train_seconds": statistics.median(x["ratio_train_seconds"] for x in rounds)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"this / old, seconds per epoch: median {result['median_ratio_seconds']:.3f} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
