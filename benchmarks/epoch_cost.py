"""An epoch of a profile's run with the fused LIF kernel against lib.snn's PyTorch path, side by side.

    python benchmarks/epoch_cost.py                          # paper and quick -> benchmarks/results/epoch_cost.json
    python benchmarks/epoch_cost.py --profiles quick --rounds 1

Each round trains the first epoch of one run of the profile (its baseline, seed 0, the profile's
own setting: sizes, T, augmentation; one torch thread, as a sweep at JOBS=2 runs it) twice, each
in a fresh process: once with `SNN_FUSED=0` (lib.snn's PyTorch path, the code the fused kernel
replaced) and once with the fused kernel, in an order alternated every round so that drifting
load hits both alike. Reported per round: training and whole-epoch seconds (training plus the
validation and test evaluation every epoch of a sweep does; `train_seconds`, `seconds` of the
record's row) and fused / torch; and whether both made the same epoch (accuracies, spikes and
losses equal to the last digit). Needs $CIFAR10_DIR.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's lib, also without PYTHONPATH

import torch  # noqa: E402

from lib import machine  # noqa: E402
from lib.sweep import profiles  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "epoch_cost.json"
SCRIPT = ("import json, sys; from lib.train import run; r = run(**json.loads(sys.argv[1])); "
          "print(json.dumps({'row': r['epochs'][-1], 'lif_kernel': r['machine']['lif_kernel']}))")
SAME = ("train_loss", "train_ce", "val_accuracy", "val_spikes", "test_accuracy", "test_spikes")
PATHS = {"torch": "0", "fused": "1"}


def setting(profile: str) -> dict:
    """The first epoch of the profile's baseline on seed 0, one thread."""
    prof = profiles.load_profile(profile)
    return {**prof.variants[0].params, "schedule": "baseline", "sigma0": 0.0, "seed": 0, "epochs": 1,
            "threads": 1, "progress": False}


def one_epoch(params: dict, path: str, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SNN_FUSED": PATHS[path]}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps({**params, "output_dir": str(out)})],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["lif_kernel"] != path:
        raise RuntimeError(f"asked for the {path} path, the run used {result['lif_kernel']}")
    return {k: result["row"][k] for k in ("train_seconds", "seconds", *SAME)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", default="paper,quick")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not os.environ.get("CIFAR10_DIR"):
        parser.error("set CIFAR10_DIR to the CIFAR-10 folder")
    result = {"command": "python benchmarks/epoch_cost.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine.machine(torch.device("cpu")), "load_average_start": os.getloadavg(), "profiles": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles.split(","):
            params, rounds = setting(profile), []
            for r in range(args.rounds):
                row = {}
                for path in ("torch", "fused") if r % 2 == 0 else ("fused", "torch"):
                    row[path] = one_epoch(params, path, Path(tmp) / f"{profile}-{path}-{r}")
                row["ratio_seconds"] = row["fused"]["seconds"] / row["torch"]["seconds"]
                row["ratio_train_seconds"] = row["fused"]["train_seconds"] / row["torch"]["train_seconds"]
                row["same_numbers"] = all(row["fused"][k] == row["torch"][k] for k in SAME)
                rounds.append(row)
                print(profile, json.dumps(row), flush=True)
            result["profiles"][profile] = {
                "setting": {k: v for k, v in params.items() if k != "progress"},
                "rounds": rounds,
                "median_ratio_seconds": statistics.median(x["ratio_seconds"] for x in rounds),
                "median_ratio_train_seconds": statistics.median(x["ratio_train_seconds"] for x in rounds),
                "same_numbers": all(x["same_numbers"] for x in rounds),
            }
    result["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for profile, p in result["profiles"].items():
        print(f"{profile}: fused / torch, seconds per epoch: median {p['median_ratio_seconds']:.3f} "
              f"(training {p['median_ratio_train_seconds']:.3f}), same numbers: {p['same_numbers']}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
