"""Figures of the notebooks: each function takes data and returns a matplotlib Figure.

Tutorial figures (train notebook): a LIF trace, the two surrogate gradients, a
schedule's weight over the epochs, spikes against SynOps and energy per layer. Results
figures (both notebooks): training curves, spikes per layer, the validation
sparsity-accuracy scatter with the selected points, test accuracy against spikes of the
selected rows, and the Pareto fronts. Error bars are the sd over seeds where there are
several. `save` writes PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from .. import energy, record, schedules, snn
from .select import TOLERANCES

sns.set_theme(style="whitegrid", context="notebook")
PALETTE = dict(zip(schedules.NAMES, sns.color_palette("colorblind", len(schedules.NAMES)), strict=True))
TABLE_MARKERS = {"table1": ("*", "Table 1 (no loss)"), "table2": ("X", "Table 2 (<= 1 pp loss)")}


# No creation date in the PDF (the PNG has none): the same records give the same bytes.
METADATA = {"png": {}, "pdf": {"CreationDate": None}}


def save(fig, folder, name: str) -> list[Path]:
    """Write `name`.png and `name`.pdf into `folder`, each atomically (`lib.record.atomic`) and
    with no timestamp, so that a figure remade from the same records is the same file; return
    the paths."""
    return [record.atomic(Path(folder) / f"{name}.{ext}",
                          lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight",
                                                           metadata=METADATA[ext]))
            for ext in METADATA]


def lif_trace(cur: float = 0.8, beta: float = 0.5, threshold: float = 1.0, num_steps: int = 3):
    """Membrane and spikes of one LIF neuron under a constant input current."""
    lif = snn.LIF(snn.LIFParameters(beta=beta, threshold=threshold))
    mem = torch.zeros(1)
    before, after, spikes = [], [], []
    for _ in range(num_steps):
        before.append((beta * mem + cur).item())  # the membrane the threshold sees
        spk, mem = lif(torch.tensor([cur]), mem)
        spikes.append(spk.item())
        after.append(mem.item())
    t = np.arange(1, num_steps + 1)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(t, before, "o-", label="mem before reset")
    ax.plot(t, after, "s--", label="mem after reset")
    ax.axhline(threshold, color="grey", lw=1, ls=":", label="threshold")
    for ti, s in zip(t, spikes, strict=True):
        if s:
            ax.annotate("spike", (ti, before[ti - 1]), textcoords="offset points", xytext=(8, -4), ha="left")
    ax.set(xlabel="time step t", ylabel="membrane potential", xticks=t,
           title=f"LIF: beta = {beta}, threshold = {threshold}, cur = {cur}")
    ax.legend(fontsize="small")
    return fig


def surrogates(gamma: float = 1.0, scale: float = 1.0):
    """The spike (Heaviside) and both surrogate derivatives against x = mem - threshold."""
    x = torch.linspace(-3, 3, 601)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(x, (x > 0).float(), color="black", label="forward: spike H(x)")
    for name, (_, grad, shape) in snn.SURROGATES.items():
        ax.plot(x, grad(x, gamma, scale), label=f"backward: {name} ({shape} {scale})")
    ax.set(xlabel="x = mem - threshold", ylabel="value / derivative", title="Surrogate gradients")
    ax.legend(fontsize="small")
    return fig


def schedule_weights(sigma0s: dict, num_epochs: int, num_batches: int = 1, granularity: str = "batch"):
    """Mean weight w per epoch for each schedule; `sigma0s` maps schedule -> sigma0."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, num_epochs + 1)
    for schedule, sigma0 in sigma0s.items():
        w = schedules.epoch_weights(schedule, sigma0, num_epochs, num_batches, granularity)
        ax.plot(epochs, w, "o-", color=PALETTE[schedule], label=f"{schedule} (sigma0 = {sigma0:g})")
    ax.set(xlabel="epoch n", ylabel="w: loss per spike", title=f"Sparsity weight over {num_epochs} epochs")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return fig


def training_curves(pts):
    """Validation accuracy and spikes per epoch, a column per schedule, a line per run."""
    names = [s for s in schedules.NAMES if s in set(pts["schedule"])]
    fig, axes = plt.subplots(2, max(1, len(names)), figsize=(3.2 * max(1, len(names)), 5.5), squeeze=False,
                             sharex=True)
    for col, schedule in enumerate(names):
        mine = pts[pts["schedule"] == schedule]
        for _, run in mine.groupby("run_id", sort=False):
            label = "baseline" if schedule == "baseline" else f"sigma0 {run['sigma0'].iloc[0]:g}"
            label += f" seed {run['seed'].iloc[0]}" if pts["seed"].nunique() > 1 else ""
            axes[0, col].plot(run["epoch"], run["val_accuracy"] * 100, "o-", ms=3, label=label)
            axes[1, col].plot(run["epoch"], run["val_spikes"], "o-", ms=3)
        axes[0, col].set_title(schedule)
        axes[0, col].legend(fontsize="x-small")
        axes[1, col].set_xlabel("epoch")
        axes[1, col].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].set_ylabel("val accuracy (%)")
    axes[1, 0].set_ylabel("val spikes per image")
    fig.tight_layout()
    return fig


