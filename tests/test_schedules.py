"""Every sigma schedule against eqs. 4-8 of the paper, and the alternation A."""

import pytest

from lib.schedules import SCHEDULES, alternation, on_fraction, weight

S0 = 0.002


@pytest.mark.parametrize("N", [1, 7, 20])
def test_weights_equal_equations_4_to_8_for_every_epoch(N):
    for n in range(1, N + 1):
        a = alternation(n, N)  # batch 0 of n
        assert weight("baseline", S0, n, N) == 0.0
        assert weight("constant", S0, n, N) == pytest.approx(S0)  # eq. 4
        assert weight("linear", S0, n, N) == pytest.approx(S0 * n / N)  # eq. 5
        assert weight("quadratic", S0, n, N) == pytest.approx(S0 * n**2 / N)  # eq. 6, as printed
        assert weight("alternating", S0, n, N) == pytest.approx(a * S0)  # eq. 7
        assert weight("alternating_linear", S0, n, N) == pytest.approx(a * S0 * n / N)  # eq. 8


def test_known_values_by_hand():
    assert weight("linear", 1.0, 5, 20) == 0.25
    assert weight("quadratic", 1.0, 5, 20) == 1.25  # 25 / 20: grows past sigma0
    assert weight("quadratic", 1.0, 20, 20) == 20.0


def test_on_fraction_rises_from_never_to_always():
    assert [on_fraction(n, 5) for n in range(1, 6)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert on_fraction(1, 1) == 1.0


@pytest.mark.parametrize("N, B", [(5, 8), (20, 100), (3, 7)])
def test_per_batch_alternation_share_and_spread(N, B):
    for n in range(1, N + 1):
        on = [alternation(n, N, b) for b in range(B)]
        assert sum(on) == int(on_fraction(n, N) * B + 1e-9)
    assert sum(alternation(1, N, b) for b in range(B)) == 0  # never in epoch 1
    assert all(alternation(N, N, b) for b in range(B))  # always in epoch N
    # half of epoch 3 of 5: every other batch, not the first half of the epoch
    assert [alternation(3, 5, b) for b in range(8)] == [0, 1, 0, 1, 0, 1, 0, 1]


def test_per_epoch_alternation_by_hand():
    # p = 0, .25, .5, .75, 1; running sums 0, .25, .75, 1.5, 2.5: integers crossed at 4 and 5
    assert [alternation(n, 5, granularity="epoch") for n in range(1, 6)] == [0, 0, 0, 1, 1]
    # p = k/8 over 9 epochs: sums 0, .125, .375, .75, 1.25, 1.875, 2.625, 3.5, 4.5
    assert [alternation(n, 9, granularity="epoch") for n in range(1, 10)] == [0, 0, 0, 0, 1, 0, 1, 1, 1]
    # granularity epoch ignores the batch
    assert weight("alternating", S0, 4, 5, batch=3, num_batches=9, granularity="epoch") == S0


def test_registry_and_errors_list_valid_names():
    assert set(SCHEDULES) == {"baseline", "constant", "linear", "quadratic", "alternating", "alternating_linear"}
    with pytest.raises(ValueError, match="alternating_linear"):
        weight("cosine", S0, 1, 10)
    with pytest.raises(ValueError, match="batch, epoch"):
        weight("alternating", S0, 1, 10, granularity="step")
    with pytest.raises(ValueError, match="epoch"):
        weight("linear", S0, 0, 10)
    with pytest.raises(ValueError, match="epoch"):
        weight("linear", S0, 11, 10)
