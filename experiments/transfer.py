"""Transfer from little labelled data: a CNN trained on digits 0-4, moved to digits 5-9 with
100 labels (issue 18's experiment), through the zoo's own `init`, `freeze` and `stages`.

    python experiments/transfer.py run --seeds 0 1 2 --out experiments/results/transfer.jsonl
    python experiments/transfer.py run --seeds 0 1 2 --per-class 4 \
        --out experiments/results/transfer.jsonl
    python experiments/transfer.py table experiments/results/transfer.jsonl

Data: the embedded `mnist_subset` (4,000 train / 1,000 test, fixed split), written out as
folders of PNG images, as a user's own data would be:

- source: every training image of the digits 0-4 (a folder; its fixed 80/20 split);
- target: the first 20 training images of each digit 5-9 (100 labels; `--per-class` changes
  it; `all` of the folder trains), evaluated on every test image of the digits 5-9 (a second
  folder, never trained on and never used to choose anything).

The network is specs/lenet.yaml (two convolutions, three dense layers). Per seed, LeNet is
trained on the source, exported, and the target is trained three ways for the same number
of epochs:

- scratch: random initialization, everything trained;
- frozen: the source's convolutions and hidden dense layers (`init`, without the output
  layer, which starts fresh for the new classes) frozen (`train.freeze`), the head trained;
- frozen convolutions: the same start, only the two convolutions frozen;
- two stages: the same start; the head alone first, then everything at a tenth of the rate
  (`train.stages`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from zoo.data import load_split  # noqa: E402
from zoo.evaluation import evaluate_export  # noqa: E402
from experiments.report import command_line, mean_and_spread, read_records  # noqa: E402

LENET = Path(__file__).resolve().parents[1] / "specs" / "lenet.yaml"
SOURCE_CLASSES, TARGET_CLASSES = range(0, 5), range(5, 10)
FEATURES = ["conv1", "conv2", "fc1", "fc2"]  # all but the output layer
CONVOLUTIONS = ["conv1", "conv2"]
ARMS = ("scratch", "frozen", "frozen convolutions", "two stages")


def write_folders(root: Path, per_class: int) -> dict:
    """The three folders of PNG digits; their paths by role."""
    folders = {"source": root / "source", "target": root / "target",
               "target_test": root / "target_test"}
    taken = {digit: 0 for digit in TARGET_CLASSES}
    for split, pick in (("train", "train"), ("test", "test")):
        images, _ = load_split("mnist_subset", split)
        for index, (image, label) in enumerate(images.as_numpy_iterator()):
            digit = int(label)
            if split == "train" and digit in SOURCE_CLASSES:
                folder = folders["source"]
            elif split == "train" and taken[digit] < per_class:
                taken[digit] += 1
                folder = folders["target"]
            elif split == "test" and digit in TARGET_CLASSES:
                folder = folders["target_test"]
            else:
                continue
            (folder / str(digit)).mkdir(parents=True, exist_ok=True)
            tf.io.write_file(str(folder / str(digit) / f"{pick}{index:04d}.png"),
                             tf.io.encode_png(image))
    return folders


def target_spec(arm: str, source_export: str, folder: Path, seed: int, epochs: int,
                batch: int) -> list:
    """--set values that make LeNet train one arm on the target folder (of `batch` or more
    images)."""
    common = [f"data.dataset={folder}", "data.train_split=all", "data.eval_split=all",
              f"train.seed={seed}", f"train.batch_size={min(20, batch)}",
              "train.precision=float32"]
    if arm == "scratch":
        return common + [f"train.epochs={epochs}"]
    start = [f"init={json.dumps({'from': source_export, 'layers': FEATURES})}"]
    if arm.startswith("frozen"):
        frozen = CONVOLUTIONS if arm == "frozen convolutions" else FEATURES
        return common + start + [f"train.epochs={epochs}", f"train.freeze={json.dumps(frozen)}"]
    half = epochs // 2
    stages = [{"epochs": half, "freeze": FEATURES},
              {"epochs": epochs - half, "optimizer": {"sgd": {"learning_rate": 0.001,
                                                              "momentum": 0.9}}}]
    return common + start + [f"train.stages={json.dumps(stages)}"]


def quiet(_message):
    pass


def run(args) -> None:
    with tempfile.TemporaryDirectory() as work:
        folders = write_folders(Path(work), args.per_class)
        for seed in args.seeds:
            began = time.monotonic()
            source = zoo.train(LENET, output=os.path.join(work, f"source{seed}"), log=quiet,
                               overrides=[f"data.dataset={folders['source']}",
                                          f"train.seed={seed}", "train.precision=float32",
                                          f"train.epochs={args.source_epochs}"])
            keras.backend.clear_session()
            record = {"seed": seed, "labels": 5 * args.per_class,
                      "source_accuracy": source.metrics["accuracy"]}
            for arm in ARMS:
                result = zoo.train(LENET, output=os.path.join(work, f"{arm}{seed}"), log=quiet,
                                   overrides=target_spec(arm, source.export, folders["target"],
                                                         seed, args.epochs, 5 * args.per_class))
                metrics = evaluate_export(result.export, str(folders["target_test"]), "all")
                record[arm] = metrics["accuracy"]
                record["test_images"] = metrics["examples"]
                keras.backend.clear_session()
            record["seconds"] = round(time.monotonic() - began, 1)
            print(json.dumps(record), flush=True)
            with open(args.out, "a") as handle:
                handle.write(json.dumps(record) + "\n")


def table(files) -> str:
    records = read_records(files)

    budgets = sorted({record["labels"] for record in records})
    lines = ["| start | " + " | ".join(f"{labels} labels" for labels in budgets) + " |",
             "|---" * (len(budgets) + 1) + "|"]
    for arm in (*ARMS, "source_accuracy"):
        name = "(the source model on its own digits 0-4)" if arm == "source_accuracy" else arm
        lines.append(f"| {name} | " + " | ".join(
            mean_and_spread([record[arm] * 100 for record in records
                             if record["labels"] == labels])
            for labels in budgets) + " |")
    return "\n".join(lines)


def add_run_arguments(running) -> None:
    running.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    running.add_argument("--epochs", type=int, default=40, help="target epochs, every arm")
    running.add_argument("--per-class", type=int, default=20,
                         help="labelled target images per digit (default: 20, 100 labels)")
    running.add_argument("--source-epochs", type=int, default=10)
    running.add_argument("--out", required=True)


if __name__ == "__main__":
    command_line(__doc__, add_run_arguments, run, table)
