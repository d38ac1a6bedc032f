"""The paper's selection rule on small hand-made records: Tables 1 and 2, ties, misses, seeds;
the validation Pareto fronts."""

import math
import re
from pathlib import Path

import factories
import pandas as pd
import pytest
from factories import epoch_row

from lib.analysis import report, select


def record(schedule, sigma0, rows, seed=0):
    """rows: (val_accuracy, val_spikes, test_accuracy, test_spikes) per epoch. Every spike is
    given 100 SynOps (test split: 50 in lif1, 75 in lif2, so 125 per spike) and 10 nJ in all."""
    epochs = [
        epoch_row(n, va, vs, ta, ts, val_spikes_per_layer=[vs / 2, vs / 4, vs / 8, vs / 8],
                  test_spikes_per_layer=[ts / 2, ts / 2, 0, 0], val_synops=100 * vs, test_synops=125 * ts,
                  test_synops_per_layer=[50 * ts, 75 * ts, 0, 0], test_energy_pj=1e4 * ts)
        for n, (va, vs, ta, ts) in enumerate(rows, start=1)
    ]
    return factories.record(schedule, sigma0, epochs, seed, run_id=f"{schedule}-{sigma0:g}-{seed}")


BASELINE = record("baseline", 0.0, [(0.50, 300, 0.5, 300), (0.60, 280, 0.6, 280), (0.595, 250, 0.59, 260)])
CONSTANT = [
    record("constant", 1e-6, [(0.60, 200, 0.61, 190), (0.61, 150, 0.62, 140)]),
    # the fewest *test* spikes are here, at epoch 2, below both thresholds: never selected
    record("constant", 2e-6, [(0.59, 100, 0.58, 90), (0.55, 50, 0.63, 10)]),
]


def pick(frame, schedule, seed=0):
    return frame[(frame["schedule"] == schedule) & (frame["seed"] == seed)].iloc[0]


def test_tables_1_and_2_by_hand():
    pts = select.points([BASELINE, *CONSTANT])
    t1 = select.select(pts, select.TOLERANCES["table1"])
    t2 = select.select(pts, select.TOLERANCES["table2"])
    assert list(t1["schedule"]) == ["baseline", "constant"]
    # reference 0.60 (baseline epoch 2); Table 1 keeps val accuracy >= 0.60
    b1, c1 = pick(t1, "baseline"), pick(t1, "constant")
    assert (b1["epoch"], b1["test_accuracy"], b1["test_spikes"], b1["reference"]) == (2, 0.6, 280, 0.6)
    assert (c1["sigma0"], c1["epoch"], c1["test_spikes"]) == (1e-6, 2, 140)
    # Table 2 keeps >= 0.59: the baseline's epoch 3 (0.595) and sigma0 2e-6 epoch 1 (exactly 0.59) join
    b2, c2 = pick(t2, "baseline"), pick(t2, "constant")
    assert (b2["epoch"], b2["test_spikes"]) == (3, 260)
    assert (c2["sigma0"], c2["epoch"], c2["test_accuracy"], c2["test_spikes"]) == (2e-6, 1, 0.58, 90)
    assert select.spike_reduction(t1).tolist() == pytest.approx([0.0, 1 - 140 / 280])


@pytest.mark.parametrize(
    "points, expected",  # (sigma0, epoch) that wins among equal validation spikes
    [
        # equal spikes: the higher validation accuracy wins
        ([(1e-6, [(0.60, 100), (0.62, 100)])], (1e-6, 2)),
        # equal spikes and accuracy: the smaller sigma0 wins, whatever the order
        ([(2e-6, [(0.61, 100)]), (1e-6, [(0.70, 500), (0.61, 100)])], (1e-6, 2)),
        # equal spikes, accuracy and sigma0 cannot happen twice in one run: the earlier epoch wins
        ([(1e-6, [(0.61, 100), (0.61, 100)])], (1e-6, 1)),
    ],
)
def test_ties_are_broken_deterministically(points, expected):
    runs = [record("linear", s, [(va, vs, 0.5, 1) for va, vs in rows]) for s, rows in points]
    chosen = pick(select.select(select.points([BASELINE, *runs]), 0.0), "linear")
    assert (chosen["sigma0"], chosen["epoch"]) == expected


