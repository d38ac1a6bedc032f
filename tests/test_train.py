"""One experiment end to end on real images, its record, and every bad input."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from lib import checkpoints, data, energy, record
from lib import evaluate as evaluate_module
from lib import train as train_module
from lib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from lib.evaluate import evaluate, evaluate_splits
from lib.params import DEFAULT_SIGMA0, OPTIMISERS, Params, initial_network
from lib.schedules import REGULARISERS
from lib.train import run

SMALL = dict(epochs=2, train_size=512, val_size=256, test_size=256, num_steps=4, progress=False)


@pytest.mark.slow
def test_short_training_lowers_loss_and_writes_complete_record(cifar10_dir, cache_dir, tmp_path):
    # 1e-6 is below the collapse (`lib.analysis.select.silent`) that 1e-5 causes at this scale
    # (figures/ablations/README.md)
    record = run(
        schedule="linear", sigma0=1e-6, data_dir=cifar10_dir, cache_dir=cache_dir, output_dir=str(tmp_path / "run"),
        lr=2e-3, **{**SMALL, "epochs": 3, "train_size": 1024, "num_steps": 8},
    )
    on_disk = json.loads((tmp_path / "run" / "record.json").read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert record["status"] == "complete" and record["reason"] is None
    assert record["params"]["schedule"] == "linear" and record["params"]["sigma0"] == 1e-6
    assert set(record["versions"]) >= {"lib", "torch"} and record["device"] == "cpu"
    rows = record["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_ce"] < rows[0]["train_ce"] - 0.1
    assert [r["sparsity_weight"] for r in rows] == pytest.approx([1e-6 / 3, 2e-6 / 3, 1e-6])
    for r in rows:
        assert 0 <= r["val_accuracy"] <= 1 and 0 <= r["test_accuracy"] <= 1
        assert len(r["val_spikes_per_layer"]) == 4
        assert r["val_spikes"] == pytest.approx(math.fsum(r["val_spikes_per_layer"]))
        assert r["test_spikes"] == pytest.approx(math.fsum(r["test_spikes_per_layer"]))
        assert r["seconds"] > 0
    assert rows[-1]["val_accuracy"] > 0.18  # above chance (0.1) after three short epochs


@pytest.mark.slow
def test_same_seed_same_numbers(cifar10_dir, cache_dir, tmp_path):
    a, b = (
        run(schedule="constant", sigma0=1e-5, data_dir=cifar10_dir, cache_dir=cache_dir,
            output_dir=str(tmp_path / k), **{**SMALL, "epochs": 1})
        for k in "ab"
    )
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(a["epochs"]) == strip(b["epochs"])


def test_diverging_run_is_recorded_as_failed(cifar10_dir, cache_dir, tmp_path):
    record = run(schedule="constant", sigma0=1e300, lr=1e300, data_dir=cifar10_dir, cache_dir=cache_dir,
                 output_dir=str(tmp_path / "nan"), **{**SMALL, "epochs": 1, "train_size": 128})
    assert record["status"] == "failed" and record["reason"].startswith("diverged: loss is")
    assert json.loads((tmp_path / "nan" / "record.json").read_text())["status"] == "failed"


def test_exploded_loss_is_recorded_as_diverged(cifar10_dir, cache_dir, tmp_path):
    # lr 1e6: finite losses in the millions at chance accuracy, recorded complete before
    record = run(schedule="baseline", lr=1e6, data_dir=cifar10_dir, cache_dir=cache_dir,
                 output_dir=str(tmp_path / "big"), **{**TINY, "epochs": 1})
    assert record["status"] == "failed", record["epochs"]
    assert record["reason"].startswith("diverged: mean training cross-entropy")
    assert "above 10 ln 10 = 23.0" in record["reason"]
    ce = float(record["reason"].split()[4])
    assert math.isfinite(ce) and ce > 10 * math.log(10)


def test_missing_data_is_refused_before_any_record(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="no CIFAR-10 found"):
        run(schedule="linear", sigma0=1e-6, data_dir=str(tmp_path / "nowhere"), output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_crash_while_loading_data_is_recorded_as_failed(cifar10_dir, tmp_path):
    cache_inside_data = str(Path(cifar10_dir) / "cache")  # refused by load_cifar10, after the first record
    with pytest.raises(ValueError, match="must not be inside"):
        run(schedule="linear", sigma0=1e-6, data_dir=cifar10_dir, cache_dir=cache_inside_data,
            output_dir=str(tmp_path / "run"))
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["status"] == "failed" and "must not be inside" in record["reason"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"schedule": "cosine"}, "unknown schedule 'cosine'; valid: baseline, constant"),
        ({"schedule": "linear", "sigma0": -1e-6}, "sigma0 must be >= 0"),
        ({"schedule": "linear", "sigma0": 0.0}, "needs sigma0 > 0"),
        ({"sigma0": float("nan")}, "sigma0 must be a finite number"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"epochs": 2.5}, "epochs must be an integer >= 1"),
        ({"num_steps": -3}, "num_steps must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0}, "lr must be > 0"),
        ({"beta": 1.5}, "beta must be in"),
        ({"train_size": -1}, "train_size"),
        ({"encoding": "latency"}, "unknown encoding 'latency'; valid: direct, poisson"),
        ({"surrogate": "arctan"}, "unknown surrogate"),
        ({"granularity": "step"}, "unknown granularity"),
        ({"spike_normalisation": "max"}, "unknown spike_normalisation"),
        ({"optimiser": "rmsprop"}, "unknown optimiser 'rmsprop'; valid: adam, sgd"),
        ({"lr_schedule": "step"}, "unknown lr_schedule 'step'; valid: constant, cosine"),
        ({"augment": "cutout"}, "unknown augment 'cutout'; valid: none, crop_flip"),
        ({"reset": "hard"}, "unknown reset 'hard'; valid: subtract, zero"),
        ({"reset": "zero", "detach_reset": False}, "reset 'zero' is implemented with the reset detached only"),
        ({"init_gain": 0.0}, "init_gain must be > 0"),
        ({"device": "cuda"}, "no CUDA device"),
        ({"device": "tpu-ish"}, "unknown device"),
        ({"learning_rate": 0.1}, "unknown parameter\\(s\\) learning_rate"),
        ({"schedule": "synops", "sigma0": 0.0}, "needs sigma0 > 0"),
        ({"spike_bound": -1.0}, "spike_bound must be >= 0"),
        ({"spike_bound": float("inf")}, "spike_bound must be a finite number"),
        ({"layer_weights": "1,1,1"}, "layer_weights must be 4 comma-separated numbers"),
        ({"layer_weights": "1,x,1,1"}, "layer_weights must be 4 comma-separated numbers"),
        ({"layer_weights": "1,1,1,-2"}, "layer_weights must be 4 finite numbers >= 0"),
        ({"schedule": "layer_weighted", "sigma0": 1e-6, "layer_weights": "0,0,0,0"}, "needs a layer weight > 0"),
        # strings from papermill -r or quoted YAML: "False" used to behave as True, and was recorded as "False"
        ({"detach_reset": "False"}, "detach_reset must be True or False, got 'False' \\(str\\)"),
        ({"detach_reset": "false"}, "detach_reset must be True or False"),
        ({"progress": 0}, "progress must be True or False, got 0 \\(int\\)"),
        ({"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"epochs": True}, "epochs must be an integer >= 1, got True"),
        ({"beta": "0.9"}, "beta must be a finite number, got '0.9'"),
        ({"val_fraction": float("nan")}, "val_fraction must be a finite number"),
        ({"val_fraction": 1.0}, "val_fraction must be in \\[0, 1\\)"),
        ({"val_fraction": -0.1}, "val_fraction must be in"),
        ({"val_fraction": 0.0}, "stop_collapsed watches the validation split"),
        ({"val_fraction": 0.0, "val_size": 100, "stop_collapsed": False}, "no validation split"),
        ({"lr": "1e-3"}, "lr must be a finite number"),
        ({"data_dir": 5}, "data_dir must be a string, got 5 \\(int\\)"),
        ({"layer_weights": [1, 1, 1, 1]}, "layer_weights must be a string"),
    ],
)
def test_bad_input_is_rejected_before_any_work(bad, message, tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)  # would fail later, on data, if checks were late
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        run(output_dir=str(out), **bad)
    assert not out.exists()


def test_regularisers_run_and_records_hold_synops_and_energy(cifar10_dir, cache_dir, tmp_path):
    tiny = {**SMALL, "epochs": 1, "train_size": 128, "val_size": 64, "test_size": 64, "num_steps": 2}
    for schedule in REGULARISERS:
        record = run(schedule=schedule, sigma0=1e-6, data_dir=cifar10_dir, cache_dir=cache_dir,
                     output_dir=str(tmp_path / schedule), **tiny)
        assert record["status"] == "complete", record["reason"]
    assert record["energy"]["ann_energy_pj"] == pytest.approx(4.6 * 651_720)
    assert record["energy"]["snn_input_macs"] == 2 * 352_800  # conv1 at each of the 2 steps
    row = record["epochs"][0]
    for name in ("val", "test"):
        spikes, synops = row[f"{name}_spikes_per_layer"], row[f"{name}_synops_per_layer"]
        assert row[f"{name}_synops"] == pytest.approx(math.fsum(synops))
        # every neuron of lif2..lif4 feeds all 120, 84, 10 neurons of the next layer
        assert synops[1:] == pytest.approx([120 * spikes[1], 84 * spikes[2], 10 * spikes[3]])
        assert 16 * spikes[0] <= synops[0] <= 400 * spikes[0]  # lif1: 16 (corner) to 16 * 25
        assert row[f"{name}_energy_pj"] == pytest.approx(0.9 * row[f"{name}_synops"] + 4.6 * 2 * 352_800)


@pytest.mark.slow
def test_val_fraction_0_trains_on_every_training_image_and_records_no_validation(cifar10_dir, cache_dir, tmp_path):
    """The run setting of a retrain on all 50,000 images: no validation split, null val columns, the
    same test images as a run with one; the selection rules refuse its records (tests/test_select.py)."""
    common = dict(data_dir=cifar10_dir, cache_dir=cache_dir, test_size=256, epochs=1, num_steps=4, progress=False,
                  stop_collapsed=False)
    whole = run(output_dir=str(tmp_path / "whole"), val_fraction=0.0, train_size=256, **common)
    split = run(output_dir=str(tmp_path / "split"), train_size=256, val_size=256, **common)
    assert whole["status"] == "complete" and whole["params"]["val_fraction"] == 0
    assert whole["data"]["train"] == 256 and whole["data"]["val"] == 0 and whole["data"]["test"] == 256
    train_idx, val_idx = data.split_indices(50_000, 0.0, seed=0)
    assert len(val_idx) == 0 and sorted(train_idx.tolist()) == list(range(50_000))
    row = whole["epochs"][0]
    assert all(row[k] is None for k in row if k.startswith("val_"))
    assert 0 < row["test_accuracy"] <= 1 and row["test_spikes"] > 0
    assert split["data"]["test"] == 256 and split["epochs"][0]["val_accuracy"] is not None
    assert record.load(tmp_path / "whole" / "record.json", complete=True)["data"]["val"] == 0


def test_missing_data_fails_with_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="CIFAR10_DIR"):
        run(output_dir=str(tmp_path / "out"), **SMALL)


def test_params_defaults_are_valid():
    assert Params().check().schedule == "baseline"


def test_baseline_ignores_sigma0_and_records_zero(cifar10_dir, cache_dir, tmp_path):
    record = run(schedule="baseline", sigma0=5e-6, data_dir=cifar10_dir, cache_dir=cache_dir, threads=1,
                 output_dir=str(tmp_path / "b"), **{**SMALL, "epochs": 1, "train_size": 128, "num_steps": 2})
    assert record["params"]["sigma0"] == 0.0
    assert record["epochs"][0]["sparsity_weight"] == 0.0


def test_init_gain_scales_the_weights_into_lif2_to_lif4_only():
    torch.manual_seed(0)
    plain = initial_network(Params(init_gain=1.0))
    torch.manual_seed(0)
    scaled = initial_network(Params(init_gain=3.0))
    for name in ("conv2", "fc1", "fc2"):
        assert torch.equal(getattr(scaled, name).weight, 3.0 * getattr(plain, name).weight), name
        assert torch.equal(getattr(scaled, name).bias, getattr(plain, name).bias), name
    for name in ("conv1", "fc3"):
        assert torch.equal(getattr(scaled, name).weight, getattr(plain, name).weight), name


def test_sgd_optimiser_is_sgd_with_momentum():
    model = initial_network(Params())
    optimiser = OPTIMISERS["sgd"](model.parameters(), 0.05)
    assert isinstance(optimiser, torch.optim.SGD)
    assert optimiser.defaults["momentum"] == 0.9 and optimiser.defaults["lr"] == 0.05


TINY = {**SMALL, "train_size": 128, "val_size": 64, "test_size": 64, "num_steps": 2, "threads": 1}


@pytest.fixture(scope="module")
def tiny_run(cifar10_dir, cache_dir, tmp_path_factory):
    """One real two-epoch run, shared by the tests of its checkpoints, fingerprint and protection."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    return out, run(schedule="linear", sigma0=1e-6, data_dir=cifar10_dir, cache_dir=cache_dir,
                    output_dir=str(out), **TINY)


