"""An export in each of its formats side by side: file size, agreement with the SavedModel,
accuracy on the eval split, and the time a batch takes in each runtime.

    python benchmarks/exports.py exports/lenet/1 [--batch 1 --batch 64] [--repeats 50]

Give an export converted to the formats to compare (export.formats, or `zoo convert`). The
runtimes alternate within every repetition, so a slow moment of a noisy machine hits them all;
medians are reported. Everything runs in one process on the CPU, each runtime with its
default threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def size_of(path: str) -> int:
    """A file's bytes, or a SavedModel's (its graph and variables, not model.keras beside it)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    variables = os.path.join(path, "variables")
    return os.path.getsize(os.path.join(path, "saved_model.pb")) + sum(
        os.path.getsize(os.path.join(variables, name)) for name in os.listdir(variables))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export")
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    import numpy as np

    from zoo.conversion import FORMATS, dataset_images
    from zoo.evaluation import evaluate_export, load_metadata
    from zoo.runtimes import open_model

    metadata = load_metadata(args.export)
    batches = args.batch or [1, 64]
    files = {"saved_model": "", **{kind: entry.file for kind, entry in FORMATS.items()}}
    paths = {kind: os.path.join(args.export, name) for kind, name in files.items()
             if os.path.exists(os.path.join(args.export, name))}
    runners = {kind: open_model(path) for kind, path in paths.items()}
    images = dataset_images(metadata, metadata["dataset"]["eval_split"], max(batches))
    reference = runners["saved_model"](images)["probabilities"]
    print(f"{args.export}: {metadata['spec']} on {metadata['dataset']['name']}, "
          f"{metadata['dataset']['eval_split']} split")
    print(f"{'format':<12} {'size':>10} {'max |diff|':>11} {'accuracy':>9}", end="")
    print("".join(f" {f'ms/batch {b}':>13}" for b in batches))
    timings = {(kind, batch): [] for kind in runners for batch in batches}
    for repetition in range(args.repeats + 1):
        for kind, runner in runners.items():
            for batch in batches:
                began = time.perf_counter()
                runner(images[:batch])
                if repetition:  # the first call of each builds and warms up
                    timings[kind, batch].append(time.perf_counter() - began)
    for kind, path in paths.items():
        difference = np.abs(runners[kind](images)["probabilities"] - reference).max()
        accuracy = evaluate_export(path if kind != "saved_model" else args.export)["accuracy"]
        print(f"{kind:<12} {size_of(path):>10,} {difference:>11.2g} {accuracy:>9.4f}" + "".join(
            f" {statistics.median(timings[kind, batch]) * 1000:>13.3f}" for batch in batches))


if __name__ == "__main__":
    main()