def test_method_without_a_point_within_tolerance_says_so():
    low = record("quadratic", 1e-7, [(0.30, 10, 0.3, 10), (0.40, 5, 0.4, 5)])
    selected = select.select(select.points([BASELINE, low]), 0.01)
    row = pick(selected, "quadratic")
    assert row["note"] == select.NO_POINT and math.isnan(row["test_accuracy"])
    summary = select.summarise(selected)
    assert summary.set_index("schedule").loc["quadratic", "seeds"] == 0
    printable = report.table(summary, "table2").set_index("Loss function")
    assert printable.loc["C.E. + sigma_quadratic", "Note"] == select.NO_POINT
    assert printable.loc["C.E. + sigma_quadratic", "Test accuracy (%)"] == ""
    assert printable.loc["C.E. + sigma_quadratic", "Paper: epochs"] == "19"  # the paper's row stays beside it


def test_several_seeds_are_selected_per_seed_then_averaged():
    runs = [
        BASELINE,
        record("baseline", 0.0, [(0.55, 400, 0.56, 400)], seed=1),
        record("linear", 1e-6, [(0.60, 200, 0.62, 140)], seed=0),
        # below seed 0's reference, but seed 1 is judged against its own baseline (0.55)
        record("linear", 1e-6, [(0.56, 300, 0.58, 200)], seed=1),
    ]
    selected = select.select(select.points(runs), 0.0)
    assert list(zip(selected["schedule"], selected["seed"], strict=True)) == [
        ("baseline", 0), ("linear", 0), ("baseline", 1), ("linear", 1)]
    assert list(selected["note"]) == [""] * 4
    summary = select.summarise(selected).set_index("schedule")
    assert summary.loc["linear", "seeds"] == 2
    assert summary.loc["linear", "test_accuracy_mean"] == pytest.approx(0.60)
    assert summary.loc["linear", "test_accuracy_std"] == pytest.approx(math.sqrt(2) * 0.02)
    assert summary.loc["linear", "spike_reduction_mean"] == pytest.approx(((1 - 140 / 280) + (1 - 200 / 400)) / 2)
    assert summary.loc["linear", "test_synops_mean"] == 125 * 170
    assert summary.loc["linear", "test_synops_std"] == pytest.approx(125 * math.sqrt(2) * 30)
    row = report.table(summary.reset_index(), "table1").iloc[1]
    assert (row["Test accuracy (%)"], row["Seeds"]) == ("60.00 ± 2.83", "2")
    assert row["Avg. SynOps"] == "21,250 ± 5,303"  # 125 x (170 ± 42.4) spikes
    assert row["Energy (µJ)"] == "1.70 ± 0.42"  # 10 nJ per test spike


def test_summary_over_two_seeds_counts_only_the_selected_points():
    # seed 0: reference 0.60 (BASELINE epoch 2); seed 1: reference 0.55. linear misses in seed 1,
    # quadratic in seed 0: each is summarised over its one selected seed, the miss in `notes`
    runs = [
        BASELINE,
        record("linear", 1e-6, [(0.60, 200, 0.62, 140)]),
        record("quadratic", 1e-7, [(0.30, 10, 0.3, 10)]),
        record("baseline", 0.0, [(0.55, 400, 0.56, 400)], seed=1),
        record("linear", 1e-6, [(0.50, 300, 0.58, 200)], seed=1),
        record("quadratic", 1e-7, [(0.56, 100, 0.54, 50)], seed=1),
    ]
    summary = select.summarise(select.select(select.points(runs), 0.0))
    nan, r2 = math.nan, math.sqrt(2)

    def row(schedule, seeds, sigma0, epoch, acc, spikes, reduction, notes=""):
        # every spike is 125 SynOps and 10 nJ (`record`); (mean, sd) pairs
        return {"schedule": schedule, "seeds": seeds, "sigma0": sigma0, "epoch": epoch,
                "test_accuracy_mean": acc[0], "test_accuracy_std": acc[1],
                "test_spikes_mean": spikes[0], "test_spikes_std": spikes[1],
                "spike_reduction_mean": reduction[0], "spike_reduction_std": reduction[1],
                "test_synops_mean": 125 * spikes[0], "test_synops_std": 125 * spikes[1],
                "test_energy_pj_mean": 1e4 * spikes[0], "test_energy_pj_std": 1e4 * spikes[1], "notes": notes}

    expected = pd.DataFrame([
        # test accuracy 0.60 and 0.56, spikes 280 and 400: sd = |a - b| / sqrt(2)
        row("baseline", 2, [0.0, 0.0], [2, 1], (0.58, 0.04 / r2), (340.0, 120 / r2), (0.0, 0.0)),
        row("linear", 1, [1e-6], [1], (0.62, nan), (140.0, nan), (1 - 140 / 280, nan), select.NO_POINT),
        row("quadratic", 1, [1e-7], [1], (0.54, nan), (50.0, nan), (1 - 50 / 400, nan), select.NO_POINT),
    ])
    pd.testing.assert_frame_equal(summary, expected, check_exact=False, rtol=1e-12)


