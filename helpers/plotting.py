"""Seaborn figures for the report; each function returns a matplotlib Figure."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from io import BytesIO

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Image, Markdown, display
from matplotlib.ticker import PercentFormatter

from . import io
from .intervals import half_width
from .pruning import layer_scores, method
from .strategies import ONESHOT, RANKINGS, STRATEGIES, strategy as registered
from .tables import layer_columns

METHOD_COLOURS = {"weight": "tab:blue", "unit": "tab:orange"}

sns.set_theme(style="whitegrid", context="notebook")


def save(fig: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> bytes:
    """Write ``fig`` as PNG at ``path`` atomically; returns the PNG's bytes."""
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    png = buffer.getvalue()
    io.atomic_write(path, lambda tmp: tmp.write_bytes(png))
    return png


def show(fig: plt.Figure, path: str | os.PathLike, alt: str, caption: str) -> None:
    """Save ``fig`` at ``path`` (:func:`save`) and show it in the notebook with ``alt`` as its
    alternative text (what it shows, for a reader who cannot see it) and ``caption`` below it
    (what to look at). The figure is closed, so the inline backend does not show it twice."""
    png = save(fig, path)
    plt.close(fig)
    display(Image(data=png, format="png", metadata={"alt": alt}))
    display(Markdown(f"*{caption}*"))


