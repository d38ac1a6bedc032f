"""Profiles: validation with errors that name the key, grid expansion, factors, run states,
locks, and the one collector."""

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import factories
import pandas as pd
import pytest
import yaml
from factories import epoch_row

from lib import record, schedules, sweep
from lib.params import Params
from lib.sweep import cli, profiles

GRID = {"seeds": [0], "sigma0": {"baseline": [], "linear": [3e-6, 1e-6]}}
REPO = Path(__file__).resolve().parents[1]
BASELINE_PARAMS = {"schedule": "baseline", "sigma0": 0.0, "seed": 0}  # as lib.train records the baseline


def complete_record(params):
    """A complete record of `params` (one row per planned epoch)."""
    n = params.get("epochs", Params().epochs)  # a parameter left out is recorded as its default
    return {"status": "complete", "params": {"epochs": n, **params}, "epochs": [{"epoch": i + 1} for i in range(n)]}


def test_shipped_profiles_are_valid_and_cover_every_schedule():
    for name in ("smoke", "quick", "paper"):
        profile = profiles.load_profile(name)
        assert {r.schedule for r in profile.runs} >= set(schedules.SCHEDULES), name
    # the smoke profile runs the regulariser baselines too, so they go through the whole pipeline
    assert {r.schedule for r in profiles.load_profile("smoke").runs} == set(schedules.NAMES)
    quick, fine = profiles.load_profile("quick"), profiles.load_profile("quick-fine")
    assert len(quick.runs) == 16 * 3 and quick.params == fine.params and quick.params["epochs"] == 10
    # quick-fine: 1 baseline + 5 schedules x 7 sigma0 (quick's 2x grid and its sqrt(2) neighbours) per seed,
    # and every run of quick among them, same id and parameters, so quick's records serve it
    assert len(fine.runs) == 36 * 3 and {r.id for r in quick.runs} <= {r.id for r in fine.runs}
    for schedule in ("constant", "linear"):
        values = sorted({r.sigma0 for r in fine.runs if r.schedule == schedule})
        assert max(b / a for a, b in zip(values, values[1:], strict=False)) < 1.42  # steps of at most sqrt 2
    # the paper profile: baseline + at least 6 sigma0 per schedule (a second stage adds some), every
    # grid in steps of at most sqrt 2, every run on every seed
    paper = profiles.load_profile("paper")
    sigma0 = 0
    for schedule in set(schedules.SCHEDULES) - {"baseline"}:
        values = sorted({r.sigma0 for r in paper.runs if r.schedule == schedule})
        assert len(values) >= 6 and max(b / a for a, b in zip(values, values[1:], strict=False)) < 1.42, schedule
        sigma0 += len(values)
    assert len(paper.runs) == (1 + sigma0) * len({r.seed for r in paper.runs})


def test_the_held_out_profile_trains_our_rules_choices_at_the_paper_setting():
    """params/paper-heldout.yaml: the paper profile's run parameters, fresh seeds, and per schedule the
    sigma0 of figures/paper's table1_robust and table2_robust, read from the CSVs (not copied)."""
    heldout, paper = profiles.load_profile("paper-heldout"), profiles.load_profile("paper")
    assert heldout.params == paper.params
    seeds = {r.seed for r in heldout.runs}
    assert seeds == {2, 3, 4} and not seeds & {r.seed for r in paper.runs}
    for table in ("table1_robust", "table2_robust"):
        frame = pd.read_csv(REPO / "figures/paper" / f"{table}.csv")
        for _, row in frame[frame["schedule"] != "baseline"].iterrows():
            sigma0 = ast.literal_eval(row["sigma0"])[0]
            assert {r.seed for r in heldout.runs if (r.schedule, r.sigma0) == (row["schedule"], sigma0)} == {2, 3, 4}
    per_seed = [r for r in heldout.runs if r.seed == 2]
    assert len(per_seed) <= 11 and sum(r.schedule == "baseline" for r in per_seed) == 1
    assert {r.sigma0 for r in heldout.runs} <= {r.sigma0 for r in paper.runs}  # only points of the searched grid


