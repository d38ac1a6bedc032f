"""The selected networks of Tables 1 and 2 as files: published beside the tables, indexed, loaded.

`publish(collected, folder, results)` takes the points `lib.analysis.select.select` picks for each
tolerance of `lib.analysis.select.TOLERANCES` (every schedule and the baseline, each seed) and writes
into `folder` (`figures/<profile>/models/`, see `folder_of`):

    <run-id>-epoch<NNN>.pt     the run's checkpoint after that epoch (a copy of the state_dict
                               `lib.train` saved), one file per selected (run, epoch): a point
                               both tables pick is written once and listed twice
    <run-id>-epoch<NNN>.nir    the same network as a NIR graph, the standard convention
                               (`lib.export.nir_export.write_nir(convention="nir")`: neurons reset to
                               zero, as NIR's LIF says; ours subtract the threshold)
    index.csv                  a row per (table, schedule, seed): INDEX_COLUMNS
    README.md                  what these files are and how to load them

`index.csv` also lists what has no file, with a `note`: a schedule with no point within the
tolerance (select's note), and a point of a version 1 record, which saved no checkpoints
(V1_NOTE). Every file is written atomically (temporary file, then rename), the index after
the files it names; files of an earlier publish that are no longer selected are removed.

    from lib.export import models
    net = models.load("quick", "linear", table=1, seed=0)      # a SpikingLeNet, CPU, eval mode
    net = models.load_path("figures/quick/models/linear-s2e-06-seed0-epoch010.pt")
    baseline_row, sparse_row = models.sparsest_pair(models.read_index(folder))  # for the rasters

`load` rebuilds the network from the index's `params` (the run's `lib.params.Params`, as
JSON) and gives it the weights; a missing or unreadable file is a ModelError naming it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from .. import record as records
from ..analysis import select
from ..checkpoints import CheckpointError, load_checkpoint, trained_network
from ..snn import SpikingLeNet
from . import nir_export

REPO = Path(__file__).resolve().parents[2]
INDEX = "index.csv"
INDEX_COLUMNS = ["table", "schedule", "sigma0", "epoch", "seed", "run_id", "val_accuracy", "val_spikes",
                 "test_accuracy", "test_spikes", "state_dict", "nir", "params", "note"]
TEXT = ("table", "schedule", "run_id", "state_dict", "nir", "params", "note")
V1_NOTE = "version 1 record: the run saved no checkpoints; train it again to get this network"


class ModelError(ValueError):
    """A published network that is not listed, has no file, or cannot be read; names the file."""


def folder_of(profile: str, figures=None) -> Path:
    """Where a profile's networks are published: <figures>/<profile>/models (figures: the repository's)."""
    return Path(figures if figures is not None else REPO / "figures") / profile / "models"


def checkpoint_paths(collected) -> dict:
    """(run_id, epoch) -> the checkpoint its record names, relative to the run's folder (None in version 1)."""
    return {(rec["run_id"], e["epoch"]): e.get("checkpoint") for rec in collected.records for e in rec["epochs"]}


def index(collected) -> pd.DataFrame:
    """The rows of `index.csv` for a `lib.sweep.Collected`, file names included (nothing written)."""
    params = {rec["run_id"]: {k: v for k, v in rec["params"].items() if k != "output_dir"}  # a path where it ran
              for rec in collected.records}
    checkpoints, pts, rows = checkpoint_paths(collected), select.points(collected.records), []
    for table, tolerance in select.TOLERANCES.items():
        for row in select.select(pts, tolerance).to_dict("records"):
            out = {"table": table, **{k: row.get(k) for k in INDEX_COLUMNS[1:10]},
                   "run_id": row["run_id"] if not row["note"] else "",
                   "state_dict": "", "nir": "", "params": "", "note": row["note"]}
            if not row["note"]:
                run_id, epoch = row["run_id"], int(row["epoch"])
                out["epoch"] = epoch
                out["params"] = json.dumps(params[run_id], sort_keys=True)
                if checkpoints[(run_id, epoch)]:
                    stem = f"{run_id.replace('/', '_')}-epoch{epoch:03d}"
                    out.update(state_dict=f"{stem}.pt", nir=f"{stem}.nir")
                else:
                    out["note"] = V1_NOTE
            rows.append(out)
    frame = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    frame["seed"] = frame["seed"].astype(int)
    frame["epoch"] = frame["epoch"].astype("Int64")  # empty for a schedule without a selected point
    return frame


