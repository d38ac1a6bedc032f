"""Studies: a base setting and one factor at a time, expanded into lib.sweep profiles."""

import pytest
import yaml

from lib import study, sweep

GRID = {"seeds": [0], "sigma0": {"baseline": [], "linear": [1.0, 3.0]}}
STUDY = {
    "base": {"epochs": 2, "spike_normalisation": "per_neuron_step"},
    "grid": GRID,
    "factors": {
        "surrogate": {"width3": {"surrogate_scale": 3.0}},
        "lr": {"lr3e-4": {"lr": 3e-4, "grid": {"seeds": [0], "sigma0": {"baseline": [], "constant": [0.1]}}}},
    },
}


def test_a_study_expands_into_one_profile_per_variant_base_first():
    s = study.parse_study("abl", STUDY)
    assert [v.name for v in s.variants] == ["base", "surrogate-width3", "lr-lr3e-4"]
    assert [v.profile.name for v in s.variants] == ["abl/base", "abl/surrogate-width3", "abl/lr-lr3e-4"]
    assert s.factors == ["surrogate", "lr"]
    width = s.variant("surrogate-width3")
    assert (width.factor, width.label) == ("surrogate", "width3")
    assert width.profile.params == {"epochs": 2, "spike_normalisation": "per_neuron_step", "surrogate_scale": 3.0}
    assert [r.id for r in width.profile.runs] == ["baseline-seed0", "linear-s1-seed0", "linear-s3-seed0"]
    lr = s.variant("lr-lr3e-4")  # its own grid, in its own unit
    assert [r.id for r in lr.profile.runs] == ["baseline-seed0", "constant-s0.1-seed0"]
    assert s.variants[0].profile.params == STUDY["base"]


def test_runs_live_under_the_study_and_variant(tmp_path):
    s = study.parse_study("abl", STUDY)
    paths = study.records(s, tmp_path)
    assert len(paths) == 3 + 3 + 2
    assert paths[0] == tmp_path / "abl" / "base" / "baseline-seed0" / "record.json"
    assert paths[-1] == tmp_path / "abl" / "lr-lr3e-4" / "constant-s0.1-seed0" / "record.json"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"base": {}, "grid": GRID}, "exactly the keys base, grid, factors"),
        ({**STUDY, "factors": ["lr"]}, "factors must map"),
        ({**STUDY, "factors": {"base": {"x": {}}}}, "factor 'base' must be a name"),
        ({**STUDY, "factors": {"a-b": {"x": {}}}}, "factor 'a-b' must be a name"),
        ({**STUDY, "factors": {"lr": {"a b": {"lr": 0.1}}}}, r"lr.a b: a label is letters"),
        ({**STUDY, "factors": {"lr": {"x": {"learning_rate": 0.1}}}}, "abl/lr-x.*unknown key.*learning_rate"),
        ({**STUDY, "factors": {"lr": {"x": {"lr": -1.0}}}}, "abl/lr-x.*lr must be > 0"),
        ({**STUDY, "base": {"epochs": 2, "grid": GRID}}, "base must be a mapping of run parameters"),
        ({**STUDY, "factors": {"lr": {"x": {"schedule": "linear"}}}}, "schedule is set per run"),
    ],
)
def test_bad_studies_are_refused_naming_the_variant(values, message):
    with pytest.raises(ValueError, match=message):
        study.parse_study("abl", values)


def test_cli_check_records_status(tmp_path, capsys):
    path = tmp_path / "abl.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    results = tmp_path / "results"
    assert study.main(["check", str(path), "--results", str(results)]) == 0
    assert "pending    surrogate-width3/linear-s3-seed0" in capsys.readouterr().out
    assert study.main(["status", str(path), "--results", str(results)]) == 1
    assert "study abl: 0 of 8 runs complete" in capsys.readouterr().out
    assert study.main(["records", str(path), "--results", str(results)]) == 0
    assert f"{results}/abl/base/baseline-seed0/record.json" in capsys.readouterr().out
    assert study.main(["run", str(path), "nonesuch/baseline-seed0", "--results", str(results)]) == 1
    assert "no variant 'nonesuch'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"base": {}}))
    assert study.main(["check", str(bad)]) == 2


def test_the_shipped_study_is_valid():
    s = study.load_study("ablations")
    assert s.variants[0].name == "base" and len(s.variants) >= 5
    assert all(isinstance(v.profile, sweep.Profile) for v in s.variants)