def test_the_final_profile_retrains_the_same_choices_without_a_validation_split():
    """params/paper-final.yaml: the paper profile's setting but val_fraction 0 (all 50,000 images) and
    no collapse stop (it watches validation); the held-out profile's choices, on seeds 0 and 1."""
    final, paper = profiles.load_profile("paper-final"), profiles.load_profile("paper")
    heldout = profiles.load_profile("paper-heldout")
    assert {k: v for k, v in final.params.items() if k not in ("val_fraction", "stop_collapsed")} == paper.params
    assert final.params["val_fraction"] == 0 and final.params["stop_collapsed"] is False
    assert final.chosen == "figures/paper" and {r.seed for r in final.runs} == {0, 1}
    assert {(r.schedule, r.sigma0) for r in final.runs} == {(r.schedule, r.sigma0) for r in heldout.runs}


def test_a_chosen_grid_reads_the_tables_and_refuses_what_it_cannot_read(tmp_path):
    header = "schedule,seeds,sigma0,epoch\n"
    (tmp_path / "table1_robust.csv").write_text(header + 'baseline,2,"[0.0, 0.0]","[5, 5]"\n'
                                                'linear,2,"[0.0002, 0.0002]","[9, 9]"\n')
    (tmp_path / "table2_robust.csv").write_text(header + 'linear,2,"[0.0004, 0.0004]","[9, 9]"\n'
                                                'constant,0,[],[]\n')
    profile = profiles.parse_profile("p", {"grid": {"seeds": [7], "chosen": str(tmp_path)}})
    assert [r.id for r in profile.runs] == ["baseline-seed7", "linear-s0.0002-seed7", "linear-s0.0004-seed7"]
    with pytest.raises(ValueError, match="not both"):
        profiles.parse_profile("p", {"grid": {"seeds": [0], "chosen": str(tmp_path), "sigma0": {"baseline": []}}})
    with pytest.raises(ValueError, match="no .*table1_robust.csv"):
        profiles.parse_profile("p", {"grid": {"seeds": [0], "chosen": str(tmp_path / "nonesuch")}})
    (tmp_path / "table2_robust.csv").write_text(header + 'linear,2,"[0.0004, 0.0002]","[9, 9]"\n')
    with pytest.raises(ValueError, match="several sigma0"):
        profiles.parse_profile("p", {"grid": {"seeds": [0], "chosen": str(tmp_path)}})


def test_regularisers_are_grid_names_like_the_schedules():
    grid = {"seeds": [0], "sigma0": {"baseline": [], "upper_bound": [1e-3], "synops": [5e-9], "layer_weighted": [1e-6]}}
    profile = profiles.parse_profile("p", {"grid": grid})
    assert [r.id for r in profile.runs] == [
        "baseline-seed0", "upper_bound-s0.001-seed0", "synops-s5e-09-seed0", "layer_weighted-s1e-06-seed0"]


def test_grid_expands_to_stable_readable_ids():
    profile = profiles.parse_profile("p", {"epochs": 3, "grid": {**GRID, "seeds": [0, 1]}})
    assert [r.id for r in profile.runs] == [
        "baseline-seed0", "baseline-seed1",
        "linear-s3e-06-seed0", "linear-s3e-06-seed1", "linear-s1e-06-seed0", "linear-s1e-06-seed1",
    ]
    assert profile.run("linear-s1e-06-seed1") == profiles.Run("linear", 1e-6, 1)
    assert profile.params == {"epochs": 3}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"epoch": 3, "grid": GRID}, r"unknown key\(s\) epoch; valid: factors, grid, resources, augment, batch_size"),
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
        ({"grid": GRID, "resources": 0.25}, "resources must be a mapping"),
        ({"grid": GRID, "resources": {"cpus_per_run": 2}}, r"cpus_per_run; valid: gpus_per_run \(CPUs.*threads"),
        ({"grid": GRID, "resources": {"gpus_per_run": -0.5}}, "gpus_per_run must be a number >= 0"),
        ({"grid": GRID, "resources": {"gpus_per_run": "1e-1"}}, "string to YAML"),
    ],
)
def test_bad_profiles_are_refused_naming_the_problem(values, message):
    with pytest.raises(ValueError, match=message):
        profiles.parse_profile("p", values)


def test_resources_are_profile_wide_and_not_run_parameters():
    profile = profiles.parse_profile("p", {"resources": {"gpus_per_run": 0.25}, "grid": GRID,
                                        "factors": {"num_steps": {"T16": {"num_steps": 16}}}})
    assert profile.resources == {"gpus_per_run": 0.25}
    assert all("resources" not in v.params for v in profile.variants)
    assert profiles.parse_profile("p", {"grid": GRID}).resources == {}
    with pytest.raises(ValueError, match="g.x: resources are the whole profile's"):
        profiles.parse_profile("p", {"grid": GRID, "factors": {"g": {"x": {"resources": {"gpus_per_run": 1}}}}})