def publish(collected, folder, results) -> pd.DataFrame:
    """Write the selected networks of `collected` (its runs in results/<profile>/<run-id>/, the
    layout of `lib.sweep`) into `folder`; returns the index. A checkpoint that is missing or
    unreadable is a CheckpointError naming it, raised before anything in `folder` changes."""
    folder, results = Path(folder), Path(results)
    frame = index(collected)
    files = frame[frame["state_dict"] != ""].drop_duplicates("state_dict")
    checkpoints, networks = checkpoint_paths(collected), {}
    for row in files.itertuples():  # every checkpoint is loaded (and so checked) before the first write
        run_dir = results / collected.profile.name / row.run_id
        source = run_dir / checkpoints[(row.run_id, row.epoch)]
        networks[row.state_dict] = (source, load_checkpoint(run_dir, row.epoch))
    folder.mkdir(parents=True, exist_ok=True)
    for name, (source, model) in networks.items():
        records.atomic(folder / name, lambda tmp, source=source: shutil.copyfile(source, tmp))
        records.atomic(folder / name.replace(".pt", ".nir"), lambda tmp, model=model: nir_export.write_nir(model, tmp))
    records.atomic(folder / "README.md", lambda tmp: Path(tmp).write_text(readme(collected.profile.name, frame)))
    records.atomic(folder / INDEX, lambda tmp: frame.to_csv(tmp, index=False))
    keep = set(files["state_dict"]) | set(files["nir"])
    for old in [*folder.glob("*.pt"), *folder.glob("*.nir")]:
        if old.name not in keep:  # a network an earlier publish selected, this one not
            old.unlink()
    return frame


def read_index(folder) -> pd.DataFrame:
    """`index.csv` of a models folder; ModelError naming it if it is missing or not an index."""
    path = Path(folder) / INDEX
    try:
        frame = pd.read_csv(path, dtype={**dict.fromkeys(TEXT, str), "epoch": "Int64"})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ModelError(f"{path}: cannot read the index ({type(err).__name__}: {err})") from None
    missing = [c for c in INDEX_COLUMNS if c not in frame.columns]
    if missing:
        raise ModelError(f"{path}: not a models index (no column {', '.join(missing)})")
    return frame.fillna({c: "" for c in TEXT})  # an empty cell is "" (no file, no note), not NaN


def _table_name(table) -> str:
    name = f"table{table}" if isinstance(table, int) else str(table)
    if name not in select.TOLERANCES:
        raise ValueError(f"unknown table {table!r}; valid: 1, 2 (or {', '.join(select.TOLERANCES)})")
    return name


def _build(row, path: Path) -> SpikingLeNet:
    """The network of an index row, with the weights of `path`."""
    try:
        return trained_network(json.loads(row["params"]), path, str(path.parent / INDEX),
                               kind="network file")
    except CheckpointError as err:
        raise ModelError(str(err)) from None


def load(profile: str = "quick", schedule: str = "linear", table=1, seed: int = 0, figures=None) -> SpikingLeNet:
    """The published network of `schedule` in Table `table` (1, 2, or "table1"/"table2") for
    `seed`, from <figures>/<profile>/models/ (`folder_of`), on the CPU, in eval mode."""
    folder = folder_of(profile, figures)
    frame = read_index(folder)
    name = _table_name(table)
    rows = frame[(frame["table"] == name) & (frame["schedule"] == schedule) & (frame["seed"] == seed)]
    if rows.empty:
        listed = sorted(set(zip(frame["schedule"], frame["seed"], strict=True)))
        raise ModelError(f"{folder / INDEX}: no {name} row for schedule {schedule!r}, seed {seed}; "
                         f"listed (schedule, seed): {listed}")
    row = rows.iloc[0]
    if not row["state_dict"]:
        raise ModelError(f"{folder / INDEX}: {name}, {schedule}, seed {seed} has no network: {row['note']}")
    return _build(row, folder / row["state_dict"])


