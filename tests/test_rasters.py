"""Spike rasters and firing-rate histograms (lib.analysis.plots): the data behind the figures against
the model's own spike counts."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from lib.analysis import plots
from lib.snn import LAYERS, SpikingLeNet


def _net(seed, gain=3.0):
    torch.manual_seed(seed)
    model = SpikingLeNet()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model.eval()


IMAGES = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def test_spike_trains_sum_to_the_models_counts():
    model = _net(0)
    trains = plots.spike_trains(model, IMAGES[0])
    with torch.no_grad():
        _, counts = model.activity(IMAGES[:1])
    assert [t.shape for t in trains] == [(8, n) for n in SpikingLeNet.layer_sizes]
    for t, c in zip(trains, counts, strict=True):
        torch.testing.assert_close(t.sum(0), c[0].flatten(), rtol=0, atol=0)
    assert model.step_by_step is False  # the model itself is left as it was


def test_raster_shows_a_seeded_subset_and_counts_the_whole_layer():
    a, b = _net(0), _net(1)
    fig = plots.spike_raster_figure(a, b, IMAGES[0], labels=("baseline", "sparse"), max_neurons=50, seed=7)
    data = fig.raster_data
    with torch.no_grad():
        _, spikes_a = a(IMAGES[:1])
    trains = plots.spike_trains(a, IMAGES[0])
    for i, d in enumerate(data["baseline"]):
        assert d["total"] == int(spikes_a[0, i])
        assert len(d["neurons"]) == min(50, SpikingLeNet.layer_sizes[i])
        # the dots are exactly the spikes of the shown neurons
        assert len(d["times"]) == int(trains[i][:, torch.as_tensor(d["neurons"])].sum())
    # large layers: the same random neurons in both columns, drawn from the seed
    np.testing.assert_array_equal(data["baseline"][0]["neurons"], data["sparse"][0]["neurons"])
    again = plots.raster_data(b, IMAGES[0], max_neurons=50, seed=7)
    np.testing.assert_array_equal(again[1]["neurons"], data["sparse"][1]["neurons"])
    assert len(fig.axes) == 2 * len(LAYERS)
    matplotlib.pyplot.close(fig)


def test_firing_rates_by_hand_and_histogram_data():
    model = _net(0)
    rates = plots.firing_rates(model, IMAGES, batch_size=2)
    with torch.no_grad():
        _, spikes = model(IMAGES)
    for r, total, n in zip(rates, spikes.sum(0), SpikingLeNet.layer_sizes, strict=True):
        assert r.shape == (n,) and r.min() >= 0 and r.max() <= 1
        # mean rate = total spikes / (neurons * steps * images)
        assert r.mean() == pytest.approx(float(total) / (n * 8 * len(IMAGES)), rel=1e-6)
    fig = plots.firing_rate_histogram_figure(model, _net(1), IMAGES, labels=("base", "sparse"))
    np.testing.assert_allclose(fig.firing_rates["base"][2], rates[2])
    matplotlib.pyplot.close(fig)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one image"):
        plots.spike_trains(_net(0), IMAGES)
    with pytest.raises(ValueError, match="max_neurons"):
        plots.raster_data(_net(0), IMAGES[0], max_neurons=0)
    with pytest.raises(ValueError, match="at least one image"):
        plots.firing_rates(_net(0), IMAGES[:0])