def test_yaml_file_errors_and_cli_exit_code(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"epochs": 2, "num_step": 4, "grid": GRID}))
    with pytest.raises(ValueError, match="num_step"):
        profiles.load_profile(str(path))
    assert cli.main(["check", str(path)]) == 2
    assert "unknown key(s) num_step" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="available: .*smoke"):
        profiles.load_profile("nonesuch")


def test_threads_share_the_cores_among_jobs(monkeypatch, tmp_path):
    monkeypatch.setattr(sweep.os, "cpu_count", lambda: 8)
    profile = profiles.parse_profile("p", {"grid": GRID})
    run = profile.runs[1]
    assert sweep.run_params(profile, run, tmp_path, jobs=4)["threads"] == 2
    assert sweep.run_params(profile, run, tmp_path, jobs=16)["threads"] == 1
    fixed = profiles.parse_profile("p", {"threads": 3, "grid": GRID})
    assert sweep.run_params(fixed, run, tmp_path, jobs=4)["threads"] == 3
    params = sweep.run_params(profile, run, tmp_path)
    assert (params["schedule"], params["sigma0"], params["seed"]) == ("linear", 3e-6, 0)
    assert params["output_dir"].endswith("p/linear-s3e-06-seed0/partial")
    assert sweep.jobs_from_make(" -j2 --jobserver-auth=3,4") == 2
    assert sweep.jobs_from_make("k -j12") == 12 and sweep.jobs_from_make("") == 1


def test_states_and_report(tmp_path):
    profile = profiles.parse_profile("p", {"grid": GRID})
    base, s3, s1 = profile.runs
    folder = lambda r: sweep.run_dir(profile, r, tmp_path)  # noqa: E731
    (folder(base)).mkdir(parents=True)
    (folder(base) / "record.json").write_text(json.dumps(complete_record(BASELINE_PARAMS)))
    (folder(s3) / "partial").mkdir(parents=True)
    failed = {"status": "failed", "reason": "DataNotFoundError: no CIFAR-10", "params": {}, "epochs": []}
    (folder(s3) / "partial" / "record.json").write_text(json.dumps(failed))
    (folder(s3) / "partial" / "train.ipynb").write_text("{}")
    assert [sweep.state(profile, r, tmp_path) for r in profile.runs] == ["complete", "failed", "pending"]
    text, complete = sweep.report(sweep.collect(profile, tmp_path))
    assert not complete and "1 of 3 runs complete" in text
    notebook = folder(s3) / "partial" / "train.ipynb"
    assert f"failed     linear-s3e-06-seed0: DataNotFoundError: no CIFAR-10  (read {notebook})" in text
    assert "pending    linear-s1e-06-seed0" in text


def test_a_record_of_an_edited_profile_is_stale_and_pruned_aside(tmp_path):
    before = profiles.parse_profile("p", {"epochs": 3, "grid": GRID})
    base = before.runs[0]
    folder = sweep.run_dir(before, base, tmp_path)
    folder.mkdir(parents=True)
    # threads and output_dir differ between machines and runs without changing the numbers
    recorded = {**BASELINE_PARAMS, "epochs": 3, "threads": 7, "output_dir": "/elsewhere"}
    (folder / "record.json").write_text(json.dumps(complete_record(recorded)))
    assert sweep.state(before, base, tmp_path) == "complete"
    assert sweep.prune(before, tmp_path) == []

    after = profiles.parse_profile("p", {"epochs": 3, "init_gain": 2.0, "grid": GRID})  # edited since
    assert sweep.stale_keys(after, base, {"params": recorded}) == ["init_gain"]
    assert sweep.state(after, base, tmp_path) == "stale"
    moved = [path for _, _, path in sweep.prune(after, tmp_path)]
    assert moved == [tmp_path / "p" / ".stale" / "baseline-seed0"]
    assert (moved[0] / "record.json").is_file()  # nothing computed is lost
    assert sweep.state(after, base, tmp_path) == "pending"