def spikes_per_layer(rows: dict, errors: dict | None = None, layers=snn.LAYERS):
    """Grouped bars: `rows` maps a label to its spikes per image in each hidden layer;
    `errors` (same labels) the error bars, e.g. the sd over seeds (none where NaN)."""
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(layers), 3.5))
    width = 0.8 / max(1, len(rows))
    for i, (label, values) in enumerate(rows.items()):
        err = errors[label] if errors and not np.isnan(errors[label]).all() else None  # one seed: no bars
        ax.bar(np.arange(len(layers)) + i * width, values, width, yerr=err, capsize=2, label=label)
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, [f"{name}" for name in layers])
    ax.set(ylabel="spikes per image", title="Spikes per hidden layer (test)")
    ax.legend(fontsize="x-small")
    return fig


def sparsity_accuracy(pts, selected: dict):
    """Every (sigma0, epoch) point: validation spikes vs accuracy, a panel per schedule.

    The baseline's points are grey in every panel; `selected` maps a table name to its
    `lib.analysis.select.select` frame, whose points are marked; dotted lines are the references.
    """
    names = [s for s in schedules.NAMES if s in set(pts["schedule"]) and s != "baseline"]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(3.6 * max(1, len(names)), 3.8),
                             squeeze=False, sharey=True)
    base = pts[pts["schedule"] == "baseline"]
    for ax, schedule in zip(axes[0], names, strict=False):
        mine = pts[pts["schedule"] == schedule]
        ax.scatter(base["val_spikes"], base["val_accuracy"] * 100, color="grey", s=12, label="baseline")
        shown = mine.assign(val_pct=mine["val_accuracy"] * 100, sigma0=mine["sigma0"].map("{:g}".format))
        sns.scatterplot(data=shown, x="val_spikes", y="val_pct", hue="sigma0", s=18, ax=ax, palette="viridis")
        for table, frame in selected.items():
            marker, label = TABLE_MARKERS[table]
            chosen = frame[(frame["schedule"].isin([schedule, "baseline"])) & (frame["note"] == "")]
            ax.scatter(chosen["val_spikes"], chosen["val_accuracy"] * 100, marker=marker, s=140,
                       facecolor="none", edgecolor="red" if table == "table1" else "black", label=label)
            threshold = frame["reference"].max() - TOLERANCES[table]
            ax.axhline(threshold * 100, color="grey", ls=":", lw=1)
        ax.set(title=schedules.LABELS[schedule], xlabel="val spikes per image", ylabel="val accuracy (%)")
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def selected_tradeoff(summaries: dict):
    """Test accuracy against test spikes of the selected rows; `summaries`: table -> summary."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for table, summary in summaries.items():
        marker, label = TABLE_MARKERS[table]
        for _, row in summary[summary["seeds"] > 0].iterrows():
            ax.errorbar(row["test_spikes_mean"], row["test_accuracy_mean"] * 100,
                        xerr=np.nan_to_num(row["test_spikes_std"]), yerr=np.nan_to_num(row["test_accuracy_std"] * 100),
                        marker=marker, ms=10, ls="none", color=PALETTE[row["schedule"]],
                        label=f"{row['schedule']}, {label}")
    ax.set(xlabel="test spikes per image", ylabel="test accuracy (%)", title="Selected hyperparameters (test)")
    ax.legend(fontsize="x-small", bbox_to_anchor=(1.02, 1), loc="upper left")
    return fig


def confirmation(frame):
    """`lib.analysis.report.confirmation`: each choice's test spike reduction on the seeds it was chosen on
    beside the same (sigma0, epoch) on the held-out seeds (error bars: sd over seeds), a panel per
    table; a held-out point is filled where it clears our rule's threshold on validation, hollow
    where it does not, and a cross where a seed's run collapsed (its silent network has almost no
    spikes, which is no sparsity)."""
    tables = list(dict.fromkeys(frame["table"]))
    fig, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 3.8), squeeze=False, sharey=True)
    for ax, table in zip(axes[0], tables, strict=True):
        mine = frame[frame["table"] == table].reset_index(drop=True)
        x = np.arange(len(mine))
        for i, row in mine.iterrows():
            color = PALETTE[row["schedule"]]
            ax.errorbar(x[i] - 0.15, row["chosen_spike_reduction_mean"] * 100,
                        yerr=np.nan_to_num(row["chosen_spike_reduction_std"] * 100), marker="o", color=color,
                        ls="none")
            collapsed = isinstance(row.get("collapsed_seeds"), str) and row["collapsed_seeds"].strip()
            ax.errorbar(x[i] + 0.15, row["spike_reduction_mean"] * 100,
                        yerr=np.nan_to_num(row["spike_reduction_std"] * 100), marker="X" if collapsed else "s",
                        color=color, ls="none", mfc=color if row["holds"] != "" and bool(row["holds"]) else "white")
            if collapsed:  # a silent network "removes" every spike: say so, it is no sparsity
                ax.annotate(f"collapsed (seeds {row['collapsed_seeds']})",
                            (x[i] + 0.15, row["spike_reduction_mean"] * 100), textcoords="offset points",
                            xytext=(6, -4), fontsize="x-small")
        ax.set(xticks=x, xticklabels=[s.replace("_", " ") for s in mine["schedule"]],
               title=f"{TABLE_MARKERS[table][1]}: chosen (o) and held out (s)")
        ax.tick_params(axis="x", rotation=30)
    axes[0][0].set_ylabel("test spike reduction (%)")
    return fig


def spikes_synops_energy(spikes: list, synops: list, ref: dict, layers=snn.LAYERS):
    """Why spikes and SynOps differ, and what the energy estimate counts, for one evaluation:
    spikes and SynOps per hidden layer (their ratio is the layer's mean fan-out), and the
    energy per image part by part (`lib.energy.breakdown`) beside the non-spiking LeNet."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    x = np.arange(len(layers))
    axes[0].bar(x, spikes, color="tab:blue")
    axes[0].set(xticks=x, xticklabels=layers, ylabel="spikes per image", title="Spikes per hidden layer", yscale="log")
    axes[1].bar(x, synops, color="tab:orange")
    for xi, sp, so in zip(x, spikes, synops, strict=True):
        if sp:
            axes[1].annotate(f"x {so / sp:.0f}", (xi, so), ha="center", va="bottom", fontsize="small")
    axes[1].set(xticks=x, xticklabels=layers, ylabel="SynOps (ACs) per image", yscale="log",
                title="SynOps = spikes x fan-out (mean fan-out above)")  # log: layers differ by 1000x
    parts = energy.breakdown(synops, ref, layers)
    bottom = 0.0
    for (name, pj), color in zip(parts.items(), sns.color_palette("muted", len(parts)), strict=True):
        axes[2].bar(0, pj / 1e6, bottom=bottom, color=color, label=name)
        bottom += pj / 1e6
    axes[2].bar(1, ref["ann_energy_pj"] / 1e6, color="grey", label="ANN: every layer's MACs")
    axes[2].set(xticks=[0, 1], xticklabels=["SNN", "same LeNet, ANN"], ylabel="energy per image (µJ)",
                title="Energy estimate (Horowitz 2014, 45 nm)")
    axes[2].legend(fontsize="x-small", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


def pareto_fronts(front):
    """The validation Pareto front of each schedule (`lib.analysis.select.pareto_front`), and the same
    points on test: accuracy against spikes, a step line per schedule and seed, the baseline's
    own front in black."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, split in zip(axes, ("val", "test"), strict=True):
        labelled = set()
        for (schedule, _), line in front.groupby(["schedule", "seed"], sort=False):
            color = "black" if schedule == "baseline" else PALETTE[schedule]
            label = None if schedule in labelled else schedules.LABELS[schedule]
            labelled.add(schedule)
            ax.plot(line[f"{split}_spikes"], line[f"{split}_accuracy"] * 100, "o-", ms=4, color=color, label=label,
                    drawstyle="steps-post" if split == "val" else "default", lw=1.2)
        ax.set(xlabel=f"{split} spikes per image", title="Fronts on validation (selection)" if split == "val"
               else "The same points on test")
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize="x-small", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# Pictures of sparsity: spike rasters and per-neuron firing rates, two networks side by side.

_PAIR = (PALETTE["baseline"], PALETTE["linear"])  # the reference network, then the sparse one


def spike_trains(model, image) -> list[torch.Tensor]:
    """Per hidden layer, the (num_steps, neurons) spikes of `model` on one image (3, 32, 32).

    Recorded from the LIF layers of a step-by-step copy of the model (the layer-by-layer
    path gives the same spikes but never holds one step's spikes of every layer)."""
    import copy

    if image.dim() != 3:
        raise ValueError(f"one image (3, 32, 32) expected, got shape {tuple(image.shape)}")
    twin = copy.deepcopy(model).eval()
    twin.step_by_step = True
    steps = [[] for _ in snn.LAYERS]
    hooks = [lif.register_forward_hook(lambda _m, _i, out, i=i: steps[i].append(out[0][0].flatten()))
             for i, lif in enumerate(twin.lif)]
    try:
        with torch.no_grad():
            twin.activity(image.unsqueeze(0))
    finally:
        for h in hooks:
            h.remove()
    return [torch.stack(s) for s in steps]


def raster_data(model, image, max_neurons: int = 120, seed: int = 0) -> list[dict]:
    """What `spike_raster_figure` draws for one network, per hidden layer: `neurons` (the
    indices shown: all, or `max_neurons` drawn at random with `seed` for larger layers, the
    same for every network), `times` and `rows` of each shown spike (row = position in
    `neurons`), and `total`, the layer's spikes on the image over all its neurons."""
    if max_neurons < 1:
        raise ValueError(f"max_neurons must be >= 1, got {max_neurons}")
    out = []
    for name, spk in zip(snn.LAYERS, spike_trains(model, image), strict=True):
        n = spk.shape[1]
        pick = torch.arange(n)
        if n > max_neurons:
            gen = torch.Generator().manual_seed(seed)
            pick = torch.randperm(n, generator=gen)[:max_neurons].sort().values
        t, row = spk[:, pick].nonzero(as_tuple=True)
        out.append({"layer": name, "neurons": pick.numpy(), "times": t.numpy(), "rows": row.numpy(),
                    "total": int(spk.sum()), "size": n, "num_steps": spk.shape[0]})
    return out


def spike_raster_figure(model_a, model_b, image, labels=("baseline", "sparse"), max_neurons: int = 120,
                        seed: int = 0):
    """Spike rasters of two networks on one image: a row per hidden layer, a column per network.

    Each dot is one spike (time step, neuron); layers with more than `max_neurons` neurons
    show the same random subset in both columns. Titles give the layer's total spikes on
    the image (all its neurons). The data is `raster_data`'s, kept as `fig.raster_data`.
    """
    data = [raster_data(m, image, max_neurons, seed) for m in (model_a, model_b)]
    rows = len(snn.LAYERS)
    fig, axes = plt.subplots(rows, 2, figsize=(9, 2.2 * rows), sharex=True, squeeze=False)
    for col, (label, layers) in enumerate(zip(labels, data, strict=True)):
        for row, d in enumerate(layers):
            ax = axes[row, col]
            ax.scatter(d["times"] + 1, d["rows"], s=40, marker="|", color=_PAIR[col], linewidths=2)
            shown = f"{len(d['neurons'])} of {d['size']} neurons" if len(d["neurons"]) < d["size"] else \
                f"all {d['size']} neurons"
            ax.set_title(f"{label}, {d['layer']}: {d['total']} spikes ({shown} shown)", fontsize="small")
            ax.set_ylim(-0.5, len(d["neurons"]) - 0.5)
            ax.set_xlim(0.5, d["num_steps"] + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if col == 0:
                ax.set_ylabel("neuron")
    for ax in axes[-1]:
        ax.set_xlabel("time step")
    fig.tight_layout()
    fig.raster_data = dict(zip(labels, data, strict=True))
    return fig


def firing_rates(model, images, batch_size: int = 256) -> list[np.ndarray]:
    """Per hidden layer, each neuron's firing rate on `images`: spikes / (num_steps * images), in [0, 1]."""
    if len(images) == 0:
        raise ValueError("firing_rates needs at least one image")
    totals = None
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            _, counts = model.activity(images[start:start + batch_size])
            sums = [c.sum(0).flatten().double() for c in counts]
            totals = sums if totals is None else [a + b for a, b in zip(totals, sums, strict=True)]
    return [(t / (model.num_steps * len(images))).cpu().numpy() for t in totals]


def firing_rate_histogram_figure(model_a, model_b, images, labels=("baseline", "sparse"), bins: int = 30):
    """Histograms of per-neuron firing rates (`firing_rates`) of two networks, a panel per
    hidden layer; the legend gives each network's fraction of silent neurons (rate 0).
    The rates are kept as `fig.firing_rates` ({label: [per-layer arrays]})."""
    rates = {label: firing_rates(m, images) for label, m in zip(labels, (model_a, model_b), strict=True)}
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig, axes = plt.subplots(1, len(snn.LAYERS), figsize=(3.4 * len(snn.LAYERS), 3.2), squeeze=False)
    for i, (ax, name) in enumerate(zip(axes[0], snn.LAYERS, strict=True)):
        for col, (label, r) in enumerate(rates.items()):
            silent = float(np.mean(r[i] == 0))
            ax.hist(r[i], bins=edges, histtype="step", lw=1.5, color=_PAIR[col], label=f"{label} (silent {silent:.0%})")
        ax.set_yscale("log")
        ax.set(title=name, xlabel="firing rate (spikes / neuron / step)")
        ax.legend(fontsize="x-small")
    axes[0, 0].set_ylabel("neurons")
    fig.tight_layout()
    fig.firing_rates = rates
    return fig