def test_every_epoch_saves_a_checkpoint_that_reproduces_the_recorded_numbers(tiny_run, cifar10_dir, cache_dir):
    out, rec = tiny_run
    assert [r["checkpoint"] for r in rec["epochs"]] == ["checkpoints/epoch-001.pt", "checkpoints/epoch-002.pt"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-001.pt", "epoch-002.pt"]
    params = Params.from_dict(rec["params"])
    splits = data.prepare(data.load_cifar10(cifar10_dir, cache_dir), params.seed, params.val_fraction,
                          params.train_size, params.val_size, params.test_size)
    for row in rec["epochs"]:
        result = evaluate(load_checkpoint(out, row["epoch"]), splits.test, params.eval_batch_size)
        assert result["accuracy"] == row["test_accuracy"]
        assert result["spikes_per_layer"] == row["test_spikes_per_layer"]
    first, last = (torch.load(out / r["checkpoint"]) for r in rec["epochs"])
    assert not torch.equal(first["conv1.weight"], last["conv1.weight"])  # two epochs, two sets of weights


def make_record_dir(tmp_path, **params):
    """A record naming one checkpoint of a freshly initialised network; returns (folder, model)."""
    torch.manual_seed(1)
    model = initial_network(Params(**params))
    save_checkpoint(model, tmp_path / "checkpoints" / "epoch-001.pt")
    row = {"epoch": 1, "checkpoint": "checkpoints/epoch-001.pt"}
    record.write(tmp_path / "record.json", {"status": "running", "params": vars(Params(**params)), "epochs": [row]})
    return tmp_path, model


def test_load_checkpoint_gives_the_same_logits(tmp_path):
    folder, model = make_record_dir(tmp_path, num_steps=3, init_gain=2.0, beta=0.8)
    loaded = load_checkpoint(folder, 1)
    assert loaded.num_steps == 3
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model.eval()
    assert torch.equal(loaded(images)[0], model(images)[0])
    assert not list(folder.glob("checkpoints/.*"))  # no temporary file left behind


def test_missing_or_corrupt_checkpoint_is_named(tmp_path):
    folder, _ = make_record_dir(tmp_path)
    path = folder / "checkpoints" / "epoch-001.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=f"{path}: cannot read the checkpoint"):
        load_checkpoint(folder, 1)
    path.unlink()
    with pytest.raises(CheckpointError, match=f"{path}: checkpoint missing"):
        load_checkpoint(folder, 1)
    with pytest.raises(CheckpointError, match="no epoch 2 \\(recorded: \\[1\\]\\)"):
        load_checkpoint(folder, 2)


def test_record_carries_version_and_machine_fingerprint(tiny_run):
    out, rec = tiny_run
    assert record.load(out / "record.json", complete=True) == json.loads(json.dumps(rec))
    assert rec["version"] == record.VERSION == 2
    m = rec["machine"]
    assert set(m) == set(record.Machine.__annotations__)
    assert m["threads"] == 1  # the run's threads=1
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["cpu"] and m["cpu"] in Path("/proc/cpuinfo").read_text()
    assert m["cuda"] is None and m["cudnn"] is None and m["device_name"] == m["cpu"]  # a CPU run


def test_a_complete_record_is_never_overwritten(tiny_run, tmp_path):
    out, _ = tiny_run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a setting that would fail late (no data); the refusal must come first and change nothing
    with pytest.raises(FileExistsError, match="record.json is a complete run; it is never overwritten"):
        run(output_dir=str(out), data_dir=str(tmp_path / "nowhere"), **TINY)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_failed_record_may_be_replaced(tmp_path):
    record.write(tmp_path / "record.json", {"status": "failed", "reason": "x", "params": {}, "epochs": []})
    with pytest.raises(data.DataNotFoundError):  # got past the check: only complete records are protected
        run(output_dir=str(tmp_path), data_dir=str(tmp_path / "nowhere"), **TINY)


@pytest.mark.parametrize("size, message", [
    ({"train_size": 10**6}, r"train_size must be in 1\.\.40000 .*, got 1000000"),
    ({"val_size": 10_001}, r"val_size must be in 1\.\.10000 "),
    ({"test_size": 10_001}, r"test_size must be in 1\.\.10000 "),
])
def test_subset_larger_than_its_split_is_refused_before_any_record(size, message, cifar10_dir, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        run(output_dir=str(out), data_dir=cifar10_dir, **size)
    assert not out.exists()


REPO = Path(__file__).resolve().parents[1]


def test_default_sigma0_is_table1s_selection_in_the_setting_of_the_defaults():
    # figures/paper-t8: the paper profile at T = 8 without augmentation, as Params() is
    defaults = Params()
    assert (defaults.num_steps, defaults.augment, defaults.epochs, defaults.train_size) == (8, "none", 20, 0)
    with open(REPO / "figures" / "paper-t8" / "table1.csv") as f:
        table = {row["schedule"]: float(row["sigma0"].strip("[]")) for row in csv.DictReader(f)}
    assert DEFAULT_SIGMA0 == table
    assert Params().init_gain == 3.0  # the profiles' init: lif2-lif4 fire from the start
    with pytest.raises(ValueError, match="schedule 'upper_bound' has no default sigma0; give one"):
        Params(schedule="upper_bound").check()


def test_run_without_sigma0_uses_the_schedules_default(cifar10_dir, cache_dir, tmp_path):
    rec = run(schedule="quadratic", data_dir=cifar10_dir, cache_dir=cache_dir, output_dir=str(tmp_path / "q"),
              **{**TINY, "epochs": 1})
    assert rec["params"]["sigma0"] == 2e-5 and rec["params"]["init_gain"] == 3.0
    assert rec["epochs"][0]["sparsity_weight"] == pytest.approx(2e-5)  # quadratic at n = N = 1: sigma0


@pytest.mark.parametrize("name", ["smoke", "quick", "paper", "ablations", "ablations-quick"])
def test_every_profile_sets_init_gain_so_new_defaults_leave_its_runs_unchanged(name):
    import yaml

    profile = yaml.safe_load((REPO / "params" / f"{name}.yaml").read_text())
    assert "init_gain" in profile.get("base", profile)


def test_crop_flip_augments_training_batches_only(cifar10_dir, cache_dir, tmp_path, monkeypatch):
    calls = []
    real = data.augment

    def spy(images, kind, generator, **kw):
        calls.append((len(images), kind))
        return real(images, kind, generator, **kw)

    monkeypatch.setattr(data, "augment", spy)
    common = dict(SMALL, epochs=1, train_size=200, batch_size=64, data_dir=cifar10_dir, cache_dir=cache_dir)
    plain = run(output_dir=str(tmp_path / "none"), **common)
    assert calls == [(64, "none"), (64, "none"), (64, "none"), (8, "none")]  # 200 training images, nothing else
    calls.clear()
    aug = run(output_dir=str(tmp_path / "aug"), augment="crop_flip", **common)
    assert calls == [(64, "crop_flip"), (64, "crop_flip"), (64, "crop_flip"), (8, "crop_flip")]
    assert aug["params"]["augment"] == "crop_flip"
    assert aug["epochs"][0]["train_loss"] != plain["epochs"][0]["train_loss"]


@pytest.mark.parametrize("stop, epochs", [(True, 5), (False, 5), (True, 3)])
def test_a_run_silent_on_validation_two_epochs_running_stops_as_collapsed(stop, epochs, cifar10_dir, cache_dir,
                                                                         tmp_path, monkeypatch):
    # validation as lib.train computes it, except lif3 reported silent from epoch 2 on
    real, calls = evaluate_module.evaluate_splits, []

    def evaluate_splits(model, splits, batch_size):
        calls.append(1)
        val, test = real(model, splits, batch_size)
        if len(calls) >= 2:
            val["spikes_per_layer"][2] = 0.0
        return [val, test]

    monkeypatch.setattr(train_module, "evaluate_splits", evaluate_splits)
    out = tmp_path / "run"
    rec = run(**{**SMALL, "epochs": epochs, "train_size": 128, "val_size": 64, "test_size": 64}, stop_collapsed=stop,
              data_dir=cifar10_dir, cache_dir=cache_dir, output_dir=str(out))
    if stop and epochs > 3:  # silent in epochs 2 and 3: stopped after epoch 3
        assert rec["status"] == "collapsed" and len(rec["epochs"]) == 3
        assert rec["reason"] == "collapsed: a hidden layer silent on validation in epochs 2 and 3 (lif3 in epoch 3)"
        assert record.load(out / "record.json", complete=True)["status"] == "collapsed"
        with pytest.raises(FileExistsError, match="is a collapsed run; it is never overwritten"):
            run(output_dir=str(out), data_dir=cifar10_dir)
    else:  # not stopping, or nothing left to skip: the run is complete
        assert rec["status"] == "complete" and len(rec["epochs"]) == epochs


def test_collapsed_needs_two_silent_rows_in_a_row():
    quiet, loud = {"val_spikes_per_layer": [5.0, 1.0, 0.0, 2.0]}, {"val_spikes_per_layer": [5.0, 1.0, 0.5, 2.0]}
    assert not train_module.collapsed([quiet])
    assert not train_module.collapsed([quiet, loud])
    assert not train_module.collapsed([loud, quiet])
    assert train_module.collapsed([loud, quiet, {"val_spikes_per_layer": [0.0, 0.0, 0.0, 0.0]}])


def test_evaluate_splits_equals_per_sample_float64_sums_of_the_autograd_forward():
    # the oracle: every sample's counts from the training-mode graph, summed in float64 one by one
    torch.manual_seed(0)
    model = initial_network(Params(num_steps=6)).eval()
    fanout = energy.fanouts(model)
    split = data.Split(torch.randn(37, 3, 32, 32), torch.randint(0, 10, (37,)))
    logits, counts = model.activity(split.images)
    want_spikes = [sum(float(c[b].detach().double().sum()) for b in range(37)) / 37 for c in counts]
    want_synops = [sum(float((c[b].detach().double() * f.double()).sum()) for b in range(37)) / 37
                   for c, f in zip(counts, fanout, strict=True)]
    got = evaluate_splits(model, [split, data.Split(split.images[:5], split.labels[:5])], 10)
    assert got[0]["spikes_per_layer"] == want_spikes and got[0]["synops_per_layer"] == want_synops
    assert got[0]["accuracy"] == (logits.argmax(1) == split.labels).sum().item() / 37
    assert got[1] == evaluate(model, data.Split(split.images[:5], split.labels[:5]), 3)


def test_cosine_lr_by_hand():
    p = Params(lr=0.1, epochs=2, lr_schedule="cosine")
    lr = [train_module.lr_at(p, epoch, b, 4) for epoch in (1, 2) for b in range(4)]  # t = 0..7 of 8
    assert lr == pytest.approx([0.1 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)])
    assert lr[0] == 0.1 and lr[4] == pytest.approx(0.05) and 0 < lr[-1] < 0.004
    assert all(a > b for a, b in zip(lr, lr[1:], strict=False))
    assert train_module.lr_at(Params(lr=0.1, epochs=2), 2, 3, 4) == 0.1  # constant


def test_cosine_lr_reaches_the_optimiser_every_batch(cifar10_dir, cache_dir, tmp_path, monkeypatch):
    seen = []
    real = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    common = dict(SMALL, epochs=2, train_size=128, batch_size=64, lr=0.002, data_dir=cifar10_dir, cache_dir=cache_dir)
    plain = run(output_dir=str(tmp_path / "constant"), **common)
    assert seen == [0.002] * 4
    seen.clear()
    cosine = run(output_dir=str(tmp_path / "cosine"), lr_schedule="cosine", **common)
    assert seen == pytest.approx([0.002 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)])
    assert cosine["params"]["lr_schedule"] == "cosine"
    # the first batch is the same step: the runs part only from the second batch on
    assert cosine["epochs"][1]["train_loss"] != plain["epochs"][1]["train_loss"]