def test_a_seed_without_baseline_is_noted():
    selected = select.select(select.points([BASELINE, record("linear", 1e-6, [(0.6, 1, 0.6, 1)], seed=3)]), 0.0)
    assert pick(selected, "linear", seed=3)["note"] == select.NO_BASELINE


def test_collapsed_runs_are_listed_with_the_epoch_they_went_silent():
    dead = record("constant", 1e-5, [(0.3, 20, 0.3, 20), (0.1, 0, 0.1, 0), (0.1, 0, 0.1, 0)])
    found = select.collapsed(select.points([BASELINE, dead, *CONSTANT]))
    assert found[["run_id", "silent_from_epoch"]].values.tolist() == [[dead["run_id"], 2]]


def test_collapsed_runs_come_in_one_order_whatever_else_the_records_hold():
    dead = [record(schedule, sigma0, [(0.3, 20, 0.3, 20), (0.1, 0, 0.1, 0)], seed=seed)
            for schedule, sigma0, seed in [("linear", 2e-4, 1), ("constant", 4e-4, 0), ("constant", 2e-4, 1),
                                           ("constant", 2e-4, 0)]]
    alive = [record("quadratic", 1e-5 * (i + 1), [(0.3, 20, 0.3, 20), (0.3, 10, 0.3, 10)]) for i in range(40)]
    expected = [("constant", 2e-4, 0), ("constant", 2e-4, 1), ("constant", 4e-4, 0), ("linear", 2e-4, 1)]
    for records in ([BASELINE, *dead], [*alive, BASELINE, *dead[::-1]], [*dead[1:], *alive, dead[0], *CONSTANT]):
        found = select.collapsed(select.points(records))
        assert list(found[["schedule", "sigma0", "seed"]].itertuples(index=False, name=None)) == expected


def test_one_silent_layer_is_a_collapse_even_while_the_first_still_fires():
    # as a real quick run did: lif1 kept a trace of spikes (0.007 per image), lif2-lif4 none, chance accuracy
    dead = record("constant", 1e-4, [(0.3, 40, 0.3, 40), (0.1, 8, 0.1, 8), (0.1, 4, 0.1, 4)])
    for e in dead["epochs"][1:]:
        e["val_spikes_per_layer"] = [e["val_spikes"], 0.0, 0.0, 0.0]
    recovered = record("linear", 1e-5, [(0.3, 40, 0.3, 40), (0.3, 8, 0.3, 8), (0.4, 30, 0.4, 30)])
    recovered["epochs"][1]["val_spikes_per_layer"] = [8, 0.0, 0.0, 0.0]  # silent in epoch 2, firing again after
    found = select.collapsed(select.points([BASELINE, dead, recovered, *CONSTANT]))
    assert found[["run_id", "silent_from_epoch", "val_spikes"]].values.tolist() == [[dead["run_id"], 2, 4]]


def test_per_layer_and_markdown():
    selected = select.select(select.points([BASELINE, *CONSTANT]), 0.0)
    assert select.per_layer(selected) == {"baseline": [140, 140, 0, 0], "constant": [70, 70, 0, 0]}
    assert select.per_layer(selected, "test_synops_per_layer")["constant"] == [7000, 10500, 0, 0]
    assert all(math.isnan(v) for v in select.per_layer(selected, stat="std")["constant"])  # one seed
    md = report.markdown(pd.DataFrame({"a": ["x|y"], "b": [1]}))
    assert md == "| a | b |\n| --- | --- |\n| x\\|y | 1 |\n"


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].glob("figures/*/*table*.md")), ids=str)
def test_markdown_rebuilds_the_committed_tables_byte_for_byte(path):
    # the reason report.markdown is ours, not DataFrame.to_markdown (which pads cells)
    text = path.read_text()
    body = text if text.startswith("|") else text.split("\n\n", 1)[1]  # tables 1 and 2 open with a caption
    header, _, *rows = [re.split(r" (?<!\\)\| ", line[2:-2]) for line in body.splitlines()]
    frame = pd.DataFrame([[c.replace("\\|", "|") for c in row] for row in rows], columns=header)
    assert report.markdown(frame) == body


