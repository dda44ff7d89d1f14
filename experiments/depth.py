r"""Depth and residuals (issue 22; He et al. 2015, Fig. 1 and 6, at small scale): plain and
residual networks of 20 and 56 layers on the embedded digits. Does the deeper plain network
train worse than the shallower one, and does the residual one not? 3 seeds.

    python experiments/depth.py run --specs plain20 plain56 --out experiments/results/depth.jsonl &
    python experiments/depth.py run --specs resnet20 resnet56 --out experiments/results/depth.jsonl
    python experiments/depth.py table experiments/results/depth.jsonl
    python experiments/depth.py figure experiments/results/depth.jsonl \
        -o experiments/results/depth.png

(the two `run`s side by side, one core each; any split of specs and seeds over processes
gives the same records.) The specs are the CIFAR ones (specs/resnet20.yaml,
specs/resnet56.yaml, and specs/plain20.yaml, specs/plain56.yaml, which extend them and drop the
shortcut), given a 28x28x1 input and MNIST's mean and deviation. Data: the first TRAIN_IMAGES
of `mnist_subset`'s 4,000 training images, its 1,000 test images. The paper's recipe (SGD with
momentum 0.9, weight decay 1e-4, batch normalization, the rate divided by 10 twice late in the
run) made short: EPOCHS epochs of batches of BATCH at a rate of RATE (the paper's 0.1 at 128,
scaled with the batch), divided by 10 after epochs DROPS, no augmentation, one thread per
run. The
training error is the running one of each epoch (as the paper's curves), the test error is
measured on the 1,000 test images after each epoch.
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

SPECS = Path(__file__).resolve().parents[1] / "specs"
NETWORKS = {"plain20": "plain-20", "plain56": "plain-56", "resnet20": "ResNet-20",
            "resnet56": "ResNet-56"}
EPOCHS, BATCH, RATE, TRAIN_IMAGES, DROPS = 8, 64, 0.05, 3000, [5, 7]
RECIPE = ["data.dataset=mnist_subset", "model.inputs.image=[28, 28, 1]",
          "data.preprocess.mean=[0.1307]", "data.preprocess.std=[0.3081]",
          "data.augment=null",  # the template's flips and crops are CIFAR's
          f"data.train_split=train[:{TRAIN_IMAGES}]", f"train.epochs={EPOCHS}",
          f"train.batch_size={BATCH}",
          f"train.optimizer={{sgd: {{learning_rate: {RATE}, momentum: 0.9}}}}",
          f"train.schedule={{step: {{epochs: {DROPS}}}}}",
          "train.threads=1"]
for name, value in (("EPOCHS", EPOCHS), ("BATCH", BATCH), ("RATE", RATE),
                    ("DROPS", " and ".join(map(str, DROPS))),
                    ("TRAIN_IMAGES", f"{TRAIN_IMAGES:,}")):
    __doc__ = __doc__.replace(name, str(value))


def run(args) -> None:
    for seed in args.seeds:
        for spec in args.specs or NETWORKS:
            train_and_record(SPECS / f"{spec}.yaml", [*RECIPE, f"train.seed={seed}"], args.out,
                             measure=with_curves, spec=spec, seed=seed)


def with_curves(result) -> dict:
    """The test accuracy, and the training and test accuracy of every epoch."""
    epochs = result.history["train"]
    return {"test_accuracy": result.metrics["accuracy"],
            **{name: [epoch[name] for epoch in epochs] for name in ("accuracy", "val_accuracy")}}



def _errors(runs: list[dict], curve: str) -> list[list[float]]:
    """Each run's per-epoch error in percent, from its per-epoch accuracy."""
    return [[100 * (1 - accuracy) for accuracy in record[curve]] for record in runs]


def table(files) -> str:
    import zoo
    from zoo.summary import parameter_counts

    records = read_records(files)
    lines = ["| network | parameters | training error % (last epoch) | test error % | "
             "CPU seconds per run |", "|---|---|---|---|---|"]
    for spec, label in NETWORKS.items():
        runs = [record for record in records if record["spec"] == spec]
        if not runs:
            continue
        model = zoo.build_model(SPECS / f"{spec}.yaml")
        # CPU time: the machine was shared, so wall time says more about the neighbours
        seconds = sorted(record["cpu_seconds"] for record in runs)[len(runs) // 2]
        training = [errors[-1] for errors in _errors(runs, "accuracy")]
        test = [100 * (1 - record["test_accuracy"]) for record in runs]
        lines.append(f"| {label} | {parameter_counts(model)['total_params']:,} | "
                     f"{mean_and_spread(training)} | {mean_and_spread(test)} | {seconds:.0f} |")
    return "\n".join(lines)


def figure(files, out: str) -> None:
    """Fig. 6's layout: plain networks left, residual ones right; the training error dashed,
    the test error solid, each the mean over seeds."""
    from matplotlib.figure import Figure

    records = read_records(files)
    drawing = Figure(figsize=(10, 4), layout="constrained")
    panels = drawing.subplots(1, 2, sharey=True)
    for axes, family in zip(panels, ("plain", "resnet")):
        for spec, colour in ((f"{family}20", "tab:orange"), (f"{family}56", "tab:red")):
            runs = [record for record in records if record["spec"] == spec]
            if not runs:
                continue
            for curve, style, what in (("accuracy", "--", "train"), ("val_accuracy", "-", "test")):
                mean = [statistics.mean(epoch) for epoch in zip(*_errors(runs, curve))]
                axes.plot(range(1, len(mean) + 1), mean, style, color=colour,
                          label=f"{NETWORKS[spec]} {what}")
        seeds = {record["seed"] for record in records if record["spec"].startswith(family)}
        axes.set_title(f"{'plain' if family == 'plain' else 'residual'} networks "
                       f"(mean of {len(seeds)} seeds)")
        axes.set_xlabel("epoch")
        axes.set_yscale("log")
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize="small")
    panels[0].set_ylabel("error % (dashed: training, solid: test)")
    drawing.suptitle(f"mnist_subset, {TRAIN_IMAGES:,} training images, {EPOCHS} epochs",
                     fontsize="medium")
    drawing.savefig(out, dpi=100)


def add_run_arguments(running) -> None:
    running.add_argument("--specs", nargs="+", choices=NETWORKS, help="default: every one")
    running.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    running.add_argument("--out", required=True)


if __name__ == "__main__":
    command_line(__doc__, add_run_arguments, run, table, figure)
