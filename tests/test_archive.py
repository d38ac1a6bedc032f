"""lib.export.archive: a sweep carried from one results folder to another through a small archive,
on hand-made records whose selections are worked out by hand below."""

import json

import factories
import pytest
import torch
import yaml
from factories import epoch_row

from lib import energy, record, sweep
from lib.checkpoints import checkpoint_name, save_checkpoint
from lib.export import archive, models
from lib.params import Params, initial_network
from lib.sweep import cli, profiles

torch.set_num_threads(1)
pytest.importorskip("nir")  # models.publish writes NIR files

GRID = {"seeds": [0, 1], "sigma0": {"baseline": [], "linear": [1e-6, 3e-6]}}
# (val_accuracy, val_spikes) per epoch; test numbers are derived (epoch_row).
# Seed 0, reference 0.40 (baseline epoch 2, both tables). First machine: linear 1e-6 gives
# Table 1 epoch 2 (0.41, 700) and Table 2 epoch 1 (0.395, 500). Second machine adds linear 3e-6,
# whose epoch 1 (0.41, 300) takes both tables: linear 1e-6 keeps no checkpoint.
# Seed 1 on the first machine has no baseline: both epochs of linear 1e-6 are kept; the second
# machine's baseline (reference 0.49, epoch 2 in both tables) leaves linear 1e-6's epoch 1 (600).
FIRST = {
    "baseline-seed0": [(0.30, 1000), (0.40, 900)],
    "linear-s1e-06-seed0": [(0.395, 500), (0.41, 700)],
    "linear-s1e-06-seed1": [(0.50, 600), (0.50, 650)],
}
SECOND = {
    "linear-s3e-06-seed0": [(0.41, 300), (0.38, 100)],
    "baseline-seed1": [(0.45, 900), (0.49, 950)],
}


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"epochs": 2, "num_steps": 2, "grid": GRID}))
    return profiles.load_profile(str(path))


def train_by_hand(profile, results, runs):
    """Complete run folders as lib.sweep leaves them: a checkpoint per epoch, then the record."""
    by_id = {r.id: r for r in profile.runs}
    for i, (run_id, rows) in enumerate(runs.items()):
        run = by_id[run_id]
        folder = sweep.run_dir(profile, run, results)
        params = vars(Params(schedule=run.schedule, sigma0=run.sigma0, seed=run.seed, epochs=2, num_steps=2))
        for n in (1, 2):
            torch.manual_seed(10 * i + n)
            save_checkpoint(initial_network(Params(**params)), folder / checkpoint_name(n))
        (folder / "train.ipynb").write_text("{}")  # the executed notebook: never archived
        epochs = [epoch_row(n, *row, checkpoint=checkpoint_name(n)) for n, row in enumerate(rows, start=1)]
        record.write(folder / "record.json", factories.record(run.schedule, run.sigma0, epochs, run.seed, params))