def test_refine_prints_the_next_stage_as_a_grid_that_loads(tmp_path, capsys):
    grid = {"seeds": [0], "sigma0": {"baseline": [], "linear": [1e-6, 3e-6], "constant": [2e-6]}}
    profile = profiles.parse_profile("p", {"epochs": 2, "grid": grid})

    def write(run, accuracies, spikes):
        metrics = {"test_accuracy": 0.5, "test_spikes": 1.0, "val_synops": 1.0, "test_synops": 1.0,
                   "test_energy_pj": 1.0, "val_spikes_per_layer": [1, 0, 0, 0],
                   "test_spikes_per_layer": [1, 0, 0, 0], "test_synops_per_layer": [1, 0, 0, 0]}
        rows = enumerate(zip(accuracies, spikes, strict=True), start=1)
        epochs = [epoch_row(n, a, s, **metrics) for n, (a, s) in rows]
        folder = sweep.run_dir(profile, run, tmp_path)
        folder.mkdir(parents=True)
        rec = factories.record(run.schedule, run.sigma0, epochs, run.seed, params={"epochs": 2})
        (folder / "record.json").write_text(json.dumps(rec))

    runs = {r.id: r for r in profile.runs}
    write(runs["baseline-seed0"], [0.5, 0.6], [100, 100])
    write(runs["linear-s1e-06-seed0"], [0.6, 0.6], [90, 80])  # Table 1's linear: 1e-6 (3e-6 loses accuracy)
    write(runs["linear-s3e-06-seed0"], [0.5, 0.55], [40, 30])
    # constant 2e-6 has no record yet: no choice, nothing proposed for it
    assert cli.main(["--results", str(tmp_path), "refine", str(_profile_file(tmp_path, grid))]) == 0
    out = capsys.readouterr().out
    assert "linear: [7.07e-7, 1.0e-6, 1.41e-6, 3.0e-6]  # new: 7.07e-7, 1.41e-6" in out and "constant" not in out
    pasted = yaml.safe_load("sigma0:\n" + "\n".join(line for line in out.splitlines() if not line.startswith("#")))
    assert pasted["sigma0"]["linear"] == [7.07e-7, 1e-6, 1.41e-6, 3e-6]  # floats, not strings, for YAML 1.1
    assert "within one point" not in out and "Table 1 choice" in out
    # Table 2 (>= 0.59) takes linear 1e-6 too: no more values; nothing to refine without records
    assert cli.refine(profile, tmp_path, tables=(1, 2)).count("new:") == 1
    assert "nothing to refine" in cli.refine(profile, tmp_path / "none")


def _profile_file(folder, grid):
    path = folder / "p.yaml"
    path.write_text(yaml.safe_dump({"epochs": 2, "grid": grid}))
    return path


FACTORED = {
    "epochs": 2, "spike_normalisation": "per_neuron_step",
    "grid": {"seeds": [0], "sigma0": {"baseline": [], "linear": [1.0, 3.0]}},
    "factors": {
        "surrogate": {"width3": {"surrogate_scale": 3.0}},
        "lr": {"lr3e-4": {"lr": 3e-4, "grid": {"seeds": [0], "sigma0": {"baseline": [], "constant": [0.1]}}}},
    },
}


def test_factors_expand_into_variants_with_their_own_baseline_and_folders(tmp_path):
    p = profiles.parse_profile("abl", FACTORED)
    assert [v.name for v in p.variants] == ["base", "surrogate-width3", "lr-lr3e-4"]
    assert [(v.factor, v.label) for v in p.variants] == [("base", "default"), ("surrogate", "width3"), ("lr", "lr3e-4")]
    assert p.variant("surrogate-width3").params == {"epochs": 2, "spike_normalisation": "per_neuron_step",
                                                    "surrogate_scale": 3.0}
    assert [r.id for r in p.runs] == [
        "base/baseline-seed0", "base/linear-s1-seed0", "base/linear-s3-seed0",
        "surrogate-width3/baseline-seed0", "surrogate-width3/linear-s1-seed0", "surrogate-width3/linear-s3-seed0",
        "lr-lr3e-4/baseline-seed0", "lr-lr3e-4/constant-s0.1-seed0"]
    run = p.run("lr-lr3e-4/constant-s0.1-seed0")
    assert sweep.run_dir(p, run, tmp_path) == tmp_path / "abl" / "lr-lr3e-4" / "constant-s0.1-seed0"
    assert sweep.run_params(p, run, tmp_path)["lr"] == 3e-4
    assert profiles.parse_profile("q", {**FACTORED, "factors": {}}).runs[0].id == "base/baseline-seed0"
    with pytest.raises(ValueError, match="factor 'a-b' must be a name"):
        profiles.parse_profile("abl", {**FACTORED, "factors": {"a-b": {"x": {}}}})
    with pytest.raises(ValueError, match="abl/lr-x.*unknown key.*learning_rate"):
        profiles.parse_profile("abl", {**FACTORED, "factors": {"lr": {"x": {"learning_rate": 0.1}}}})


