"""What today's training tricks do on the embedded digits (issue 19's ablation): each added
alone to a baseline recipe, LeNet and ResNet-20, 3 seeds.

    python experiments/recipes.py run --spec lenet --out experiments/results/recipes.jsonl
    python experiments/recipes.py run --spec resnet20 --out experiments/results/recipes.jsonl
    python experiments/recipes.py table experiments/results/recipes.jsonl

Data: the embedded `mnist_subset` (4,000 train / 1,000 test, fixed split); the figure is the
accuracy on the 1,000 test images after the last epoch (with `ema`, of the averaged
weights), the split nothing is tuned on. Baselines: LeNet with its spec's recipe (20 epochs,
SGD 0.01 with momentum 0.9, batch 64); ResNet-20 with its spec's recipe shortened to 15
epochs (SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, the rate divided by 10 at
epochs 10 and 13, flips and 4-pixel crops). Each variant adds one thing to the baseline:
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.report import (  # noqa: E402
    command_line, mean_and_spread, read_records, train_and_record)

SPECS = Path(__file__).resolve().parents[1] / "specs"
BASELINES = {
    "lenet": ["data.dataset=mnist_subset"],
    "resnet20": ["data.dataset=mnist_subset", "train.epochs=15",
                 "train.schedule={step: {epochs: [10, 13], factor: 0.1}}"],
}
VARIANTS = {  # what each adds to the baseline, as --set values
    "baseline": [],
    "+ label smoothing 0.1": ["train.label_smoothing=0.1"],
    "+ mixup 0.2": ["data.augment.mixup=0.2"],
    "+ cutmix 1.0": ["data.augment.cutmix=1.0"],
    "+ random erasing 0.25": ["data.augment.random_erasing=0.25"],
    "+ RandAugment 2 ops, magnitude 9": ["data.augment.randaugment={num_ops: 2, magnitude: 9}"],
    "+ EMA 0.99": ["train.ema=0.99"],
    "+ cosine, 2 warm-up epochs": ["train.schedule={cosine: {warmup_epochs: 2}}"],
}
__doc__ += "".join(f"\n- {name}: {', '.join(sets) or 'nothing'}" for name, sets in
                   VARIANTS.items())


def run(args) -> None:
    variants = args.variants or list(VARIANTS)
    for seed in args.seeds:
        for variant in variants:
            train_and_record(SPECS / f"{args.spec}.yaml",
                             [*BASELINES[args.spec], *VARIANTS[variant], f"train.seed={seed}"],
                             args.out, spec=args.spec, variant=variant, seed=seed)


def table(files) -> str:
    records = read_records(files)
    specs = [spec for spec in BASELINES if any(record["spec"] == spec for record in records)]
    lines = ["| variant | " + " | ".join(f"{spec}, test accuracy %" for spec in specs) + " |",
             "|---" * (len(specs) + 1) + "|"]
    for variant in VARIANTS:
        cells = []
        for spec in specs:
            values = [record["test_accuracy"] * 100 for record in records
                      if record["spec"] == spec and record["variant"] == variant]
            cells.append(mean_and_spread(values) if values else "-")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_run_arguments(running) -> None:
    running.add_argument("--spec", choices=BASELINES, required=True)
    running.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    running.add_argument("--variants", nargs="+", choices=VARIANTS,
                         help="only these (default: every one)")
    running.add_argument("--out", required=True)


if __name__ == "__main__":
    command_line(__doc__, add_run_arguments, run, table)