def test_pareto_front_by_hand():
    # (val_accuracy, val_spikes) per epoch; test numbers are carried along, never looked at
    runs = [
        BASELINE,  # (0.50, 300) (0.60, 280) (0.595, 250): 0.50 @ 300 is beaten by 0.60 @ 280
        record("linear", 1e-6, [(0.60, 200, 0.1, 1), (0.61, 150, 0.2, 2), (0.58, 150, 0.3, 3)]),
        record("linear", 2e-6, [(0.55, 100, 0.4, 4), (0.61, 150, 0.5, 5), (0.40, 120, 0.6, 6)]),
        record("linear", 1e-6, [(0.30, 10, 0.7, 7)], seed=1),  # another seed: its own front
    ]
    front = select.pareto_front(select.points(runs))
    got = [(r.schedule, r.seed, r.sigma0, r.epoch, r.val_accuracy, r.val_spikes) for r in front.itertuples()]
    assert got == [
        ("baseline", 0, 0.0, 3, 0.595, 250), ("baseline", 0, 0.0, 2, 0.60, 280),
        # 0.61 @ 150 twice (1e-6 epoch 2, 2e-6 epoch 2): one kept, the smaller sigma0;
        # 0.58 @ 150, 0.40 @ 120 and 0.60 @ 200 are beaten
        ("linear", 0, 2e-6, 1, 0.55, 100), ("linear", 0, 1e-6, 2, 0.61, 150),
        ("linear", 1, 1e-6, 1, 0.30, 10),
    ]
    assert front["test_spikes"].tolist() == [260, 280, 4, 2, 7]  # the same points' test numbers
    assert select.pareto_front(select.points([])).empty


def test_refinement_proposes_the_sqrt2_neighbours_not_yet_searched():
    # Table 1 (reference 0.60): constant takes 1e-6 (2e-6 lost accuracy); quadratic has no point
    lost = record("quadratic", 1e-7, [(0.30, 10, 0.3, 10)])
    chosen = select.select(select.points([BASELINE, *CONSTANT, lost]), select.TOLERANCES["table1"])
    grid = {"constant": [1e-6, 2e-6], "quadratic": [1e-7]}
    # both neighbours of 1e-6 (3 significant digits), and one step below quadratic's smallest value
    assert select.refinement(chosen, grid) == {"constant": [7.07e-7, 1.41e-6], "quadratic": [7.07e-8]}
    # a grid already holding them (to 3 digits, within 1 %) needs nothing more around that choice;
    # a schedule still without a point always gets a step below its (new) smallest value
    done = {"constant": [7.07e-7, 1e-6, 1.414e-6, 2e-6], "quadratic": [7.07e-8, 1e-7]}
    assert select.refinement(chosen, done) == {"quadratic": [5e-8]}
    assert select.refinement(chosen[chosen["schedule"] != "quadratic"], done) == {}
    assert select.refinement(chosen, grid, step=2.0) == {"constant": [5e-7], "quadratic": [5e-8]}


def test_search_edges_name_the_choices_without_a_neighbour():
    # constant: Table 1 takes 1e-6 (the smallest; 2e-6 lost accuracy), Table 2 takes 2e-6 (the largest)
    mid = record("linear", 2e-6, [(0.60, 90, 0.6, 90)])  # linear 2e-6 between 1e-6 and 4e-6: bracketed
    linear = [record("linear", 1e-6, [(0.60, 120, 0.6, 120)]), mid, record("linear", 4e-6, [(0.40, 9, 0.4, 9)])]
    lost = record("quadratic", 1e-7, [(0.30, 10, 0.3, 10)])
    pts = select.points([BASELINE, *CONSTANT, *linear, lost])
    t1 = select.search_edges(select.select(pts, select.TOLERANCES["table1"]), pts)
    assert t1[["schedule", "edge"]].values.tolist() == [["constant", "smallest"], ["quadratic", "no point"]]
    assert t1["grid"].iloc[0] == [1e-6, 2e-6] and t1["sigma0"].iloc[0] == 1e-6 and math.isnan(t1["sigma0"].iloc[1])
    t2 = select.search_edges(select.select(pts, select.TOLERANCES["table2"]), pts)
    assert t2[["schedule", "edge"]].values.tolist()[0] == ["constant", "largest"]
    bracketed = select.points([BASELINE, *linear])
    assert select.search_edges(select.select(bracketed, 0.0), bracketed).empty


def test_records_without_a_validation_split_are_refused_by_both_rules():
    """val_fraction 0 (a retrain on all 50,000 images): no rule may choose on its test numbers."""
    from lib.analysis import robust

    retrain = {**record("linear", 2e-4, [(0.0, 0, 0.6, 100)]), "data": {"train": 50_000, "val": 0, "test": 10_000}}
    retrain["epochs"][0].update(val_accuracy=None, val_spikes=None)
    retrain["params"]["val_fraction"] = 0.0
    for points in (select.points, robust.points):
        with pytest.raises(select.NoValidationError, match="no validation split.*never on test numbers"):
            points([BASELINE, retrain])
