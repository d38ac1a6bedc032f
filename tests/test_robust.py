"""The noise-stable selection (lib.analysis.robust) on hand-made records of two seeds, every number
worked out by hand in the comments; its stability against the paper's rule."""

import math

import factories
import pytest
from factories import epoch_row

from lib.analysis import robust, select

N_VAL = 5000  # per seed: two seeds hold 10,000 validation images, so at R = 0.5 the margin is
# sqrt(0.5 * 0.5 / 10,000) = 0.005 exactly; one seed alone: sqrt(R (1 - R) / 5,000)


def record(schedule, sigma0, seed, rows):
    """rows: (val_accuracy, val_spikes, test_accuracy, test_spikes) per epoch."""
    epochs = [
        epoch_row(n, va, vs, ta, ts, val_spikes_per_layer=[vs, 0], test_spikes_per_layer=[ts, 0], val_synops=vs,
                  test_synops=ts, test_synops_per_layer=[ts, 0], test_energy_pj=ts)
        for n, (va, vs, ta, ts) in enumerate(rows, start=1)
    ]
    return factories.record(schedule, sigma0, epochs, seed, run_id=f"{schedule}-{sigma0:g}-{seed}",
                            data={"train": 20000, "val": N_VAL, "test": 5000})


RECORDS = [
    # baseline validation means per epoch: 0.46, 0.50, 0.50 -> R = 0.50 (the paper's rule: 0.52 on
    # seed 0, 0.51 on seed 1); spikes means 305, 275, 255
    record("baseline", 0.0, 0, [(0.45, 300, 0.44, 290), (0.52, 280, 0.51, 270), (0.49, 250, 0.50, 240)]),
    record("baseline", 0.0, 1, [(0.47, 310, 0.46, 300), (0.48, 270, 0.49, 260), (0.51, 260, 0.50, 250)]),
    # constant means: 1e-6 (0.515, 195), (0.50, 155); 2e-6 (0.495, 105), (0.465, 65)
    record("constant", 1e-6, 0, [(0.515, 200, 0.51, 195), (0.50, 150, 0.49, 145)]),
    record("constant", 1e-6, 1, [(0.515, 190, 0.52, 185), (0.50, 160, 0.50, 155)]),
    record("constant", 2e-6, 0, [(0.49, 100, 0.50, 90), (0.46, 60, 0.45, 55)]),
    record("constant", 2e-6, 1, [(0.50, 110, 0.52, 100), (0.47, 70, 0.46, 65)]),
    # linear means: 1e-6 (0.515, 145); 2e-6 (0.485, 110)
    record("linear", 1e-6, 0, [(0.53, 150, 0.52, 140)]),
    record("linear", 1e-6, 1, [(0.50, 140, 0.50, 130)]),
    record("linear", 2e-6, 0, [(0.45, 100, 0.44, 95)]),
    record("linear", 2e-6, 1, [(0.52, 120, 0.51, 110)]),
]


def rows(frame, schedule):
    return frame[frame["schedule"] == schedule].sort_values("seed")


def test_reference_and_margin_by_hand():
    pts = robust.points(RECORDS)
    assert robust.reference(pts) == pytest.approx((0.50, 0.005))
    # one seed: its own best epoch, and the standard error of 5,000 images
    assert robust.reference(pts[pts["seed"] == 0]) == pytest.approx((0.52, math.sqrt(0.52 * 0.48 / 5000)))


