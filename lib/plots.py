"""Figures of the notebooks: each function takes data and returns a matplotlib Figure.

Tutorial figures (train notebook): a LIF trace, the two surrogate gradients, a
schedule's weight over the epochs. Results figures (both notebooks): training curves,
spikes per layer, the validation sparsity-accuracy scatter with the selected points,
and test accuracy against spikes of the selected rows. `save` writes PNG and PDF.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from . import schedules, snn
from .paper import LOSS_FUNCTION
from .select import TOLERANCES

sns.set_theme(style="whitegrid", context="notebook")
PALETTE = dict(zip(schedules.NAMES, sns.color_palette("colorblind", len(schedules.NAMES)), strict=True))
TABLE_MARKERS = {"table1": ("*", "Table 1 (no loss)"), "table2": ("X", "Table 2 (<= 1 pp loss)")}


def save(fig, folder, name: str) -> list[Path]:
    """Write `name`.png and `name`.pdf into `folder`; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return paths


def lif_trace(cur: float = 0.8, beta: float = 0.5, threshold: float = 1.0, num_steps: int = 3):
    """Membrane and spikes of one LIF neuron under a constant input current."""
    lif = snn.LIF(beta=beta, threshold=threshold)
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


def spikes_per_layer(rows: dict, layers=snn.LAYERS):
    """Grouped bars: `rows` maps a label to its spikes per image in each hidden layer."""
    fig, ax = plt.subplots(figsize=(1.2 + 1.4 * len(layers), 3.5))
    width = 0.8 / max(1, len(rows))
    for i, (label, values) in enumerate(rows.items()):
        ax.bar(np.arange(len(layers)) + i * width, values, width, label=label)
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, [f"{name}" for name in layers])
    ax.set(ylabel="spikes per image", title="Spikes per hidden layer (test)")
    ax.legend(fontsize="x-small")
    return fig


def sparsity_accuracy(pts, selected: dict):
    """Every (sigma0, epoch) point: validation spikes vs accuracy, a panel per schedule.

    The baseline's points are grey in every panel; `selected` maps a table name to its
    `lib.select.select` frame, whose points are marked; dotted lines are the references.
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
        ax.set(title=LOSS_FUNCTION[schedule], xlabel="val spikes per image", ylabel="val accuracy (%)")
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