# Poisson input and crop_flip draw from both random streams (torch's and the batch generator),
# three epochs so that Adam's moments carry over the interruption.
RESUMED = {**TINY, "epochs": 3, "encoding": "poisson", "augment": "crop_flip", "schedule": "linear", "sigma0": 1e-6}
TIMES = ("seconds", "train_seconds")


def interrupt(monkeypatch, at: int):
    """Make `train_epoch` crash at epoch `at` (a stand-in for a kill); undo with monkeypatch.undo()."""
    real = train_module.train_epoch

    def crash(model, optimiser, split, params, epoch, generator):
        if epoch == at:
            raise KeyboardInterrupt
        return real(model, optimiser, split, params, epoch, generator)

    monkeypatch.setattr(train_module, "train_epoch", crash)


@pytest.fixture(scope="module")
def whole_and_interrupted(cifar10_dir, cache_dir, tmp_path_factory):
    """An uninterrupted run of RESUMED, and the folder of one that crashed in its third epoch."""
    where = dict(data_dir=cifar10_dir, cache_dir=cache_dir)
    whole = run(output_dir=str(tmp_path_factory.mktemp("whole") / "run"), **RESUMED, **where)
    cut = tmp_path_factory.mktemp("cut") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        interrupt(monkeypatch, at=3)
        with pytest.raises(KeyboardInterrupt):
            run(output_dir=str(cut), **RESUMED, **where)
    return whole, cut


