"""plots.save: the same figure gives the same files (no timestamp), written atomically."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from lib.analysis import plots  # noqa: E402


def test_save_is_byte_for_byte_and_leaves_no_temporary(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1])
    first = plots.save(fig, tmp_path / "a", "curve")
    second = plots.save(fig, tmp_path / "b", "curve")
    plt.close(fig)
    assert [p.name for p in first] == ["curve.png", "curve.pdf"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert b"CreationDate" not in first[1].read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["curve.pdf", "curve.png"]