def test_table1_on_the_mean_over_seeds_by_hand():
    t1 = robust.select_robust(robust.points(RECORDS), select.TOLERANCES["table1"])
    # candidates: mean validation accuracy >= 0.50 - 0.005 = 0.495
    base = rows(t1, "baseline")  # epochs 2 and 3 (0.50 each); epoch 3 has fewer spikes (255)
    assert list(base["epoch"]) == [3, 3] and list(base["test_spikes"]) == [240, 250]
    # constant 2e-6 epoch 1 sits exactly at 0.495 and has the fewest spikes (105); every seed reports it
    const = rows(t1, "constant")
    assert list(const["sigma0"]) == [2e-6, 2e-6] and list(const["epoch"]) == [1, 1]
    assert list(const["test_accuracy"]) == [0.50, 0.52] and list(const["test_spikes"]) == [90, 100]
    # linear 2e-6 (0.485) misses; 1e-6 (0.515) is selected
    assert list(rows(t1, "linear")["sigma0"]) == [1e-6, 1e-6]
    assert set(t1["reference"]) == {0.50} and t1["margin"].tolist() == pytest.approx([0.005] * 6)
    # the same table writer's summary: mean and sd over the two seeds at the common point
    summary = select.summarise(t1).set_index("schedule")
    assert summary.loc["constant", "test_accuracy_mean"] == pytest.approx(0.51)
    assert summary.loc["constant", "test_accuracy_std"] == pytest.approx(math.sqrt(2 * 0.01**2))
    # spike reduction per seed: 1 - 90/240 = 0.625, 1 - 100/250 = 0.6
    assert summary.loc["constant", "spike_reduction_mean"] == pytest.approx(0.6125)


def test_tolerance_widens_the_candidates():
    # 0.50 - 0.03 - 0.005 = 0.465: constant 2e-6 epoch 2 (0.465, 65 spikes) joins and wins
    t = robust.select_robust(robust.points(RECORDS), 0.03)
    assert list(rows(t, "constant")["epoch"]) == [2, 2]


def test_one_seed_is_the_papers_rule_lowered_by_one_standard_error():
    pts = robust.points(RECORDS)
    seed0 = pts[pts["seed"] == 0]
    paper = select.select(seed0, 0.0)
    mine = robust.select_robust(seed0, 0.0)
    # reference 0.52: the paper's rule finds no constant point (0.515 < 0.52); ours keeps
    # 0.515 >= 0.52 - sqrt(0.52 * 0.48 / 5000) = 0.5129
    assert rows(paper, "constant")["note"].iloc[0] == select.NO_POINT
    assert rows(mine, "constant")[["sigma0", "epoch"]].values.tolist() == [[1e-6, 1]]


def test_a_point_missing_in_one_seed_is_left_out():
    # an excellent sigma0 run on seed 0 only: its "mean" would be one seed's, against a two-seed reference
    extra = record("constant", 3e-6, 0, [(0.60, 10, 0.60, 10)])
    t1 = robust.select_robust(robust.points([*RECORDS, extra]), 0.0)
    assert list(rows(t1, "constant")["sigma0"]) == [2e-6, 2e-6]


def test_no_point_and_bad_input():
    pts = robust.points(RECORDS)
    strict = robust.select_robust(pts[pts["schedule"] != "baseline"], 0.0)
    assert set(strict["note"]) == {select.NO_BASELINE}
    with pytest.raises(ValueError, match="n_val"):
        robust.select_robust(select.points(RECORDS), 0.0)
    with pytest.raises(ValueError, match="validation size"):
        robust.points([{**RECORDS[0], "data": {}}])


def test_stability_paper_vs_ours_by_hand():
    pts = robust.points(RECORDS)
    table = robust.stability(pts, 0.0, robust.single_seeds([0, 1])).set_index(["rule", "schedule"])
    # paper: constant has no point on seed 0 (0.515 < 0.52), 1e-6 on seed 1 (0.515 >= 0.51): one change;
    # linear: 1e-6 on seed 0 (0.53 >= 0.52), 2e-6 on seed 1 (0.50 < 0.51 <= 0.52): one sigma0 change
    assert table.loc[("paper", "constant"), ["pairs", "point_changes", "sigma0_changes"]].tolist() == [1, 1, 0]
    assert table.loc[("paper", "linear"), ["pairs", "point_changes", "sigma0_changes"]].tolist() == [1, 0, 1]
    assert table.loc[("paper", "all"), "change_rate"] == 1.0
    # ours on one seed: constant 1e-6 on both (thresholds 0.5129 and 0.5029); linear still 1e-6 -> 2e-6
    assert table.loc[("robust", "constant"), ["point_changes", "sigma0_changes"]].tolist() == [0, 0]
    assert table.loc[("robust", "all"), ["pairs", "point_changes", "sigma0_changes", "change_rate"]].tolist() == [
        2, 0, 1, 0.5]