def copy_of(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / "run"))


@pytest.mark.parametrize("status", ["failed", "running"])  # a crash, and a kill that left no word
def test_an_interrupted_run_resumes_with_the_numbers_of_an_uninterrupted_one(
        status, whole_and_interrupted, cifar10_dir, cache_dir, tmp_path):
    whole, cut = whole_and_interrupted
    out = copy_of(cut, tmp_path)
    left = record.load(out / "record.json")
    assert (left["status"], len(left["epochs"])) == ("failed", 2) and (out / checkpoints.RESUME).is_file()
    if status == "running":
        record.write(out / "record.json", {**left, "status": "running", "reason": None})
    resumed = run(output_dir=str(out), data_dir=cifar10_dir, cache_dir=cache_dir, **RESUMED)
    assert resumed["status"] == "complete"
    assert [r["after_epoch"] for r in resumed["resumed"]] == [2] and resumed["started"] == left["started"]
    strip = [{k: v for k, v in row.items() if k not in TIMES} for row in resumed["epochs"]]
    assert strip == [{k: v for k, v in row.items() if k not in TIMES} for row in whole["epochs"]]
    assert resumed["epochs"][:2] == left["epochs"]  # the first attempt's rows are kept as they were
    assert resumed["wall_seconds"] > left["wall_seconds"]
    assert not (out / checkpoints.RESUME).exists()  # removed once the run is complete
    final = torch.load(out / "checkpoints" / "epoch-003.pt")
    whole_dir = Path(whole["params"]["output_dir"])
    assert all(torch.equal(final[k], v) for k, v in torch.load(whole_dir / "checkpoints" / "epoch-003.pt").items())


