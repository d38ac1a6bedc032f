"""The README and docs/ against their evidence: the answer table is the one the committed CSVs
give, every number the claims table quotes is read from its file, and every relative link resolves
to a file in the repository."""

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from lib.analysis import report

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_the_answer_table_is_the_one_the_committed_tables_give():
    assert report.answer_table(REPO / "figures/paper") in README


def test_the_held_out_table_is_the_one_the_committed_confirmation_gives():
    block = report.heldout_table(REPO / "figures/paper-heldout")
    assert block in README and block in (REPO / "figures/paper-heldout/README.md").read_text()
    frame = pd.read_csv(REPO / "figures/paper-heldout/confirmation.csv")
    assert block.count("| yes (") + block.count("| no (") == frame["holds"].notna().sum()


def held_out_holds() -> str:
    frame = pd.read_csv(REPO / "figures/paper-heldout/confirmation.csv")
    decided = frame[frame["holds"].notna()]
    return f"hold for {int(decided['holds'].astype(bool).sum())} of the {len(decided)} chosen points"


def test_the_answer_block_can_be_rewritten_in_place(tmp_path):
    stale = README.replace("63.52 ± 0.42 %", "99.99 ± 0.00 %", 1)
    (tmp_path / "README.md").write_text(stale)
    assert report.main(["--readme", str(tmp_path / "README.md"), str(REPO / "figures/paper")]) == 0
    assert (tmp_path / "README.md").read_text() == README
    with pytest.raises(ValueError, match="no block"):
        report.replace_block("no markers here", "x")


def reduction(folder: str, table: str, schedule: str) -> str:
    row = pd.read_csv(REPO / "figures" / folder / f"{table}.csv").set_index("schedule").loc[schedule]
    return f"−{row['spike_reduction_mean'] * 100:.1f} ± {row['spike_reduction_std'] * 100:.1f} %"


# (the claims table's quoted number, computed from the file that backs it)
CLAIMS = [
    lambda: f"linear {reduction('paper', 'table2', 'linear')} within one point",
    lambda: f"constant only ({reduction('paper', 'table1', 'constant')})",
    lambda: f"linear to {reduction('quick-fine', 'table1_robust', 'linear')} at no loss",
    held_out_holds,
]


@pytest.mark.parametrize("claim", CLAIMS)
def test_the_claims_table_quotes_its_evidence(claim):
    assert claim() in README


def test_the_kernel_speed_quoted_is_the_measured_one():
    measured = json.loads((REPO / "benchmarks/results/epoch_cost.json").read_text())["profiles"]
    ratio = f"{measured['quick']['median_ratio_seconds']:.2f}x"
    assert f"trains an epoch of it in {ratio}" in README
    assert all(p["same_numbers"] for p in measured.values())


LINK = re.compile(r"\]\(([^)\s]+)\)")


def documents():
    tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / p for p in tracked.stdout.split()] + [p for p in (REPO / "docs").glob("*.md")]


def test_every_relative_link_resolves():
    broken = []
    for doc in set(documents()):
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target}")
    assert not broken, broken


def test_the_front_page_is_short_and_has_its_parts():
    assert len(README.splitlines()) <= 220
    for part in ("## The answer", "## Claims and their evidence", "## The method in code", "## Repository map",
                 "## How to cite", "## Licence"):
        assert part in README
    assert (REPO / "LICENSE").exists() and (REPO / "CITATION.cff").exists()


def test_the_paper_profiles_search_table_is_its_records():
    """figures/paper/README.md's 'How the grid was searched': each run's best validation accuracy."""
    text = (REPO / "figures/paper/README.md").read_text().split("## How the grid was searched")[1]
    cells = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 5 and parts[1] not in ("sigma0", "---"):
            cells[(parts[0].replace(" ", "_"), float(parts[1]))] = parts[3:]
    seen = set()
    for path in (REPO / "records/paper").glob("*/record.json"):
        rec = json.loads(path.read_text())
        key = (rec["params"]["schedule"], rec["params"]["sigma0"])
        best = max(e["val_accuracy"] for e in rec["epochs"]) * 100
        cell = cells[key][rec["params"]["seed"]]
        assert cell.startswith(f"{best:.2f} %"), (key, cell)
        assert ("collapsed" in cell) == (rec["status"] == "collapsed")
        seen.add(key)
    assert seen == set(cells) and len(seen) == 40


def test_the_held_out_collapse_quoted_is_in_the_records():
    """The README's held-out sentence: constant 1.2e-4 collapsed on each of seeds 2, 3, 4."""
    assert "constant's chosen σ0, 1.2e-4,\n  silenced lif3 and lif4 in the first epoch on each of the three" in README
    for seed in (2, 3, 4):
        rec = json.loads((REPO / f"records/paper-heldout/constant-s0.00012-seed{seed}/record.json").read_text())
        assert rec["status"] == "collapsed" and rec["params"]["sigma0"] == 1.2e-4
        assert rec["epochs"][0]["val_spikes_per_layer"][2:] == [0.0, 0.0]  # lif3 and lif4 silent in epoch 1
        assert rec["epochs"][-1]["val_accuracy"] < 0.11  # chance


def test_the_suites_cost_quoted_is_the_measured_one():
    measured = (REPO / "benchmarks/results/make_test.txt").read_text()
    count = re.search(r"pytest: (\d+) passed", measured).group(1)
    minutes, seconds = map(int, re.search(r"and tests: (\d+) min (\d+) s wall", measured).groups())
    assert "install (make install into a new .venv" in measured
    wall = round(minutes + seconds / 60)
    assert f"(installs .venv/ first); {count} tests, about {wall} min with the install" in README
