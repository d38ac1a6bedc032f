"""The table comparison (lib.analysis.compare) on a hand-made pair of tables: rows that agree, that
differ beyond the spread, that have a point on one side only, and rows missing on one side."""

import math
import subprocess

import pandas as pd
import pytest

from lib import record
from lib.analysis import compare
from tests.test_robust import RECORDS

COLUMNS = ["schedule", "seeds", "sigma0", "epoch", "test_accuracy_mean", "test_accuracy_std",
           "spike_reduction_mean", "spike_reduction_std", "notes"]


def write(folder, rows):
    """table1.csv and table2.csv, both of `rows`: (schedule, seeds, accuracy mean, sd, reduction
    mean, sd); sigma0 1e-5 and epoch 9 on every seed."""
    folder.mkdir(parents=True, exist_ok=True)
    note = "no point within tolerance"
    frame = pd.DataFrame([(s, n, str([1e-05] * n), str([9] * n), a, asd, r, rsd, "" if n else note)
                          for s, n, a, asd, r, rsd in rows], columns=COLUMNS)
    for name in ("table1", "table2"):
        frame.to_csv(folder / f"{name}.csv", index=False)


NAN = math.nan
# two seeds on each side, sd 0.02 everywhere: allowed = 2 * sqrt(0.02^2 / 2 + 0.02^2 / 2) = 0.04
COMMITTED = [("baseline", 2, 0.55, 0.02, 0.0, 0.0), ("constant", 2, 0.55, 0.02, 0.30, 0.02),
             ("linear", 2, 0.54, 0.02, 0.50, 0.02), ("quadratic", 0, NAN, NAN, NAN, NAN),
             ("alternating", 2, 0.55, 0.02, 0.40, 0.02)]
MINE = [("baseline", 2, 0.55, 0.02, 0.0, 0.0),
        ("constant", 2, 0.58, 0.02, 0.33, 0.02),  # 0.03 and 0.03 apart: within 0.04
        ("linear", 2, 0.54, 0.02, 0.55, 0.02),  # reduction 0.05 apart: beyond 0.04
        ("quadratic", 2, 0.54, 0.02, 0.20, 0.02),  # a point where the committed table has none
        ("alternating_linear", 2, 0.54, 0.02, 0.20, 0.02)]  # alternating missing, this one extra


@pytest.fixture
def pair(tmp_path):
    for folder, rows in (("mine", MINE), ("committed", COMMITTED)):
        write(tmp_path / folder, rows)
    return tmp_path / "mine", tmp_path / "committed"


def test_rows_by_hand(pair):
    mine, committed = (compare.read_tables(str(p)) for p in pair)
    result = compare.compare_table(mine["table1"], committed["table1"]).set_index("schedule")
    assert result["agree"].to_dict() == {"baseline": True, "constant": True, "linear": False, "quadratic": False,
                                         "alternating": False, "alternating_linear": False}
    assert result.loc["constant", "test_accuracy_allowed"] == pytest.approx(0.04)
    assert result.loc["linear", "why"] == "spike reduction differs by 5.00 points > 4.00"
    assert result.loc["quadratic", "why"] == "a point in mine only"
    assert result.loc["alternating", "why"] == "no such row in mine"
    assert result.loc["alternating_linear", "why"] == "no such row in committed"


def test_one_seed_uses_the_default_sd(tmp_path):
    # one seed each: allowed = 2 * sqrt(0.0048^2 + 0.0048^2) = 0.013576 for accuracy
    write(tmp_path / "a", [("baseline", 1, 0.550, NAN, 0.0, NAN), ("constant", 1, 0.550, NAN, 0.30, NAN)])
    write(tmp_path / "b", [("baseline", 1, 0.563, NAN, 0.0, NAN), ("constant", 1, 0.536, NAN, 0.30, NAN)])
    a, b = (compare.read_tables(str(tmp_path / n))["table1"] for n in "ab")
    result = compare.compare_table(a, b).set_index("schedule")
    assert result.loc["baseline", "test_accuracy_allowed"] == pytest.approx(2 * math.sqrt(2) * 0.0048)
    assert result["agree"].tolist() == [True, False]  # 1.3 points apart: in; 1.4: out
    # a measured sd replaces the default: 0.01 -> allowed 0.0283, both in
    wider = compare.compare_table(a, b, {"test_accuracy": 0.01, "spike_reduction": 0.1})
    assert wider["agree"].all()


def test_command_exit_status(pair, tmp_path, capsys):
    mine, committed = pair
    assert compare.main([str(committed), str(committed)]) == 0
    assert compare.main([str(mine), str(committed)]) == 1
    out = capsys.readouterr().out
    assert "4 of 12 rows agree" in out and "table1/linear" in out and "table2/alternating" in out
    assert compare.main([str(tmp_path / "nowhere"), str(committed)]) == 2
    write(tmp_path / "half", COMMITTED)
    (tmp_path / "half" / "table2.csv").unlink()
    assert compare.main([str(tmp_path / "half"), str(committed)]) == 2
    assert "no table2.csv" in capsys.readouterr().err


def test_committed_tables_from_git(pair, tmp_path, monkeypatch):
    _, committed = pair
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "committed"], check=True)
    subprocess.run([*git, "commit", "-qm", "tables"], check=True)
    write(committed, MINE)  # the working copy rewritten, as make reproduce does
    monkeypatch.chdir(tmp_path)
    assert compare.main(["committed", "HEAD:committed"]) == 1  # the rewritten table1 against the committed one
    assert compare.read_tables("HEAD:committed")["table1"].loc["linear", "spike_reduction_mean"] == 0.50
    assert compare.main(["committed", "HEAD:elsewhere"]) == 2


def test_tables_made_from_a_results_folder(tmp_path):
    for r in RECORDS:
        record.write(tmp_path / "results" / r["run_id"] / "record.json",
                     {**r, "status": "complete", "params": {**r["params"], "epochs": len(r["epochs"])}})
    tables = compare.read_tables(str(tmp_path / "results"))
    assert set(tables) == {"table1", "table2", "table1_robust", "table2_robust"}
    # lib.analysis.robust's hand-worked Table 1: constant 2e-6 on both seeds; the paper's rule: seed 1 only
    assert tables["table1_robust"].loc["constant", "sigma0"] == [2e-6, 2e-6]
    assert tables["table1"].loc["constant", "sigma0"] == [1e-6]
