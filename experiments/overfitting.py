"""Overfitting and its cures (issue 22): a wide MLP trained on the first 1,000 images of the
embedded digits overfits; the same network with dropout, with weight decay, with early
stopping, and with all three. 3 seeds.

    python experiments/overfitting.py run --threads 1 --out experiments/results/overfitting.jsonl
    python experiments/overfitting.py table experiments/results/overfitting.jsonl
    python experiments/overfitting.py figure experiments/results/overfitting.jsonl \
        -o experiments/results/overfitting.png

Data: `mnist_subset` (4,000 train / 1,000 test, fixed split). The network trains on
train[:1000]; train[3000:] (1,000 images it never trains on) is the validation split reported
every epoch, which early stopping watches; the test split is only evaluated at the end, from
the export. Train accuracy is the export's on train[:1000] (dropout off), not the running
figure of the epoch. Every arm is the SPEC below with --set values, nothing else.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.report import (  # noqa: E402
    command_line, mean_and_spread, read_records, train_and_record)

# Two wide hidden layers (1.9 M weights for 1,000 images), plain SGD with momentum: nothing
# in the spec itself holds the network back. The dropout layers are there at rate 0.
SPEC = """
description: A wide MLP that overfits 1,000 digits (experiments/overfitting.py).
model:
  vars: {classes: 10, dropout: 0.0, input_dropout: 0.0}
  inputs: {image: [28, 28, 1]}
  layers:
    - flatten
    - dropout: {rate: "${input_dropout}"}
    - dense: {name: hidden1, units: 1024, activation: relu}
    - dropout: {rate: "${dropout}"}
    - dense: {name: hidden2, units: 1024, activation: relu}
    - dropout: {rate: "${dropout}"}
    - dense: {name: predictions, units: "${classes}", activation: softmax}
data:
  dataset: mnist_subset
  train_split: train[:1000]
  validation_split: train[3000:]
  eval_split: test
  preprocess: {rescale: 0.00392156862745098}
train:
  batch_size: 32
  epochs: EPOCHS
  optimizer: {sgd: {learning_rate: 0.05, momentum: 0.9}}
  precision: float32
"""
EPOCHS = 60
SPEC = SPEC.replace("EPOCHS", str(EPOCHS))
DROPOUT = ["model.vars.dropout=0.5", "model.vars.input_dropout=0.2"]  # Hinton et al. 2012
WEIGHT_DECAY = ["train.weight_decay=0.0005"]
# Stops after 5 epochs without a lower validation loss and exports the best epoch's weights
EARLY_STOPPING = ["train.early_stopping={monitor: val_loss, patience: 5}"]
ARMS = {"none": [], "dropout": DROPOUT, "weight decay": WEIGHT_DECAY,
        "early stopping": EARLY_STOPPING,
        "early stopping on accuracy": ["train.early_stopping={monitor: val_accuracy, patience: 5}"],
        "all three": DROPOUT + WEIGHT_DECAY + EARLY_STOPPING}
TRAINED_ON = "train[:1000]"


def measured(result) -> dict:
    """The export's accuracy on the images it trained on and on the test split, its loss on
    the validation split, and every epoch's figures for the curves."""
    import zoo

    return {"train_accuracy": zoo.evaluate_export(result.export, split=TRAINED_ON)["accuracy"],
            "test_accuracy": zoo.evaluate_export(result.export, split="test")["accuracy"],
            "validation_loss": result.metrics["loss"],
            "epochs": len(result.history["train"]), "history": result.history["train"]}


def run(args) -> None:
    if args.threads:  # one core per experiment on a shared 2-core machine
        from zoo.devices import use_threads
        use_threads(args.threads)
    for seed in args.seeds:
        for arm in args.arms or ARMS:
            train_and_record(SPEC, [*ARMS[arm], f"train.seed={seed}"], args.out,
                             measure=measured, arm=arm, seed=seed)



def table(files) -> str:
    records = read_records(files)
    lines = ["| arm | train accuracy % | test accuracy % | gap (points) | epochs trained | "
             "lowest validation loss at epoch | validation loss of the export |",
             "|---|---|---|---|---|---|---|"]
    for arm in ARMS:
        runs = [record for record in records if record["arm"] == arm]
        if not runs:
            continue
        figures = [[record["train_accuracy"] * 100 for record in runs],
                   [record["test_accuracy"] * 100 for record in runs],
                   [(record["train_accuracy"] - record["test_accuracy"]) * 100
                    for record in runs],
                   [record["epochs"] for record in runs],
                   [_best_epoch(record["history"]) for record in runs]]
        losses = [record["validation_loss"] for record in runs]
        lines.append(f"| {arm} | " + " | ".join(map(mean_and_spread, figures))
                     + f" | {statistics.mean(losses):.2f} ± {statistics.stdev(losses):.2f} |")
    return "\n".join(lines)


def _best_epoch(history: list[dict]) -> int:
    losses = [epoch["val_loss"] for epoch in history]
    return losses.index(min(losses)) + 1


def curves(files, path: str, seed: int = 0) -> None:
    """Per-epoch training and validation loss and accuracy of each arm, for one seed."""
    from matplotlib.figure import Figure

    records = {record["arm"]: record for record in read_records(files) if record["seed"] == seed}
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    panels = figure.subplots(1, 2)
    for (arm, record), colour in zip(((arm, records[arm]) for arm in ARMS if arm in records),
                                     ("C0", "C1", "C2", "C3", "C5", "C4")):
        epochs = range(1, len(record["history"]) + 1)
        for axes, name in zip(panels, ("loss", "accuracy")):
            axes.plot(epochs, [epoch[name] for epoch in record["history"]], color=colour,
                      linestyle="--", linewidth=1)
            axes.plot(epochs, [epoch[f"val_{name}"] for epoch in record["history"]],
                      color=colour, label=arm)
    for axes, name in zip(panels, ("loss", "accuracy")):
        axes.set_title(name)
        axes.set_xlabel("epoch")
    panels[0].set_yscale("log")
    panels[1].set_ylim(0.8, 1.005)
    panels[1].legend(loc="lower right")
    figure.suptitle(f"MLP 784-1024-1024-10 on 1,000 digits, seed {seed}: training (dashed, "
                    "dropout on) and validation (solid) per epoch")
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


def add_run_arguments(running) -> None:
    running.add_argument("--arms", nargs="+", choices=ARMS, help="default: every one")
    running.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    running.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all)")
    running.add_argument("--out", required=True)


if __name__ == "__main__":
    command_line(__doc__, add_run_arguments, run, table, curves)
