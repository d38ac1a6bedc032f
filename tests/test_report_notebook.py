"""The tables notebook's cells for our stable rule, the stability file and the provenance, on a
two-seed profile trained in-process (as test_notebooks.py does), executed through papermill."""

import pandas as pd
import pytest
import yaml

from lib import sweep
from tests.test_notebooks import complete_in_process, tables


@pytest.mark.slow
def test_tables_notebook_writes_ours_beside_the_papers(tmp_path, cifar10_dir, cache_dir, monkeypatch):
    monkeypatch.setenv("CIFAR10_DIR", cifar10_dir)
    monkeypatch.setenv("SNN_CACHE_DIR", cache_dir)
    values = {**sweep.load_profile("smoke").params, "epochs": 1, "train_size": 128, "val_size": 128,
              "test_size": 128, "grid": {"seeds": [0, 1], "sigma0": {"baseline": [], "constant": [1.0e-6]}}}
    path = tmp_path / "two_seeds.yaml"
    path.write_text(yaml.safe_dump(values))
    profile, results, figures = sweep.load_profile(str(path)), tmp_path / "results", tmp_path / "figures"
    complete_in_process(profile, results)
    tables(path, results, figures, tmp_path)
    out = figures / "two_seeds"
    seeds = "Seeds: 2 (0, 1)."
    for name in ("table1", "table2"):
        assert (out / f"{name}.md").read_text().split("\n\n")[0].endswith(seeds)  # the paper's rule's caption too
        ours = (out / f"{name}_robust.md").read_text()
        assert "Ours, not the paper's rule" in ours and "4 runs on 1 machine" in ours
        numbers = pd.read_csv(out / f"{name}_robust.csv").set_index("schedule")
        # one (sigma0, epoch) for both seeds: 1 epoch, so epoch 1 twice
        assert numbers["seeds"].tolist() == [2, 2] and numbers.loc["constant", "epoch"] == "[1, 1]"
    stability = pd.read_csv(out / "selection_stability.csv")
    # one sparse schedule and its total, per rule and draw: Table 1 and 2 x (paper, ours, ours leave-one-out) x 2
    assert len(stability) == 12 and set(stability["pairs"]) == {1}
    assert seeds in (out / "provenance.md").read_text()
