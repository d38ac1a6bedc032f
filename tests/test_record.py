"""lib.record: which records count as finished runs."""

import pytest

from lib import record


def rec(status, rows, planned=5):
    return {"status": status, "params": {"epochs": planned}, "epochs": [{"epoch": n} for n in range(1, rows + 1)]}


@pytest.mark.parametrize("status, rows", [("complete", 5), ("collapsed", 2), ("collapsed", 3), ("collapsed", 5)])
def test_finished_runs_pass_the_complete_check(status, rows):
    record.check(rec(status, rows), complete=True)


@pytest.mark.parametrize("status, rows, message", [
    ("complete", 3, "3 epoch rows for a run of 5 epochs"),
    ("collapsed", 1, "a collapsed run with 1 epoch rows for a run of 5 epochs \\(needs 2 to 5\\)"),
    ("collapsed", 6, "a collapsed run with 6 epoch rows"),
    ("failed", 2, "status is 'failed', not 'complete' or 'collapsed'"),
    ("running", 2, "status is 'running'"),
])
def test_unfinished_or_inconsistent_runs_are_refused(status, rows, message):
    with pytest.raises(ValueError, match=message):
        record.check(rec(status, rows), complete=True)
    record.check(rec(status, rows))  # a known status: readable without complete=True


def test_load_reads_a_collapsed_record_as_finished(tmp_path):
    path = tmp_path / "record.json"
    record.write(path, rec("collapsed", 2))
    assert record.load(path, complete=True)["status"] == "collapsed"
    record.write(path, {**rec("collapsed", 2), "status": "stopped"})
    with pytest.raises(record.RecordError, match="unknown status 'stopped'"):
        record.load(path)