def test_the_shipped_studies_keep_their_run_ids():
    p = profiles.load_profile("ablations")
    assert len(p.runs) == 80 and p.runs[0].id == "base/baseline-seed0"
    assert "combined-width3-gain3/linear-s30-seed0" in [r.id for r in p.runs]
    assert [r.id for r in profiles.load_profile("ablations-quick").runs] == [
        "base/baseline-seed0", "base/constant-s3-seed0", "base/constant-s6-seed0", "base/linear-s10-seed0"]


def test_yaml_errors_name_the_file_and_line_and_refuse_repeated_keys(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("epochs: 2\ngrid:\n  seeds: [0]\n  sigma0: {baseline: []}\ngrid:\n  seeds: [1]\n")
    with pytest.raises(ValueError, match=r"dup.yaml, line 5, column 1: repeated key 'grid'"):
        profiles.load_profile(str(path))
    path.write_text("epochs: 2\ngrid: [0\n")
    with pytest.raises(ValueError, match=r"dup.yaml, line 3"):
        profiles.load_profile(str(path))
    with pytest.raises(ValueError, match=r"'1.0e6' is a string to YAML; write its exponent with a sign"):
        profiles.parse_profile("p", {"lr": "1.0e6", "grid": GRID})


def test_unreadable_or_unfinished_records_are_named_and_moved_aside(tmp_path):
    profile = profiles.parse_profile("p", {"epochs": 2, "grid": GRID})
    base, s3, _ = profile.runs
    truncated = sweep.run_dir(profile, base, tmp_path) / "record.json"
    truncated.parent.mkdir(parents=True)
    truncated.write_text('{"status": "comp')
    unfinished = sweep.run_dir(profile, s3, tmp_path) / "record.json"  # placed by hand: 1 of 2 epochs
    unfinished.parent.mkdir(parents=True)
    unfinished.write_text(json.dumps({"status": "running", "params": {"epochs": 2}, "epochs": [{"epoch": 1}]}))
    assert [sweep.state(profile, r, tmp_path) for r in profile.runs] == ["unreadable", "unreadable", "pending"]
    assert sweep.collect(profile, tmp_path).records == []
    moved = sweep.prune(profile, tmp_path)
    assert [(what, path) for what, _, path in moved] == [
        ("unreadable", tmp_path / "p" / ".unreadable" / "baseline-seed0"),
        ("unreadable", tmp_path / "p" / ".unreadable" / "linear-s3e-06-seed0")]
    assert str(truncated) in moved[0][1] and "status is 'running'" in moved[1][1]
    assert [sweep.state(profile, r, tmp_path) for r in profile.runs] == ["pending"] * 3


def test_a_notebook_error_without_a_record_is_the_failure_shown(tmp_path):
    import nbformat

    profile = profiles.parse_profile("p", {"grid": GRID})
    partial = sweep.run_dir(profile, profile.runs[0], tmp_path) / "partial"
    partial.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "error", ename="DataNotFoundError", evalue="no CIFAR-10 directory given", traceback=[])])])
    nbformat.write(nb, partial / "train.ipynb")
    s = sweep.inspect(profile, profile.runs[0], tmp_path)
    assert (s.state, s.detail) == ("failed", "DataNotFoundError: no CIFAR-10 directory given")