def sample_grid(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], per_class: int = 8) -> plt.Figure:
    """The first ``per_class`` images of every class (uint8 images, N x 28 x 28), one row a class."""
    n_classes = len(classes)
    fig, axes = plt.subplots(n_classes, per_class, figsize=(per_class * 0.9, n_classes * 0.95))
    for c in range(n_classes):
        idx = torch.nonzero(labels == c).flatten()[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.axis("off")
            if j < len(idx):
                ax.imshow(images[idx[j]].numpy(), cmap="gray_r")
        axes[c, 0].set_title(str(classes[c]), fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def class_balance(labels: Mapping[str, torch.Tensor], classes: Sequence[str]) -> plt.Figure:
    """Share of each class per split (``labels`` maps split name -> label tensor)."""
    frame = pd.concat(
        pd.DataFrame({"class": [classes[i] for i in y.tolist()], "split": split}) for split, y in labels.items()
    )
    shares = frame.groupby("split")["class"].value_counts(normalize=True).rename("share").reset_index()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(shares, x="class", y="share", hue="split", order=list(classes), ax=ax)
    ax.axhline(1 / len(classes), color="grey", ls="--", lw=1, label="uniform")
    ax.set(ylabel="share of split", xlabel="")
    ax.legend()
    fig.tight_layout()
    return fig


def pixel_histogram(images: torch.Tensor, mean: float, std: float) -> plt.Figure:
    """Histogram of pixel values in [0, 1] with the mean and one standard deviation marked."""
    # the 256 byte values weighted by their counts: the histogram of every pixel, without
    # converting and binning 47 million of them
    counts = torch.bincount(images.flatten(), minlength=256).double().numpy()
    values = (torch.arange(256, dtype=torch.uint8).float() / 255).numpy()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(values, bins=64, weights=counts, log=True, color="tab:grey")
    ax.axvline(mean, color="tab:red", label=f"mean {mean:.4f}")
    ax.axvspan(max(0.0, mean - std), mean + std, color="tab:red", alpha=0.1, label=f"± std {std:.4f}")
    ax.set(xlabel="pixel value", ylabel="count (log)")
    ax.legend()
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame) -> plt.Figure:
    """Loss and accuracy per epoch, train and test (one line per seed when a ``seed`` column exists)."""
    long = history.melt(
        id_vars=[c for c in ("epoch", "seed") if c in history],
        value_vars=[c for c in history if c.endswith(("_loss", "_accuracy"))],
    )
    long[["split", "metric"]] = long["variable"].str.rsplit("_", n=1, expand=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        sns.lineplot(long[long.metric == metric], x="epoch", y="value", hue="split", marker="o", ax=ax,
                     errorbar=("sd", 1) if "seed" in long and long["seed"].nunique() > 1 else None)
        ax.set(ylabel=metric, title=f"{metric} per epoch")
    fig.tight_layout()
    return fig


REGISTRIES = {"strategy": STRATEGIES, "ranking": RANKINGS}
"""Where the line style, marker and label of every strategy (and ranking) are kept, the same in
every figure; the colour is the method's (:data:`METHOD_COLOURS`)."""

KEY_LEVELS = (0, 50, 90, 99, 99.8)
"""Levels labelled on the kept-fraction axes."""


def _kept_axis(ax: plt.Axes, ks: Sequence[float]) -> None:
    """Make the x axis the percentage of weights (or neurons) kept, 100 - k, on a log scale
    running from dense on the left to the sparsest level on the right, labelled with k."""
    ax.set_xscale("log")
    ticks = [k for k in KEY_LEVELS if min(ks) <= k <= max(ks)] or list(ks)
    ax.set_xticks([100 - k for k in ticks], [f"{k:g}" for k in ticks])
    ax.minorticks_off()
    ax.set_xlim(100 * 1.15, (100 - max(ks)) / 1.15)
    ax.set_xlabel("k, % pruned per layer\n(log scale of what is kept)")


def _lines(ax: plt.Axes, results: pd.DataFrame, x: str, style: str, band: bool = True) -> None:
    """One line per method and ``style`` value: mean accuracy over seeds against ``x``, with the
    band of its 95 % interval (:mod:`helpers.intervals`); colours by method, dashes and markers
    by ``style``; accuracy in percent."""
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    for (method_name, kind), rows in results.groupby(["method", style], sort=False):
        stats = rows.groupby("k").agg(x=(x, "mean"), mean=("accuracy", "mean"), ci=("accuracy", half_width)).fillna(0)
        drawn = REGISTRIES[style][kind]
        colour = METHOD_COLOURS[method_name]
        ax.plot(stats.x, stats["mean"], ls=drawn.line, marker=drawn.marker, ms=4, color=colour,
                label=f"{method_name}, {drawn.label}")
        if band:
            ax.fill_between(stats.x, stats["mean"] - stats["ci"], stats["mean"] + stats["ci"], color=colour,
                            alpha=0.12, lw=0)


def accuracy_vs_k(results: pd.DataFrame, style: str = "strategy", title: str = "") -> plt.Figure:
    """Test accuracy against level k, one line per method (colour) and ``style`` value (dashes
    and markers), mean and 95 % interval over seeds, on two panels: the whole range, and the top five points
    below the dense accuracy, where retraining strategies differ. k runs on a log scale of the
    fraction kept, so 90-99.8 % is as wide as 0-90 %. The dense accuracy (one-shot k = 0) and one
    point below it are marked; the legend sits below the panels."""
    results = results.assign(kept=100 - results["k"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dense = results.loc[results.k == 0, "accuracy"].mean()
    for ax, zoom in zip(axes, (False, True)):
        _lines(ax, results, "kept", style)
        ax.axhline(dense, color="grey", ls="--", lw=1, label=f"dense {dense:.2%}")
        ax.axhline(dense - 0.01, color="grey", ls=":", lw=1, label="dense − 1 point")
        _kept_axis(ax, sorted(results["k"].unique()))
        ax.set(ylabel="test accuracy", ylim=(dense - 0.05, dense + 0.005) if zoom else (0, 1.02),
               title=f"{title}: top 5 points" if zoom else title)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def cost_plot(points: pd.DataFrame, dense_weights: float, dense_accuracy: float) -> plt.Figure:
    """Test accuracy against what a pruned network costs: weights remaining (left), the
    multiply-adds spent training it beyond the dense training, as a multiple of that (middle,
    when ``points`` has ``train_macs`` and one-shot networks, which spend nothing beyond it and
    are left out there) and measured
    speed-up of its compact form (right), all log scales, one line per method (colour),
    strategy (dashes) and budget, mean over seeds (``points``: :func:`helpers.comparison.candidates`).
    The y axis shows the top five points below the dense accuracy; lower points fall below it."""
    # training compute as what a network spends beyond the dense training every network starts
    # from (one-shot's, which spends nothing more and so is not drawn there): on an axis of the
    # whole count, fine-tuning's 0.1 % and the ticket's 150 % would sit side by side
    dense_training = points.loc[points["strategy"] == ONESHOT.name, "train_macs"].min() if "train_macs" in points \
        else float("nan")
    if dense_training == dense_training:
        points = points.assign(extra_training=points["train_macs"] / dense_training - 1)
    xs = ["remaining_weights", *(["extra_training"] if "extra_training" in points else []), "measured_speedup"]
    fig, axes = plt.subplots(1, len(xs), figsize=(5.5 * len(xs), 4.4), sharey=True)
    for _, rows in points.groupby("label", sort=False):  # one candidate, one line: its label names it
        rows = rows.sort_values("k")
        method_name, strategy = rows["method"].iloc[0], rows["strategy"].iloc[0]
        epochs = int(rows["epochs"].min())
        drawn = registered(strategy)
        for ax, x in zip(axes, xs):
            drawable = rows[rows[x] > 0] if x == "extra_training" else rows
            ax.plot(drawable[x], drawable["accuracy"], ls=drawn.line, marker=drawn.marker, ms=4,
                    color=METHOD_COLOURS[method_name], alpha=1.0 if epochs <= 1 or drawn.control else 0.55,
                    label=rows["label"].iloc[0])
    for ax in axes:
        ax.axhline(dense_accuracy, color="grey", ls="--", lw=1, label=f"dense {dense_accuracy:.2%}")
        ax.axhline(dense_accuracy - 0.01, color="grey", ls=":", lw=1, label="dense − 1 point")
        ax.set_xscale("log")
    axes[0].set(xlabel="weights remaining (log scale)", ylabel="test accuracy",
                ylim=(dense_accuracy - 0.05, dense_accuracy + 0.005))
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].axvline(dense_weights, color="grey", lw=1)
    axes[0].invert_xaxis()  # fewer weights to the right, like higher k everywhere else
    if "extra_training" in points:
        axes[1].set(xlabel="training beyond the dense model's, in dense trainings (log)")
    axes[-1].set(xlabel="measured speed-up of the compact form, batch 256 (log)")
    speedups = [f for f in (1, 2, 5, 10, 20, 50, 100) if f <= max(points["measured_speedup"].max(), 1) * 1.5]
    axes[-1].set_xticks(speedups, [f"{f}×" for f in speedups])
    axes[-1].minorticks_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def frontier_plot(frontier: pd.DataFrame, dense_weights: float, dense_accuracy: float,
                  references=()) -> plt.Figure:
    """Each method's frontier (``frontier``: :func:`helpers.comparison.frontier`): at every
    weight budget, the test accuracy of the network validation ranks first under it, with the
    band of its 95 % interval, a step down to the left as budgets shrink; the networks chosen are
    marked. ``references``: ``(weights, accuracy, label)`` published points, drawn as crosses.
    Fewer weights to the right, on a log scale; the dense accuracy and one point below it in grey."""
    fig, ax = plt.subplots(figsize=(9, 4.6))
    for method_name, rows in frontier.groupby("method", sort=False):
        rows = rows.sort_values("budget")
        colour = METHOD_COLOURS[method_name]
        ax.step(rows["budget"], rows["accuracy"], where="post", color=colour, label=f"{method_name} pruning")
        ax.fill_between(rows["budget"], rows["accuracy"] - rows["ci"].fillna(0), rows["accuracy"] + rows["ci"].fillna(0),
                        step="post", color=colour, alpha=0.15, lw=0)
        chosen = rows.drop_duplicates("remaining_weights")
        ax.plot(chosen["remaining_weights"], chosen["accuracy"], "o", ms=3, color=colour)
    for weights, accuracy, label in references:
        ax.plot([weights], [accuracy], "kx", ms=8, mew=2, label=label)
    ax.axhline(dense_accuracy, color="grey", ls="--", lw=1, label=f"dense {dense_accuracy:.2%}")
    ax.axhline(dense_accuracy - 0.01, color="grey", ls=":", lw=1, label="dense − 1 point")
    ax.axvline(dense_weights, color="grey", lw=1)
    ax.set(xscale="log", xlabel="at most this many weights (log scale)", ylabel="test accuracy",
           ylim=(dense_accuracy - 0.05, dense_accuracy + 0.005))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.invert_xaxis()  # fewer weights to the right, like higher k everywhere else
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def sensitivity_plot(sensitivity: pd.DataFrame) -> plt.Figure:
    """Accuracy against k when one layer alone is pruned, one line per layer."""
    fig, ax = plt.subplots(figsize=(8, 4))
    sns.lineplot(sensitivity, x="k", y="accuracy", hue="layer", marker="o", ax=ax)
    ax.set(xlabel="k (% of the one layer pruned)", ylabel="test accuracy", ylim=(0, 1.02),
           title=f"{sensitivity['method'].iloc[0]} pruning of one layer at a time")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    fig.tight_layout()
    return fig


def distribution_shift(models: Mapping[str, torch.nn.Module], method_name: str, prune_last: bool = False,
                       bins: int = 60) -> plt.Figure:
    """Per prunable layer, the distribution (density histogram, shared bins) of the surviving
    scores of the method called ``method_name`` in each model of ``models`` (e.g. dense,
    one-shot, fine-tuned): |w| of the non-zero weights, or L2 norms of the non-zero neurons."""
    m = method(method_name)
    scores = {stage: {name: s[s > 0].numpy() for name, s in layer_scores(model, method_name, prune_last).items()}
              for stage, model in models.items()}
    layers = list(next(iter(scores.values())))
    fig, axes = plt.subplots(1, len(layers), figsize=(3.1 * len(layers), 2.9), squeeze=False)
    colours = dict(zip(models, sns.color_palette(n_colors=len(models))))
    for ax, layer in zip(axes.flat, layers):
        values = [v for by_layer in scores.values() for v in [by_layer[layer]] if v.size]
        low, high = min(v.min() for v in values), max(v.max() for v in values)
        edges = np.geomspace(low, high, bins + 1) if m.log_scale else np.linspace(low, high, bins + 1)
        for stage, by_layer in scores.items():
            if by_layer[layer].size:
                density, _ = np.histogram(by_layer[layer], bins=edges, density=True)
                ax.stairs(density, edges, color=colours[stage], label=stage)
        ax.set(title=f"layer = {layer}", xlabel=f"{m.score_label}, surviving {m.unit}s",
               xscale="log" if m.log_scale else "linear")
    axes.flat[0].set_ylabel("density")
    axes.flat[-1].legend(title="stage", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def score_distribution(scores: Mapping[str, torch.Tensor], cutoffs: Mapping[float, Mapping[str, float]],
                       method_name: str) -> plt.Figure:
    """Histogram per layer of the scores the method called ``method_name`` ranks (|w|, or
    neuron L2 norms), with the cut-off of each level k marked (smaller scores are pruned)."""
    m = method(method_name)
    names = list(scores)
    cols = min(len(names), 4)
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    palette = sns.color_palette("rocket_r", len(cutoffs))
    for ax, name in zip(axes.flat, names):
        values = scores[name].flatten().cpu().numpy()
        ax.hist(values, bins=80, color="tab:grey", log=m.log_scale)
        for colour, (k, cut) in zip(palette, cutoffs.items()):
            if not math.isnan(cut[name]):
                ax.axvline(cut[name], color=colour, lw=1.2, label=f"k = {k:g} %")
        ax.set(title=name, xlabel=m.score_label)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def layer_sparsity_plot(results: pd.DataFrame, method_name: str) -> plt.Figure:
    """Measured fraction of zero weights per layer at each k, for one method: one small panel per
    layer (under uniform pruning the pruned layers' lines coincide, and one panel would hide
    all but one), with the line y = k / 100 dashed for reference."""
    cols = layer_columns(results)
    long = results[results.method == method_name].melt(id_vars="k", value_vars=cols, var_name="layer", value_name="zeros")
    long["layer"] = long["layer"].str.removeprefix("sparsity_")
    fig, axes = plt.subplots(1, len(cols), figsize=(2.3 * len(cols), 2.6), sharey=True)
    for ax, (layer, rows) in zip(np.atleast_1d(axes), long.groupby("layer", sort=True)):
        means = rows.groupby("k")["zeros"].mean()
        ax.plot([0, 100], [0, 1], color="grey", ls="--", lw=1)
        ax.plot(means.index, means.values, marker="o", ms=3, color=METHOD_COLOURS[method_name])
        ax.set(title=layer, xlabel="k (%)", xlim=(0, 100), ylim=(-0.02, 1.02))
    np.atleast_1d(axes)[0].set_ylabel("fraction of zero weights")
    fig.suptitle(f"{method_name} pruning: measured sparsity of each layer (dashed: k / 100)", y=1.02)
    fig.tight_layout()
    return fig


def speedup_plot(efficiency: pd.DataFrame) -> plt.Figure:
    """Theoretical speed-up (dense multiply-adds / compact multiply-adds) against the speed-up
    measured at each batch size, by k on the log scale of what is kept, one panel per method
    (log scale); ``efficiency`` in long form (:func:`helpers.measurements.long_form`)."""
    measured = efficiency.assign(**{"speed-up": "measured, batch " + efficiency["batch"].astype(str),
                                    "factor": efficiency["measured_speedup"]})
    theory = efficiency.drop_duplicates(["method", "k"]).assign(**{"speed-up": "theoretical (multiply-adds)",
                                                                   "factor": lambda f: f["theoretical_speedup"]})
    long = pd.concat([theory, measured], ignore_index=True)[["method", "k", "speed-up", "factor"]]
    long["kept"] = 100 - long["k"]
    grid = sns.relplot(long, x="kept", y="factor", hue="speed-up", col="method", kind="line", marker="o",
                       height=3.6, aspect=1.2, facet_kws={"sharey": True, "sharex": False})
    for ax in grid.axes.flat:
        _kept_axis(ax, sorted(long["k"].unique()))
        ax.set_yscale("log")
        ax.axhline(1, color="grey", lw=1, ls="--")
    grid.set_axis_labels("k, % pruned per layer\n(log scale of what is kept)", "speed-up over dense (×)")
    sns.move_legend(grid, "upper center", bbox_to_anchor=(0.45, 0.0), ncol=2, title=None, frameon=False)
    return grid.figure


def tradeoff_plot(points: pd.DataFrame) -> plt.Figure:
    """Test accuracy against measured time per image at batch 256 and against the size on disk of
    the compact model, one line per method and strategy (``points`` joins accuracy and efficiency)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (x, label) in zip(axes, (("us_per_image_b256", "measured time per image at batch 256 (µs)"),
                                     ("disk_kb", "compact model on disk (kB)"))):
        sns.lineplot(points, x=x, y="accuracy", hue="method", style="strategy", palette=METHOD_COLOURS,
                     marker="o", sort=False, estimator=None, ax=ax, legend=ax is axes[0])
        ax.set(xscale="log", xlabel=label, ylabel="test accuracy")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