def test_the_interrupted_run_is_resumable_from_anywhere_but_another_machine(whole_and_interrupted, tmp_path):
    _, cut = whole_and_interrupted
    out = copy_of(cut, tmp_path)
    rec = record.load(out / "record.json")
    moved = Params.from_dict({**RESUMED, "output_dir": "elsewhere", "progress": True, "data_dir": "/d"})
    found = checkpoints.resumable(out, moved, rec["machine"])  # RESUME_MAY_DIFFER may differ
    assert found is not None and found.state["epoch"] == 2 and found.record["epochs"] == rec["epochs"]
    assert checkpoints.resumable(out, moved, {**rec["machine"], "cpu_capability": "other"}) is None


@pytest.mark.parametrize("change", [
    lambda out, rec: {**RESUMED, "lr": 2e-3},  # other parameters
    lambda out, rec: {**RESUMED, "threads": 2},  # other threads (numbers may differ)
    lambda out, rec: {**RESUMED, "epochs": 4},  # another plan (the schedules depend on N)
    lambda out, rec: record.write(out / "record.json", {**rec, "reason": "diverged: loss is nan at epoch 3"}),
    lambda out, rec: record.write(out / "record.json", {**rec, "status": "complete"}),
    lambda out, rec: (out / checkpoints.RESUME).unlink(),
    lambda out, rec: (out / checkpoints.RESUME).write_bytes(b"junk"),
    lambda out, rec: (out / "checkpoints" / "epoch-002.pt").unlink(),
    lambda out, rec: record.write(out / "record.json", {**rec, "epochs": rec["epochs"][:1]}),  # state 1 ahead
], ids=["params", "threads", "epochs", "diverged", "finished", "no-state", "junk-state", "no-weights", "state-ahead"])
def test_anything_but_the_same_interrupted_run_starts_over(change, whole_and_interrupted, tmp_path):
    _, cut = whole_and_interrupted
    out = copy_of(cut, tmp_path)
    rec = record.load(out / "record.json")
    params = change(out, rec)  # new parameters, or a change to the folder (the same parameters)
    params = params if isinstance(params, dict) else RESUMED
    assert checkpoints.resumable(out, Params.from_dict({**params, "output_dir": str(out)}), rec["machine"]) is None


