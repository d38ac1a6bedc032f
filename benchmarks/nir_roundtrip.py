"""The NIR round trip on a trained network: export, import in snnTorch and sinabs, compare on test images.

    python benchmarks/nir_roundtrip.py                       # trains a small net, 1,000 test images
    python benchmarks/nir_roundtrip.py --state path/to/model.pt --test-size 1000

Without --state it trains a small network first (lib.train's own epoch and model builder;
schedule, sigma0, epochs and train size below), and keeps its weights in
results/nir_roundtrip/model.pt. Prints lib.export.nir_export.compare's agreement as JSON and
writes it to results/nir_roundtrip/compare.json. Needs the `nir` extra; sinabs (pyproject.toml,
beside that extra) adds the "sinabs" file's round trip.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lib import data, train
from lib.export import nir_export
from lib.params import OPTIMISERS, Params

OUT = Path("results/nir_roundtrip")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state", help="a SpikingLeNet state_dict to export (default: train one)")
    ap.add_argument("--schedule", default="linear")
    ap.add_argument("--sigma0", type=float, default=3e-6)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-size", type=int, default=5000)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = Params(schedule=args.schedule, sigma0=args.sigma0, epochs=args.epochs,
                    train_size=args.train_size, test_size=args.test_size, init_gain=3.0,
                    threads=args.threads, progress=False)
    splits = data.prepare(data.load_cifar10(data.resolve_data_dir(), None), params.seed, params.val_fraction,
                          params.train_size, params.val_size, params.test_size, torch.device("cpu"))
    torch.manual_seed(params.seed)
    model = params.initial_network(params)
    if args.state:
        model.load_state_dict(torch.load(args.state, map_location="cpu"))
    else:
        optimiser = OPTIMISERS[params.optimiser](model.parameters(), params.lr)
        generator = torch.Generator().manual_seed(params.seed)
        for epoch in range(1, params.epochs + 1):
            train.train_epoch(model, optimiser, splits.train, params, epoch, generator)
        OUT.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), OUT / "model.pt")
    start = time.perf_counter()
    result = nir_export.compare(model, splits.test.images, splits.test.labels)
    result["seconds"] = round(time.perf_counter() - start, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "compare.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
