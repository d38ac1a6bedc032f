"""Profiles: validation with errors that name the key, grid expansion, run states."""

import json

import pytest
import yaml

from lib import sweep

GRID = {"seeds": [0], "sigma0": {"baseline": [], "linear": [3e-6, 1e-6]}}
BASELINE_PARAMS = {"schedule": "baseline", "sigma0": 0.0, "seed": 0}  # as lib.train records the baseline


def test_shipped_profiles_are_valid_and_cover_every_schedule():
    for name in ("smoke", "quick", "paper"):
        profile = sweep.load_profile(name)
        assert {r.schedule for r in profile.runs} >= set(sweep.schedules.SCHEDULES), name
    # the smoke profile runs the regulariser baselines too, so they go through the whole pipeline
    assert {r.schedule for r in sweep.load_profile("smoke").runs} == set(sweep.schedules.NAMES)
    quick = sweep.load_profile("quick")
    assert len(quick.runs) == 16 and quick.params["epochs"] == 10


def test_regularisers_are_grid_names_like_the_schedules():
    grid = {"seeds": [0], "sigma0": {"baseline": [], "upper_bound": [1e-3], "synops": [5e-9], "layer_weighted": [1e-6]}}
    profile = sweep.parse_profile("p", {"grid": grid})
    assert [r.id for r in profile.runs] == [
        "baseline-seed0", "upper_bound-s0.001-seed0", "synops-s5e-09-seed0", "layer_weighted-s1e-06-seed0"]


def test_grid_expands_to_stable_readable_ids():
    profile = sweep.parse_profile("p", {"epochs": 3, "grid": {**GRID, "seeds": [0, 1]}})
    assert [r.id for r in profile.runs] == [
        "baseline-seed0", "baseline-seed1",
        "linear-s3e-06-seed0", "linear-s3e-06-seed1", "linear-s1e-06-seed0", "linear-s1e-06-seed1",
    ]
    assert profile.run("linear-s1e-06-seed1") == sweep.Run("linear", 1e-6, 1)
    assert profile.params == {"epochs": 3}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epoch": 3, "grid": GRID}, r"unknown key\(s\) epoch; valid: grid, batch_size"),
        ({"schedule": "linear", "grid": GRID}, "schedule is set per run by the sweep"),
        ({"lr": "1e-3", "grid": GRID}, "lr: '1e-3' is a string to YAML; write it with a dot"),
        ({"epochs": 0, "grid": GRID}, "epochs must be an integer >= 1"),
        ({"epochs": 3}, "needs a grid"),
        ({"grid": {**GRID, "sigmas": {}}}, r"unknown grid key\(s\) sigmas"),
        ({"grid": {**GRID, "seeds": []}}, "grid.seeds must be a non-empty list"),
        ({"grid": {**GRID, "sigma0": {"linear": [1e-6]}}}, "include baseline"),
        ({"grid": {**GRID, "sigma0": {"baseline": [], "cosine": [1e-6]}}}, "unknown schedule 'cosine'"),
        ({"grid": {**GRID, "sigma0": {"baseline": [1e-6]}}}, "the baseline takes no sigma0"),
        ({"grid": {**GRID, "sigma0": {"baseline": [], "linear": []}}}, "non-empty list of sigma0"),
        ({"grid": {**GRID, "sigma0": {"baseline": [], "linear": ["1e-6"]}}}, "string to YAML"),
        ({"grid": {**GRID, "sigma0": {"baseline": [], "linear": [-1.0]}}}, "finite numbers > 0"),
        ({"grid": {**GRID, "sigma0": {"baseline": [], "linear": [1e-6, 1e-6]}}}, "repeated runs linear-s1e-06-seed0"),
    ],
)
def test_bad_profiles_are_refused_naming_the_problem(values, message):
    with pytest.raises(ValueError, match=message):
        sweep.parse_profile("p", values)


def test_yaml_file_errors_and_cli_exit_code(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"epochs": 2, "num_step": 4, "grid": GRID}))
    with pytest.raises(ValueError, match="num_step"):
        sweep.load_profile(str(path))
    assert sweep.main(["check", str(path)]) == 2
    assert "unknown key(s) num_step" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="available: .*smoke"):
        sweep.load_profile("nonesuch")


def test_threads_share_the_cores_among_jobs(monkeypatch, tmp_path):
    monkeypatch.setattr(sweep.os, "cpu_count", lambda: 8)
    profile = sweep.parse_profile("p", {"grid": GRID})
    run = profile.runs[1]
    assert sweep.run_params(profile, run, tmp_path, jobs=4)["threads"] == 2
    assert sweep.run_params(profile, run, tmp_path, jobs=16)["threads"] == 1
    fixed = sweep.parse_profile("p", {"threads": 3, "grid": GRID})
    assert sweep.run_params(fixed, run, tmp_path, jobs=4)["threads"] == 3
    params = sweep.run_params(profile, run, tmp_path)
    assert (params["schedule"], params["sigma0"], params["seed"]) == ("linear", 3e-6, 0)
    assert params["output_dir"].endswith("p/linear-s3e-06-seed0/partial")
    assert sweep.jobs_from_make(" -j2 --jobserver-auth=3,4") == 2
    assert sweep.jobs_from_make("k -j12") == 12 and sweep.jobs_from_make("") == 1


def test_states_and_report(tmp_path):
    profile = sweep.parse_profile("p", {"grid": GRID})
    base, s3, s1 = profile.runs
    folder = lambda r: sweep.run_dir(profile, r, tmp_path)  # noqa: E731
    (folder(base)).mkdir(parents=True)
    (folder(base) / "record.json").write_text(json.dumps({"status": "complete", "params": BASELINE_PARAMS}))
    (folder(s3) / "partial").mkdir(parents=True)
    (folder(s3) / "partial" / "record.json").write_text(json.dumps({"status": "failed"}))
    (folder(s3) / "partial" / "train.ipynb").write_text("{}")
    assert [sweep.state(profile, r, tmp_path) for r in profile.runs] == ["complete", "failed", "pending"]
    text, complete = sweep.report(profile, tmp_path)
    assert not complete and "1 of 3 runs complete" in text
    assert f"failed     linear-s3e-06-seed0  (read {folder(s3) / 'partial' / 'train.ipynb'})" in text
    assert "pending    linear-s1e-06-seed0" in text


def test_a_record_of_an_edited_profile_is_stale_and_pruned_aside(tmp_path):
    before = sweep.parse_profile("p", {"epochs": 3, "grid": GRID})
    base = before.runs[0]
    folder = sweep.run_dir(before, base, tmp_path)
    folder.mkdir(parents=True)
    # threads and output_dir differ between machines and runs without changing the numbers
    recorded = {**BASELINE_PARAMS, "epochs": 3, "threads": 7, "output_dir": "/elsewhere"}
    (folder / "record.json").write_text(json.dumps({"status": "complete", "params": recorded}))
    assert sweep.state(before, base, tmp_path) == "complete"
    assert sweep.prune(before, tmp_path) == []

    after = sweep.parse_profile("p", {"epochs": 3, "init_gain": 2.0, "grid": GRID})  # edited since
    assert sweep.stale_keys(after, base, {"params": recorded}) == ["init_gain"]
    assert sweep.state(after, base, tmp_path) == "stale"
    moved = sweep.prune(after, tmp_path)
    assert moved == [tmp_path / "p" / ".stale" / "baseline-seed0"]
    assert (moved[0] / "record.json").is_file()  # nothing computed is lost
    assert sweep.state(after, base, tmp_path) == "pending"