def test_a_fresh_start_over_an_interrupted_attempt_drops_its_rows_and_weights(whole_and_interrupted, cifar10_dir,
                                                                                cache_dir, tmp_path):
    _, cut = whole_and_interrupted
    out = copy_of(cut, tmp_path)
    again = run(output_dir=str(out), data_dir=cifar10_dir, cache_dir=cache_dir, **{**RESUMED, "epochs": 1})
    assert [r["epoch"] for r in again["epochs"]] == [1] and "resumed" not in again
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-001.pt"]


def test_params_from_a_notebooks_namespace_refuse_an_injected_unknown_name():
    """papermill injects `-p NAME` values in a cell opening with "# Parameters": an unknown name there is
    refused (papermill itself only warns), a profile's own keys are not."""
    namespace = {"epochs": 3, "grid": {}, "In": ["x = 1", "# Parameters\nepochs = 3\ngrid = {}\n"]}
    assert Params.from_notebook(namespace).epochs == 3 and Params.from_notebook(namespace).changes() == {"epochs": 3}
    namespace["In"].append("# Parameters\nlerning_rate = 0.5\n")
    with pytest.raises(ValueError, match="unknown parameter\\(s\\) lerning_rate; valid: schedule, sigma0"):
        Params.from_notebook(namespace)
    with pytest.raises(ValueError, match="epochs must be an integer"):
        Params.from_notebook({"epochs": 0})