def load_path(path) -> SpikingLeNet:
    """The network of a published state_dict file, rebuilt from the index beside it."""
    path = Path(path)
    frame = read_index(path.parent)
    rows = frame[frame["state_dict"] == path.name]
    if rows.empty:
        raise ModelError(f"{path}: not listed in {path.parent / INDEX}")
    return _build(rows.iloc[0], path)


def sparsest_pair(frame: pd.DataFrame, table=1, seed: int | None = None):
    """(baseline row, sparse row) of an index for the pictures of sparsity: in Table `table`,
    for `seed` (default: the smallest), the baseline's network and, of the other methods'
    networks, the one with the fewest test spikes (the largest test spike reduction against
    that baseline; a tie goes to the first in registry order). None unless both have a file."""
    name = _table_name(table)
    seed = int(frame["seed"].min()) if seed is None else seed
    rows = frame[(frame["table"] == name) & (frame["seed"] == seed) & (frame["state_dict"] != "")]
    base, others = rows[rows["schedule"] == "baseline"], rows[rows["schedule"] != "baseline"]
    if base.empty or others.empty:
        return None
    return base.iloc[0], others.sort_values("test_spikes", kind="stable").iloc[0]


def readme(profile: str, frame: pd.DataFrame) -> str:
    """The text of a models folder's README.md."""
    files = frame[frame["state_dict"] != ""]
    v1 = (frame["note"] == V1_NOTE).sum()
    return f"""# The selected networks of profile `{profile}`

Written by `lib.export.models.publish` (the last cells of `notebooks/tables.ipynb`, run by
`make tables PROFILE={profile}`): the networks that Tables 1 and 2 of `figures/{profile}/` report,
{len(files.drop_duplicates("state_dict"))} files for {len(files)} selected (table, schedule, seed) points.
A spiking LeNet (`lib.snn.SpikingLeNet`) is about 250 KB.

## Files

- `<run-id>-epoch<NNN>.pt`: the PyTorch `state_dict` of the run `<run-id>` after epoch NNN (a
  copy of its checkpoint). When Tables 1 and 2 select the same point it is one file.
- `<run-id>-epoch<NNN>.nir`: the same network as a NIR graph (Neuromorphic Intermediate
  Representation, `nir` on PyPI; `lib.export.nir_export`), for snnTorch, Norse, SpikingJelly, sinabs,
  Lava and neuromorphic chips. It uses NIR's standard meaning (convention "nir"): LIF neurons
  with tau = dt / (1 - beta), r = 1 / (1 - beta), dt = 1e-4 s, and reset *to zero*, the only
  reset NIR expresses. Our neurons reset by subtracting the threshold, so an importer that
  follows NIR runs these weights with the other reset: close to, not the same as, our
  network (measured in `lib.export.nir_export`'s docstring). For sinabs, which resets by
  subtraction, write the exact twin with
  `lib.export.nir_export.write_nir(net, "x.nir", convention="sinabs")`.
  The readout (the mean over time of fc3) is the graph's Output averaged over the
  `num_steps` steps stored in its metadata.
- `index.csv`: a row per (table, schedule, seed): {", ".join(INDEX_COLUMNS)}.
  `table` is table1 (no loss of validation accuracy) or table2 (at most one point lost);
  the accuracies are fractions, the spikes per image (all hidden layers, all time steps);
  `params` is the run's `lib.params.Params` as JSON (less `output_dir`, where it ran), all
  that is needed to rebuild the network; `note` says why a row has no file (no point within the tolerance{
        f"; {v1} rows of runs recorded before checkpoints existed" if v1 else ""}).

## Loading

```python
from lib.export import models
net = models.load("{profile}", "linear", table=1, seed=0)  # a SpikingLeNet, on the CPU, in eval mode
logits, spikes = net(images)  # images: normalised, (B, 3, 32, 32)
net = models.load_path("figures/{profile}/models/<file>.pt")  # one file, through the index beside it
```

Images are normalised with the training split's mean and std (`lib.data.prepare`), as in training.
Without this repository: `torch.load(file)` gives the `state_dict`; the architecture is in
`lib/snn.py`.
"""
