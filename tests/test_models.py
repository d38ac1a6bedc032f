"""lib.export.models on hand-made records whose selection is worked out by hand below, each run
folder holding real checkpoints of freshly initialised networks."""

import json

import pandas as pd
import pytest
import torch
from factories import epoch_row

from lib import checkpoints, record, sweep
from lib.analysis import select
from lib.checkpoints import checkpoint_name, load_checkpoint, save_checkpoint
from lib.export import models
from lib.params import Params, initial_network
from lib.sweep import profiles

torch.set_num_threads(1)
nir = pytest.importorskip("nir")

# (val_accuracy, val_spikes) per epoch. Seed 0's reference is the baseline's best, 0.40.
#   Table 1 (val >= 0.40): baseline epoch 2; linear epoch 2 (0.41; epoch 1's 0.395 is below);
#     constant none (0.20, 0.10); quadratic epoch 1 (0.45), a version 1 record: no file.
#   Table 2 (val >= 0.39): baseline epoch 2 (epoch 1's 0.30 is below), the same file as Table 1;
#     linear epoch 1 (0.395 with 500 spikes, fewer than epoch 2's 700); constant none; quadratic epoch 1.
#   alternating: epoch 1 in both (800 spikes, fewer than epoch 2's 850), one file.
# Test spikes are validation spikes + 1: the sparsest Table 1 network with a file is linear
# (701 test spikes; alternating 801, baseline 901), in Table 2 linear again (501).
RUNS = {
    "baseline-seed0": ("baseline", 0.0, [(0.30, 1000), (0.40, 900)]),
    "constant-s1e-05-seed0": ("constant", 1e-5, [(0.20, 10), (0.10, 0)]),
    "linear-s1e-06-seed0": ("linear", 1e-6, [(0.395, 500), (0.41, 700)]),
    "quadratic-s1e-07-seed0": ("quadratic", 1e-7, [(0.45, 300), (0.44, 350)]),
    "alternating-s1e-06-seed0": ("alternating", 1e-6, [(0.40, 800), (0.42, 850)]),
}
V1 = {"quadratic-s1e-07-seed0"}
EXPECTED = [  # table, schedule, epoch, run_id, file stem, note
    ("table1", "baseline", 2, "baseline-seed0", "baseline-seed0-epoch002", ""),
    ("table1", "constant", None, "", "", select.NO_POINT),
    ("table1", "linear", 2, "linear-s1e-06-seed0", "linear-s1e-06-seed0-epoch002", ""),
    ("table1", "quadratic", 1, "quadratic-s1e-07-seed0", "", models.V1_NOTE),
    ("table1", "alternating", 1, "alternating-s1e-06-seed0", "alternating-s1e-06-seed0-epoch001", ""),
    ("table2", "baseline", 2, "baseline-seed0", "baseline-seed0-epoch002", ""),
    ("table2", "constant", None, "", "", select.NO_POINT),
    ("table2", "linear", 1, "linear-s1e-06-seed0", "linear-s1e-06-seed0-epoch001", ""),
    ("table2", "quadratic", 1, "quadratic-s1e-07-seed0", "", models.V1_NOTE),
    ("table2", "alternating", 1, "alternating-s1e-06-seed0", "alternating-s1e-06-seed0-epoch001", ""),
]


@pytest.fixture
def sweep_dir(tmp_path):
    """results/<profile>/<run-id>/ with complete records; returns (Collected, results)."""
    results, recs = tmp_path / "results", []
    for i, (run_id, (schedule, sigma0, rows)) in enumerate(RUNS.items()):
        folder = results / "hand" / run_id
        beta = (0.8, 0.81, 0.82, 0.83, 0.84)[i]
        params = vars(Params(schedule=schedule, sigma0=sigma0, epochs=2, num_steps=2, beta=beta))
        epochs = [epoch_row(n, *row) for n, row in enumerate(rows, start=1)]
        rec = {"status": "complete", "params": params, "epochs": epochs}
        if run_id not in V1:
            for e in epochs:
                torch.manual_seed(10 * i + e["epoch"])
                save_checkpoint(initial_network(Params(**params)), folder / checkpoint_name(e["epoch"]))
                e["checkpoint"] = checkpoint_name(e["epoch"])
            rec["version"] = record.VERSION
        record.write(folder / "record.json", rec)
        recs.append({**record.load(folder / "record.json", complete=True), "run_id": run_id})
    profile = profiles.Profile(name="hand", params={}, runs=(), variants=())
    return sweep.Collected(profile, recs, []), results


def test_index_lists_exactly_the_selected_points(sweep_dir, tmp_path):
    collected, results = sweep_dir
    folder = tmp_path / "figures" / "hand" / "models"
    models.publish(collected, folder, results)
    index = models.read_index(folder)
    got = [(r.table, r.schedule, None if pd.isna(r.epoch) else int(r.epoch), r.run_id,
            r.state_dict.removesuffix(".pt"), r.note) for r in index.itertuples()]
    assert got == EXPECTED
    assert list(index.columns) == models.INDEX_COLUMNS
    linear2 = index[(index.table == "table2") & (index.schedule == "linear")].iloc[0]
    assert (linear2.val_accuracy, linear2.val_spikes, linear2.test_accuracy, linear2.test_spikes) == (
        0.395, 500, 0.385, 501)
    rebuilt = json.loads(linear2.params)
    assert rebuilt["beta"] == 0.82 and "output_dir" not in rebuilt  # the run's own Params, less where it ran
    # one file per selected point with a checkpoint: baseline's point is in both tables, written once
    stems = ["baseline-seed0-epoch002", "linear-s1e-06-seed0-epoch001", "linear-s1e-06-seed0-epoch002",
             "alternating-s1e-06-seed0-epoch001"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["README.md", "index.csv", *(f"{s}.pt" for s in stems), *(f"{s}.nir" for s in stems)])  # no temporaries
    assert "models.load(\"hand\"" in (folder / "README.md").read_text()
    assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o644"}  # readable by all


