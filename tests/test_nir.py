"""NIR export (lib.export.nir_export): the parameter mapping by hand, the file, and the round trip
through snnTorch's own importer against an independent oracle of the exported semantics."""

import numpy as np
import pytest
import torch

from lib.export import nir_export
from lib.snn import LIFParameters, SpikingLeNet

nir = pytest.importorskip("nir")
pytest.importorskip("snntorch")


def _net(seed=0, gain=3.0, encoding="direct", **lif):
    """A SpikingLeNet whose layers fire on random images (init weights times `gain`)."""
    torch.manual_seed(seed)
    model = SpikingLeNet(encoding=encoding, p=LIFParameters(**lif))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model.eval()


def test_lif_mapping_by_hand():
    # beta = 0.5, dt = 1e-4: tau = 1e-4 / 0.5 = 2e-4, r = tau / dt = 2; the Euler step
    # v <- (1 - dt/tau) v + (r dt/tau) I is then v <- 0.5 v + 1 I, our neuron.
    graph = nir_export.to_nir(_net(beta=0.5, threshold=2.0), dt=1e-4)
    lif = graph.nodes["lif2"]
    assert lif.tau.shape == (16, 10, 10)
    np.testing.assert_allclose(lif.tau, 2e-4)
    np.testing.assert_allclose(lif.r, 2.0)
    np.testing.assert_allclose(1 - 1e-4 / lif.tau, 0.5)
    np.testing.assert_allclose(lif.r * 1e-4 / lif.tau, 1.0)
    np.testing.assert_array_equal(lif.v_threshold, 2.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    assert [graph.nodes["lif3"].tau.shape, graph.nodes["lif4"].tau.shape] == [(120,), (84,)]


def test_graph_is_the_network_in_order():
    model = _net()
    graph = nir_export.to_nir(model)
    chain = ["input", "conv1", "lif1", "pool1", "conv2", "lif2", "pool2", "flatten",
             "fc1", "lif3", "fc2", "lif4", "fc3", "output"]
    assert sorted(graph.edges) == sorted(zip(chain[:-1], chain[1:], strict=True))
    np.testing.assert_array_equal(graph.nodes["conv2"].weight, model.conv2.weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["fc3"].bias, model.fc3.bias.detach().numpy())
    assert graph.metadata["num_steps"] == 8


def test_write_nir_is_read_back_and_leaves_no_temporary(tmp_path):
    model = _net()
    path = nir_export.write_nir(model, tmp_path / "sub" / "model.nir")
    assert [p.name for p in path.parent.iterdir()] == ["model.nir"]
    graph = nir.read(path)
    np.testing.assert_array_equal(graph.nodes["fc1"].weight, model.fc1.weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["lif1"].tau, nir_export.to_nir(model).nodes["lif1"].tau)


def test_reset_to_zero_oracle_three_steps_by_hand():
    # beta 0.5, threshold 1, cur 0.8: mem 0.8 (no spike); 0.4 + 0.8 = 1.2 (spike, mem -> 0);
    # 0 + 0.8 = 0.8 (no spike). Reset by subtraction would leave 0.2 and give 0.9 at step 3.
    lif = nir_export.ResetToZeroLIF(beta=0.5, threshold=1.0)
    mem, trace = torch.zeros(1), []
    for _ in range(3):
        spk, mem = lif(torch.tensor([0.8]), mem)
        trace.append((spk.item(), round(mem.item(), 6)))
    assert trace == [(0.0, 0.8), (1.0, 0.0), (0.0, 0.8)]


def test_snntorch_import_reproduces_the_exported_network(tmp_path):
    """The file, imported by snnTorch and run 8 steps, spikes exactly as our network with
    NIR's reset to zero (computed step by step by our code), neuron by neuron."""
    model = _net()
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    imported = nir_export.import_snntorch(nir_export.write_nir(model, tmp_path / "m.nir"))
    logits, counts = nir_export.run_imported(imported, images, model.num_steps)
    with torch.no_grad():
        ref_logits, ref_counts = nir_export.with_reset_to_zero(model).activity(images)
    assert all(c.sum() > 0 for c in ref_counts)  # every layer fires: the comparison means something
    for c, ref in zip(counts, ref_counts, strict=True):
        torch.testing.assert_close(c, ref, rtol=0, atol=0)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)


def test_a_zero_reset_network_is_what_its_nir_file_says(tmp_path):
    """Trained with reset "zero", our network (the fused layers) is the network of its standard
    file: the same spikes as the independent oracle and as snnTorch's import, neuron by neuron."""
    model = _net(reset="zero")
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits, counts = model.activity(images)
        oracle_logits, oracle = nir_export.with_reset_to_zero(model).activity(images)
    assert all(c.sum() > 0 for c in counts)
    assert all(map(torch.equal, counts, oracle))
    graph = nir_export.to_nir(model)
    assert graph.metadata["reset"] == "to v_reset = 0 as NIR says, as in training"
    imported = nir_export.import_snntorch(nir_export.write_nir(model, tmp_path / "z.nir"))
    theirs_logits, theirs = nir_export.run_imported(imported, images, model.num_steps)
    for c, ref in zip(theirs, counts, strict=True):
        torch.testing.assert_close(c, ref, rtol=0, atol=0)
    torch.testing.assert_close(theirs_logits, logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="no 'sinabs' file"):
        nir_export.to_nir(model, convention="sinabs")