HOLD = """
import sys, time
from pathlib import Path
from lib import sweep
with sweep.run_lock(Path(sys.argv[1])) as mine:
    print("held" if mine else "busy", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(folder, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(sweep.REPO)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_run_in_progress_is_skipped_by_a_second_sweep_and_a_dead_holder_blocks_nothing(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"epochs": 1, "grid": GRID}))
    profile = profiles.load_profile(str(path))
    run = profile.runs[0]
    folder = sweep.run_dir(profile, run, tmp_path)
    first = hold(folder, 60)  # a real second process holds the run
    try:
        assert sweep.state(profile, run, tmp_path) == "running"
        start = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "lib.sweep", "run", str(path), run.id, "--results",
                                 str(tmp_path)], capture_output=True, text=True, cwd=sweep.REPO,
                                env={**os.environ, "PYTHONPATH": str(sweep.REPO)})
        assert second.returncode == 0 and time.monotonic() - start < 30
        assert f"skipped p/{run.id}: in progress in another sweep" in second.stdout
    finally:
        first.kill()  # as kill -9: the kernel frees the lock of the dead process
        first.wait()
    assert sweep.state(profile, run, tmp_path) == "incomplete"
    hold(folder, 0).wait()  # the orphaned lock file blocks nobody
    killed = {"status": "running", "reason": None, "params": {**BASELINE_PARAMS, "epochs": 3},
              "epochs": [{"epoch": 1}, {"epoch": 2}]}  # as a killed lib.train.run leaves it
    record.write(folder / "partial" / "record.json", killed)
    s = sweep.inspect(profile, run, tmp_path)
    assert (s.state, s.detail) == ("incomplete", "interrupted after epoch 2 of 3")


def test_finish_moves_the_notebook_then_the_record_and_refuses_an_unfinished_one(tmp_path):
    profile = profiles.parse_profile("p", {"epochs": 2, "grid": GRID})
    run = profile.runs[0]
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "train.ipynb").write_text("{}")
    unfinished = {"status": "running", "params": {**BASELINE_PARAMS, "epochs": 2}, "epochs": [{"epoch": 1}]}
    with pytest.raises(sweep.RunFailed, match="run baseline-seed0 running"):
        sweep.finish(profile, run, tmp_path / "results", staged / "train.ipynb", unfinished)
    assert not (tmp_path / "results" / "p" / run.id / "record.json").exists()
    rec = complete_record({**BASELINE_PARAMS, "epochs": 2})
    path = sweep.finish(profile, run, tmp_path / "results", staged / "train.ipynb", rec)
    assert path == tmp_path / "results" / "p" / run.id / "record.json"
    assert (path.parent / "train.ipynb").is_file() and not (staged / "train.ipynb").exists()
    assert record.load(path, complete=True)["epochs"] == rec["epochs"]
    assert sweep.state(profile, run, tmp_path / "results") == "complete"


def test_check_without_data_names_the_variable_and_tables_of_no_runs_say_so(tmp_path, monkeypatch, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"epochs": 1, "grid": GRID}))
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    assert cli.main(["check", str(path), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "CIFAR10_DIR" in err and "cifar-10-batches-py" in err and "train/<class>" in err
    assert cli.main(["tables", str(path), "--results", str(tmp_path), "--figures", str(tmp_path / "f")]) == 0
    assert "no complete runs of profile p" in capsys.readouterr().out
    assert not (tmp_path / "f").exists()


def test_make_takes_a_profile_path_and_puts_its_runs_under_its_name(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"epochs": 1, "grid": GRID}))
    results = tmp_path / "results"
    make = ["make", "-C", str(sweep.REPO), "-n", "-o", ".venv/.installed", "runs", f"PROFILE={path}",
            f"RESULTS_DIR={results}"]
    out = subprocess.run(make, capture_output=True, text=True, check=True).stdout
    assert f"lib.sweep --results {results} run {path} baseline-seed0" in out
    assert "//" not in out.replace("://", "") and not (results / str(path).lstrip("/")).exists()


def test_the_benchmarks_quick4_profile_is_four_runs_of_quick():
    quick = profiles.load_profile("quick")
    four = profiles.load_profile(str(Path(__file__).resolve().parents[1] / "benchmarks" / "quick4.yaml"))
    assert four.params == quick.params
    assert {r.id for r in four.runs} < {r.id for r in quick.runs} and len(four.runs) == 4


def test_execute_keeps_an_interrupted_attempt_for_the_run_to_resume(tmp_path, monkeypatch):
    import papermill

    profile = profiles.parse_profile("p", {"grid": GRID})
    run = profile.runs[0]
    partial = sweep.run_dir(profile, run, tmp_path) / "partial"
    (partial / "checkpoints").mkdir(parents=True)
    (partial / "checkpoints" / "epoch-001.pt").write_bytes(b"weights")
    (partial / "record.json").write_text("{}")
    (partial / "train.ipynb").write_text("{}")  # the interrupted notebook: replaced
    (partial / "stray").mkdir()
    seen = []

    def papermill_stand_in(notebook, output, parameters, **kw):
        seen.extend(sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*")))
        assert parameters["output_dir"] == str(partial.resolve())  # lib.train.run looks there
        raise RuntimeError("stop here")

    monkeypatch.setattr(papermill, "execute_notebook", papermill_stand_in)
    with pytest.raises(sweep.RunFailed, match="stop here"):
        sweep.execute(profile, run, tmp_path)
    assert seen == [".lock", "checkpoints", "checkpoints/epoch-001.pt", "record.json"]