def test_published_files_are_the_checkpoints_and_load_gives_the_same_logits(sweep_dir, tmp_path):
    collected, results = sweep_dir
    models.publish(collected, tmp_path / "figures" / "hand" / "models", results)
    run_dir = results / "hand" / "linear-s1e-06-seed0"
    folder = models.folder_of("hand", tmp_path / "figures")
    assert (folder / "linear-s1e-06-seed0-epoch001.pt").read_bytes() == (run_dir / checkpoint_name(1)).read_bytes()
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for table, epoch in ((1, 2), ("table2", 1)):
        loaded = models.load("hand", "linear", table=table, seed=0, figures=tmp_path / "figures")
        reference = load_checkpoint(run_dir, epoch)
        assert loaded.num_steps == 2 and not loaded.training
        assert torch.equal(loaded(images)[0], reference(images)[0])
    by_path = models.load_path(folder / "linear-s1e-06-seed0-epoch002.pt")
    assert torch.equal(by_path(images)[0], load_checkpoint(run_dir, 2)(images)[0])
    # the NIR file holds the same weights (the graph's conv1 node) and says its convention
    graph = nir.read(folder / "linear-s1e-06-seed0-epoch002.nir")
    assert torch.equal(torch.as_tensor(graph.nodes["conv1"].weight), by_path.conv1.weight.detach())
    assert graph.metadata["convention"] == "nir"


def test_rows_without_a_file_and_bad_files_are_clear_errors(sweep_dir, tmp_path):
    collected, results = sweep_dir
    figures = tmp_path / "figures"
    folder = models.folder_of("hand", figures)
    models.publish(collected, folder, results)
    with pytest.raises(models.ModelError, match="quadratic, seed 0 has no network: version 1 record"):
        models.load("hand", "quadratic", table=1, figures=figures)
    with pytest.raises(models.ModelError, match="constant, seed 0 has no network: no point within tolerance"):
        models.load("hand", "constant", table=2, figures=figures)
    with pytest.raises(models.ModelError, match="no table1 row for schedule 'alternating_linear', seed 0"):
        models.load("hand", "alternating_linear", table=1, figures=figures)
    with pytest.raises(ValueError, match="unknown table 3"):
        models.load("hand", "linear", table=3, figures=figures)
    path = folder / "linear-s1e-06-seed0-epoch002.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(models.ModelError, match=f"{path}: cannot read the network file"):
        models.load("hand", "linear", table=1, figures=figures)
    path.unlink()
    with pytest.raises(models.ModelError, match=f"{path}: network file missing"):
        models.load_path(path)
    other = folder / "other.pt"
    with pytest.raises(models.ModelError, match=f"{other}: not listed in {folder / 'index.csv'}"):
        models.load_path(other)
    with pytest.raises(models.ModelError, match=f"{tmp_path / 'nowhere' / 'hand' / 'models' / 'index.csv'}"):
        models.load("hand", figures=tmp_path / "nowhere")


def test_publish_checks_every_checkpoint_before_writing_and_drops_stale_files(sweep_dir, tmp_path):
    collected, results = sweep_dir
    folder = tmp_path / "models"
    folder.mkdir()
    stale = folder / "linear-s9e-06-seed0-epoch001.pt"
    stale.write_bytes(b"an earlier selection")
    missing = results / "hand" / "linear-s1e-06-seed0" / checkpoint_name(1)
    saved = missing.read_bytes()
    missing.unlink()
    with pytest.raises(checkpoints.CheckpointError, match=f"{missing}: checkpoint missing"):
        models.publish(collected, folder, results)
    assert [p.name for p in folder.iterdir()] == [stale.name]  # nothing written
    missing.write_bytes(saved)
    models.publish(collected, folder, results)
    assert not stale.exists() and (folder / "linear-s1e-06-seed0-epoch001.pt").exists()


def test_sparsest_pair_is_the_baseline_and_the_fewest_test_spikes(sweep_dir, tmp_path):
    collected, results = sweep_dir
    index = models.publish(collected, tmp_path / "models", results)
    for table, epoch in ((1, 2), (2, 1)):
        base, sparse = models.sparsest_pair(index, table)
        assert (base["schedule"], base["epoch"]) == ("baseline", 2)
        assert (sparse["schedule"], sparse["epoch"]) == ("linear", epoch)
        assert sparse["test_spikes"] == {1: 701, 2: 501}[table]
    assert models.sparsest_pair(index, 1, seed=1) is None  # no such seed
    no_baseline_file = index.assign(state_dict=index["state_dict"].where(index["schedule"] != "baseline", ""))
    assert models.sparsest_pair(no_baseline_file, 1) is None