def test_draws():
    assert robust.single_seeds([2, 0, 1]) == [(0,), (1,), (2,)]
    assert robust.leave_one_out([2, 0, 1]) == [(1, 2), (0, 2), (0, 1)]
    pts = robust.points(RECORDS)
    with pytest.raises(ValueError, match="per seed"):
        robust.stability(pts, 0.0, [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="seeds without points"):
        robust.stability(pts, 0.0, [(0,), (7,)], rules=("robust",))
    with pytest.raises(ValueError, match="unknown rule"):
        robust.stability(pts, 0.0, [(0,), (1,)], rules=("mine",))
    # ours on the same two seeds twice: nothing changes
    same = robust.stability(pts, 0.0, [(0, 1), (0, 1)], rules=("robust",))
    assert same["change_rate"].tolist() == [0.0, 0.0, 0.0]


def test_caption_states_the_numbers():
    text = robust.caption(robust.select_robust(robust.points(RECORDS), 0.01), 0.01)
    # 0.50 - 0.01 - 0.005 = 0.485
    assert "reference 50.00 %" in text and "2 seeds" in text and "at or above 48.50 %" in text
    assert "margin 0.50 points" in text and text.startswith("Ours, not the paper's rule")


def test_the_confirmation_of_chosen_points_on_held_out_seeds_by_hand(tmp_path):
    """RECORDS as the held-out seeds of another sweep's choices: R = 0.50, margin 0.005, so Table 1's
    threshold is 0.495 and Table 2's 0.485; our rule's baseline row is epoch 3 in both (test spikes 240, 250)."""
    from lib.analysis import report

    header = ("schedule,seeds,sigma0,epoch,test_accuracy_mean,test_accuracy_std,spike_reduction_mean,"
              "spike_reduction_std\n")
    (tmp_path / "table1_robust.csv").write_text(header + 'baseline,2,"[0.0, 0.0]","[3, 3]",0.5,0.0,0.0,0.0\n'
                                                'constant,2,"[2e-06, 2e-06]","[1, 1]",0.6,0.01,0.7,0.02\n'
                                                'linear,2,"[2e-06, 2e-06]","[1, 1]",0.6,0.01,0.6,0.02\n'
                                                'quadratic,0,[],[],,,,\n')
    (tmp_path / "table2_robust.csv").write_text(header + 'linear,2,"[2e-06, 2e-06]","[1, 1]",0.6,0.01,0.6,0.02\n')
    frame = report.confirmation(RECORDS, tmp_path)
    assert list(zip(frame["table"], frame["schedule"], strict=True)) == [
        ("table1", "constant"), ("table1", "linear"), ("table2", "linear")]
    assert frame["reference"].tolist() == pytest.approx([0.50] * 3)
    assert frame["margin"].tolist() == pytest.approx([0.005] * 3)
    assert frame["threshold"].tolist() == pytest.approx([0.495, 0.495, 0.485])
    assert frame["val_accuracy_mean"].tolist() == pytest.approx([0.495, 0.485, 0.485])
    assert frame["holds"].tolist() == [True, False, True]  # 0.495 clears 0.495; 0.485 clears only 0.485
    # 1 - 90/240 = 0.625 and 1 - 100/250 = 0.6; 1 - 95/240 and 1 - 110/250
    assert frame["spike_reduction_mean"].tolist() == pytest.approx([0.6125, (1 - 95 / 240 + 1 - 110 / 250) / 2,
                                                                    (1 - 95 / 240 + 1 - 110 / 250) / 2])
    assert frame["seeds"].tolist() == ["0 1"] * 3 and frame["chosen_spike_reduction_mean"].tolist() == [0.7, 0.6, 0.6]
    # a held-out seed without the chosen run is left out of that row, and a row with no run has no verdict
    one_seed = report.confirmation([r for r in RECORDS if r["run_id"] != "linear-2e-06-1"], tmp_path)
    assert one_seed["seeds"].tolist() == ["0 1", "0", "0"]
    none = report.confirmation([r for r in RECORDS if not r["run_id"].startswith("linear-2e-06")], tmp_path)
    assert none["holds"].tolist() == [True, "", ""]
    # a run that collapsed (stopped silent) before the chosen epoch counts with its last, silent epoch
    (tmp_path / "table2_robust.csv").write_text(header + 'linear,2,"[2e-06, 2e-06]","[3, 3]",0.6,0.01,0.6,0.02\n')
    dead = [{**r, "epochs": [{**r["epochs"][0], "val_accuracy": 0.1, "val_spikes_per_layer": [5, 0]}]}
            if r["run_id"].startswith("linear-2e-06") else r for r in RECORDS]
    row = report.confirmation(dead, tmp_path).iloc[-1]
    assert row["collapsed_seeds"] == "0 1" and row["val_accuracy_mean"] == pytest.approx(0.1)
    assert row["holds"] != "" and not row["holds"]
    from lib.analysis import plots

    assert len(plots.confirmation(frame).axes) == 2
    # the README's held-out table, written from the CSV the tables step writes
    report.write_confirmation(frame, tmp_path)
    table = report.heldout_table(tmp_path).splitlines()
    assert table[0] == report.HELDOUT_BEGIN and table[-1] == report.HELDOUT_END
    assert "held out (seeds 0, 1)" in table[1] and "chosen on (2 seeds)" in table[1]
    constant, linear = table[3].split(" | "), table[4].split(" | ")
    assert constant[1:5] == ["2e-06, 1", "−70.0 ± 2.0 % at 60.00 %", "−61.3 ± 1.8 % at 51.00 %",
                             "yes (49.50 % ≥ 49.50 %)"]
    assert constant[5:] == ["no point", "", "", " |"] and linear[4] == "no (48.50 % < 49.50 %)"
    assert linear[8] == "yes (48.50 % ≥ 48.50 %) |"
    report.write_confirmation(report.confirmation(dead, tmp_path), tmp_path)
    assert "collapsed (2 of 2 seeds)" in report.heldout_table(tmp_path)


def test_final_tables_report_a_retrain_without_validation_at_the_chosen_points_by_hand(tmp_path):
    """val_fraction 0 records (no validation split) at figures/paper-like choices: nothing is
    selected, each choice is read at its epoch, and set beside the chosen sweep's numbers."""
    from lib.analysis import report

    def retrain(schedule, sigma0, seed, rows):
        rec = record(schedule, sigma0, seed, [(0.0, 0, ta, ts) for ta, ts in rows])
        for e in rec["epochs"]:
            e.update(val_accuracy=None, val_spikes=None, val_spikes_per_layer=None, val_synops=None)
        rec["params"]["val_fraction"] = 0.0
        return {**rec, "data": {"train": 50_000, "val": 0, "test": 10_000}}

    records = [retrain("baseline", 0.0, 0, [(0.50, 300), (0.60, 200)]),
               retrain("baseline", 0.0, 1, [(0.52, 320), (0.62, 220)]),
               retrain("linear", 2e-6, 0, [(0.55, 150), (0.58, 100)])]  # linear on seed 1: not run
    header = "schedule,seeds,sigma0,epoch,test_accuracy_mean,spike_reduction_mean\n"
    for name in ("table1_robust", "table2_robust"):
        (tmp_path / f"{name}.csv").write_text(header + 'baseline,2,"[0.0, 0.0]","[2, 2]",0.6,0.0\n'
                                              'linear,2,"[2e-06, 2e-06]","[2, 2]",0.55,0.4\n')
    table = report.final_tables(records, tmp_path)["table1"].set_index("schedule")
    assert table.loc["baseline", "test_accuracy_mean"] == pytest.approx(0.61) and table.loc["baseline", "seeds"] == 2
    assert table.loc["linear", "seeds"] == 1 and table.loc["linear", "test_accuracy_mean"] == pytest.approx(0.58)
    assert table.loc["linear", "spike_reduction_mean"] == pytest.approx(0.5)  # 1 - 100 / 200, seed 0's baseline row
    assert table.loc["linear", "notes"] == "no complete run at epoch 2"
    assert table.loc["linear", "test_accuracy_change"] == pytest.approx(0.03)
    assert table.loc["linear", "spike_reduction_change"] == pytest.approx(0.1)
    with pytest.raises(select.NoValidationError):
        robust.points(records)  # selecting on these records stays refused