def files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_sweep_moves_machines_through_the_archive_and_keeps_only_what_tables_may_publish(profile, tmp_path):
    first, second, kept = tmp_path / "first", tmp_path / "second", tmp_path / "records"
    train_by_hand(profile, first, FIRST)
    moved = archive.pack(profile, first, kept)
    assert sorted(moved.records) == sorted(FIRST) and moved.checkpoints == 5 and not moved.missing
    assert files(kept) == [
        "p/baseline-seed0/checkpoints/epoch-002.pt", "p/baseline-seed0/record.json",
        "p/linear-s1e-06-seed0/checkpoints/epoch-001.pt", "p/linear-s1e-06-seed0/checkpoints/epoch-002.pt",
        "p/linear-s1e-06-seed0/record.json",
        "p/linear-s1e-06-seed1/checkpoints/epoch-001.pt", "p/linear-s1e-06-seed1/checkpoints/epoch-002.pt",
        "p/linear-s1e-06-seed1/record.json"]
    assert archive.pack(profile, first, kept).records == []  # packing again changes nothing

    # a fresh machine: the archived runs are complete there, and the sweep trains only the others
    assert len(archive.unpack(profile, kept, second).records) == 3
    assert {r.id for r in profile.runs if sweep.state(profile, r, second) == "complete"} == set(FIRST)
    for run_id in FIRST:
        path = f"p/{run_id}/record.json"
        assert (second / path).read_bytes() == (first / path).read_bytes()
    assert (second / "p/linear-s1e-06-seed0/checkpoints/epoch-002.pt").read_bytes() == (
        first / "p/linear-s1e-06-seed0/checkpoints/epoch-002.pt").read_bytes()
    train_by_hand(profile, second, SECOND)
    moved = archive.pack(profile, second, kept)
    assert sorted(moved.records) == sorted(SECOND) and moved.removed == 3
    assert [f for f in files(kept) if f.endswith(".pt")] == [
        "p/baseline-seed0/checkpoints/epoch-002.pt", "p/baseline-seed1/checkpoints/epoch-002.pt",
        "p/linear-s1e-06-seed1/checkpoints/epoch-001.pt", "p/linear-s3e-06-seed0/checkpoints/epoch-001.pt"]

    # the tables' networks publish from the archive alone, the same as from the full results
    from_archive = models.publish(sweep.collect(profile, kept), tmp_path / "a", kept)
    from_results = models.publish(sweep.collect(profile, second), tmp_path / "b", second)
    assert from_archive.equals(from_results) and not (from_archive["state_dict"] == "").any()
    for name in from_archive["state_dict"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_records_of_one_run_are_refused_before_anything_is_written(profile, tmp_path, capsys):
    first, kept = tmp_path / "first", tmp_path / "records"
    train_by_hand(profile, first, {"baseline-seed0": FIRST["baseline-seed0"]})
    archive.pack(profile, first, kept)
    before = files(kept)
    path = first / "p" / "baseline-seed0" / "record.json"
    rec = json.loads(path.read_text())
    rec["epochs"][0]["val_accuracy"] = 0.31  # trained again elsewhere: other numbers
    path.write_text(json.dumps(rec))
    train_by_hand(profile, first, {"linear-s1e-06-seed0": FIRST["linear-s1e-06-seed0"]})
    with pytest.raises(archive.ArchiveError, match="baseline-seed0 has two different complete records"):
        archive.pack(profile, first, kept)
    assert files(kept) == before
    with pytest.raises(archive.ArchiveError, match=str(path)):
        archive.unpack(profile, kept, first)
    argv = ["--results", str(first), "pack", str(tmp_path / "p.yaml"), "--archive", str(kept)]
    assert cli.main(argv) == 1 and "two different complete records" in capsys.readouterr().err
    path.unlink()  # the archive's record is the one to keep
    assert cli.main(argv) == 0
    assert "1 records and 2 checkpoints copied" in capsys.readouterr().out


def test_a_sweep_without_validation_keeps_its_chosen_epochs_and_reports_them(tmp_path, cifar10_dir, monkeypatch):
    """val_fraction 0 (params/paper-final.yaml's setting): nothing can be selected, so pack keeps the
    checkpoints of the epochs the chosen tables name, and the tables step runs notebooks/final.ipynb."""
    monkeypatch.setenv("CIFAR10_DIR", cifar10_dir)
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    header = "schedule,seeds,sigma0,epoch,test_accuracy_mean,spike_reduction_mean\n"
    (chosen / "table1_robust.csv").write_text(header + 'baseline,2,"[0.0, 0.0]","[2, 2]",0.4,0.0\n'
                                              'linear,2,"[1e-06, 1e-06]","[1, 1]",0.39,0.3\n')
    (chosen / "table2_robust.csv").write_text(header + 'baseline,2,"[0.0, 0.0]","[2, 2]",0.4,0.0\n'
                                              'linear,2,"[1e-06, 1e-06]","[2, 2]",0.38,0.35\n')
    setting = {"epochs": 2, "num_steps": 2, "val_fraction": 0.0, "stop_collapsed": False}
    path = tmp_path / "final.yaml"
    path.write_text(yaml.safe_dump({**setting, "grid": {"seeds": [0], "chosen": str(chosen)}}))
    profile = profiles.load_profile(str(path))
    results = tmp_path / "results"
    for i, run in enumerate(profile.runs):
        folder = sweep.run_dir(profile, run, results)
        params = vars(Params(schedule=run.schedule, sigma0=run.sigma0, seed=run.seed, **setting))
        for n in (1, 2):
            torch.manual_seed(10 * i + n)
            save_checkpoint(initial_network(Params(**params)), folder / checkpoint_name(n))
        epochs = [{**epoch_row(n, 0.0, 800 - 100 * n - 300 * i, checkpoint=checkpoint_name(n)),
                   "val_accuracy": None, "val_spikes": None} for n in (1, 2)]
        record.write(folder / "record.json", factories.record(
            run.schedule, run.sigma0, epochs, run.seed, params, data={"train": 50_000, "val": 0, "test": 10_000},
            energy=energy.reference(initial_network(Params(**params)))))
    archive.pack(profile, results, tmp_path / "records")
    assert [f for f in files(tmp_path / "records") if f.endswith(".pt")] == [
        "final/baseline-seed0/checkpoints/epoch-002.pt", "final/linear-s1e-06-seed0/checkpoints/epoch-001.pt",
        "final/linear-s1e-06-seed0/checkpoints/epoch-002.pt"]
    assert sweep.tables(str(path), results, tmp_path / "figures") is not None
    table = (tmp_path / "figures/final/table1.csv").read_text()
    assert "spike_reduction_change" in table and (tmp_path / "figures/final/table2.md").exists()