def test_compare_reports_exact_agreement_and_the_reset_gap():
    model = _net()
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    labels = torch.zeros(4, dtype=torch.long)
    result = nir_export.compare(model, images, labels)
    exact = result["agreement"]["snntorch_vs_ours_reset_to_zero"]
    assert exact["same_prediction"] == 1.0 and set(exact["spike_difference"].values()) == {0.0}
    assert exact["identical_neuron_counts"] and not result["agreement"]["snntorch_vs_ours"]["identical_neuron_counts"]
    with torch.no_grad():
        _, ours = model(images)
    # Reset to zero drops the excess above threshold: fewer spikes than ours, never more here.
    theirs = result["networks"]["snntorch"]["spikes_per_image"]
    np.testing.assert_allclose(list(result["networks"]["ours"]["spikes_per_image"].values()),
                               ours.mean(0).numpy(), rtol=1e-6)
    assert all(theirs[k] < v for k, v in result["networks"]["ours"]["spikes_per_image"].items())
    assert 0.0 <= result["networks"]["ours"]["accuracy"] <= 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="beta"):
        nir_export.to_nir(_net(beta=1.0))
    with pytest.raises(TypeError, match="SpikingLeNet"):
        nir_export.to_nir(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="dt"):
        nir_export.to_nir(_net(), dt=0.0)
    with pytest.raises(ValueError, match="direct"):
        nir_export.compare(_net(encoding="poisson"), torch.zeros(1, 3, 32, 32))


def test_sinabs_convention_by_hand():
    # beta = 0.5: sinabs's decay is exp(-1/tau), so tau = 1/ln 2 = 1.4427 steps, r = 1/(1 - 0.5) = 2;
    # the pools are sum pools, so conv2 and fc1 carry a quarter of our weights.
    model = _net(beta=0.5, threshold=2.0)
    graph = nir_export.to_nir(model, convention="sinabs")
    lif = graph.nodes["lif2"]
    np.testing.assert_allclose(lif.tau, 1.442695, rtol=1e-6)
    assert torch.exp(-1.0 / torch.tensor(lif.tau)).eq(0.5).all()
    np.testing.assert_allclose(lif.r, 2.0)
    np.testing.assert_array_equal(lif.v_threshold, 2.0)
    assert isinstance(graph.nodes["pool1"], nir.SumPool2d) and isinstance(graph.nodes["pool2"], nir.SumPool2d)
    np.testing.assert_array_equal(graph.nodes["conv2"].weight, model.conv2.weight.detach().numpy() / 4)
    np.testing.assert_array_equal(graph.nodes["fc1"].weight, model.fc1.weight.detach().numpy() / 4)
    np.testing.assert_array_equal(graph.nodes["fc2"].weight, model.fc2.weight.detach().numpy())
    assert graph.metadata["convention"] == "sinabs"
    with pytest.raises(ValueError, match="convention"):
        nir_export.to_nir(model, convention="norse")


def test_sinabs_import_reproduces_our_spikes(tmp_path):
    """The "sinabs" file, imported by sinabs's own importer (SingleSpike), spikes as our
    network, reset by subtraction, neuron by neuron; sinabs's default MultiSpike does not."""
    pytest.importorskip("sinabs")
    model = _net()
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    path = nir_export.write_nir(model, tmp_path / "s.nir", convention="sinabs")
    logits, counts = nir_export.run_sinabs(nir_export.import_sinabs(path, model.num_steps), images,
                                           model.num_steps, chunk=3)  # two chunks: states reset between
    with torch.no_grad():
        ref_logits, ref_counts = model.activity(images)
    assert all(c.sum() > 0 for c in ref_counts)
    for c, ref in zip(counts, ref_counts, strict=True):
        torch.testing.assert_close(c, ref, rtol=0, atol=0)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)
    _, multi = nir_export.run_sinabs(nir_export.import_sinabs(path, model.num_steps, single_spike=False),
                                     images, model.num_steps)
    assert sum(c.sum() for c in multi) > sum(c.sum() for c in ref_counts)  # gain 3: mem reaches 2 thresholds


def test_the_published_table1_network_round_trips_on_cifar10(cifar10_dir, cache_dir):
    """The network of the committed quick profile's spike rasters (its Table 1 network with the
    fewest test spikes, lib.export.models.sparsest_pair), on 64 real test images: the committed `.nir`
    file is that network (snnTorch's import spikes as its reset-to-zero reading, neuron by
    neuron), and sinabs's import of its "sinabs" file spikes as ours, neuron by neuron, with
    the same predictions. benchmarks/nir_roundtrip.py measures the same on 1,000 images."""
    pytest.importorskip("sinabs")
    from lib import data
    from lib.export import models

    folder = models.folder_of("quick")
    pair = models.sparsest_pair(models.read_index(folder))
    assert pair is not None, f"{folder}: no published Table 1 pair"
    sparse = pair[1]
    model = models.load_path(folder / sparse["state_dict"])
    splits = data.prepare(data.load_cifar10(cifar10_dir, cache_dir), 0, 0.2, 64, 64, 64, torch.device("cpu"))
    images = splits.test.images
    with torch.no_grad():
        logits, counts = model.activity(images)
        zero_logits, zero_counts = nir_export.with_reset_to_zero(model).activity(images)
    assert all(c.sum() > 0 for c in counts)
    published = nir_export.import_snntorch(nir.read(folder / sparse["nir"]))
    theirs_logits, theirs = nir_export.run_imported(published, images, model.num_steps)
    for c, ref in zip(theirs, zero_counts, strict=True):
        torch.testing.assert_close(c, ref, rtol=0, atol=0)
    assert torch.equal(theirs_logits.argmax(1), zero_logits.argmax(1))
    theirs_logits, theirs = nir_export.run_sinabs(
        nir_export.import_sinabs(nir_export.to_nir(model, convention="sinabs"), model.num_steps),
        images, model.num_steps)
    for c, ref in zip(theirs, counts, strict=True):
        torch.testing.assert_close(c, ref, rtol=0, atol=0)
    assert torch.equal(theirs_logits.argmax(1), logits.argmax(1))
