"""Pictures of training and evaluation: curves per epoch (in every export) and the confusion
matrix (from `zoo evaluate`). Drawn with matplotlib's Figure directly (the Agg canvas), so no
display or pyplot state is involved."""

from __future__ import annotations

import os
import re
import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

NOT_CURVES = ("lr", "seconds")  # per-epoch values that are not train/validation metrics
ANNOTATED_CLASSES = 20  # up to this many classes, every cell shows its count
LABELED_CLASSES = 40  # up to this many, the axes name the classes


def _epochs(histories: dict) -> tuple[list[dict], list[tuple[str, int]]]:
    """All phases' epochs in order, and (phase name, first epoch index) of each phase."""
    epochs, starts = [], []
    for phase, history in histories.items():
        starts.append((phase, len(epochs)))
        epochs.extend(history)
    return epochs, starts


def _metric_names(epochs: list[dict]) -> list[str]:
    names = []
    for epoch in epochs:
        for key in epoch:
            name = key.removeprefix("val_")
            if name not in names and name not in NOT_CURVES:
                names.append(name)
    return sorted(names, key=lambda name: name != "loss")  # loss first, then as trained


def plot_training_curves(histories: dict, path: str, title: str) -> None:
    """One panel per metric (train and validation per epoch) and one for the learning rate;
    phases (pretraining, head, training) are marked and named."""
    epochs, starts = _epochs(histories)
    if not epochs:
        return
    names = _metric_names(epochs)
    rates = {epoch["lr"] for epoch in epochs if "lr" in epoch}
    panels = [*names, "lr"] if len(rates) > 1 else names  # a constant rate says nothing
    figure = Figure(figsize=(4.6 * len(panels), 3.8 + 0.2 * (len(starts) > 1)),
                    layout="constrained")
    x = np.arange(1, len(epochs) + 1)
    for axes, name in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = [epoch.get(key, np.nan) for epoch in epochs]
            if not np.all(np.isnan(values)):
                axes.plot(x, values, marker="o" if len(x) <= 30 else None, markersize=3,
                          label="learning rate" if name == "lr" else label)
        if name == "lr":
            axes.set_yscale("log")
        axes.set_title("learning rate" if name == "lr" else name)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        if name != "lr":
            axes.legend(fontsize="small")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        for _, start in starts[1:]:
            axes.axvline(start + 0.5, color="grey", linestyle=":", linewidth=1)
    if len(starts) > 1:  # name the phases between the dotted lines, wrapped to the width
        phases = "phases (first epoch): " + ", ".join(f"{phase} {start + 1}"
                                                      for phase, start in starts)
        title += "\n" + "\n".join(textwrap.wrap(phases, width=int(28 * len(panels))))
    figure.suptitle(title, fontsize="medium")
    figure.savefig(path, dpi=100)


def confusion_matrix_path(export: str, metrics: dict) -> str:
    """EXPORT/confusion_matrix-<dataset>-<split>.png, the split's slicing made file-safe; for a
    file converted in an export (model.onnx), -model_onnx ends the name."""
    name = re.sub(r"[^\w.-]+", "_", f"{metrics['dataset']}-{metrics['split']}").strip("_")
    if os.path.isfile(export):
        export, name = os.path.dirname(export), f"{name}-{os.path.basename(export)}"
    return os.path.join(export, f"confusion_matrix-{name.replace('.', '_')}.png")


def plot_confusion_matrix(metrics: dict, path: str) -> None:
    """Counts with true classes as rows and predictions as columns, as `zoo evaluate` prints."""
    confusion = metrics["confusion_matrix"]
    names = confusion["labels"]
    counts = np.array(confusion["rows_true_columns_predicted"])
    size = min(4 + 0.45 * len(names), 16)
    figure = Figure(figsize=(size + 1.2, size), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8, label="images")
    if len(names) <= LABELED_CLASSES:
        axes.set_xticks(range(len(names)), names, rotation=90 if max(map(len, names)) > 3 else 0)
        axes.set_yticks(range(len(names)), names)
    if len(names) <= ANNOTATED_CLASSES:
        dark = counts.max() / 2
        for (row, column), count in np.ndenumerate(counts):
            axes.text(column, row, str(count), ha="center", va="center", fontsize="small",
                      color="white" if count > dark else "black")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"{metrics['dataset']} / {metrics['split']}: {metrics['examples']:,} images, "
                   f"accuracy {metrics['accuracy']:.2%}", fontsize="medium")
    figure.savefig(path, dpi=100)
