"""Recurrent networks on the embedded digits (issue 22): the LSTM and the bidirectional LSTM
specs read each digit as 28 rows of 28 pixels; LeNet, a convolutional network of the same
task, beside them. 3 seeds.

    python experiments/recurrent.py run --out experiments/results/recurrent.jsonl
    python experiments/recurrent.py table experiments/results/recurrent.jsonl

Data: the embedded `mnist_subset` (4,000 train / 1,000 test, fixed split); the figure is the
accuracy on the 1,000 test images after the last epoch. Each spec trains with its own recipe
(the LSTMs: Adam 0.001, batch 64; LeNet: SGD 0.01 with momentum 0.9, batch 64), all for
EPOCHS epochs.
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
NETWORKS = ("lstm", "bilstm", "lenet")
EPOCHS = 20
__doc__ = __doc__.replace("EPOCHS", str(EPOCHS))


def run(args) -> None:
    for seed in args.seeds:
        for spec in args.specs or NETWORKS:
            train_and_record(SPECS / f"{spec}.yaml", ["data.dataset=mnist_subset",
                                                      f"train.epochs={EPOCHS}",
                                                      f"train.seed={seed}"],
                             args.out, spec=spec, seed=seed)


def table(files) -> str:
    import zoo
    from zoo.macs import format_macs, model_macs
    from zoo.summary import parameter_counts

    records = read_records(files)
    lines = ["| spec | parameters | MACs per image | test accuracy % | seconds per run |",
             "|---|---|---|---|---|"]
    for spec in NETWORKS:
        runs = [record for record in records if record["spec"] == spec]
        if not runs:
            continue
        model = zoo.build_model(SPECS / f"{spec}.yaml")
        seconds = sorted(record["seconds"] for record in runs)[len(runs) // 2]
        lines.append(f"| {spec} | {parameter_counts(model)['total_params']:,} | "
                     f"{format_macs(model_macs(model))} | "
                     f"{mean_and_spread([record['test_accuracy'] * 100 for record in runs])} | "
                     f"{seconds:.0f} |")
    return "\n".join(lines)


def add_run_arguments(running) -> None:
    running.add_argument("--specs", nargs="+", choices=NETWORKS, help="default: every one")
    running.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    running.add_argument("--out", required=True)


if __name__ == "__main__":
    command_line(__doc__, add_run_arguments, run, table)
