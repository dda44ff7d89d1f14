"""Epoch ends: the zoo's pipeline (tf.data autotuning off) vs TensorFlow's default (on).

    python benchmarks/epoch_end.py                 # resnet20 on mnist_subset, 8 epochs
    python benchmarks/epoch_end.py --smoke         # seconds: checks it still runs

With autotuning on, the end of a tf.data iterator can wait for the autotuning thread's next
wake-up, whose period doubles from 10 ms; every epoch ends its validation batches' iterator
(and ended its training batches' one too before one iterator served the whole run), so an
epoch may last until the next power of two times 10 ms of its iterator's age. Both sides
run the real `train.py` job (zoo.run.run_training: the TFDS split cached in memory,
preprocessed, shuffled, batched, prefetched; the zoo's loop; train.py's default precision);
"tf.data default" only turns autotuning back on over the zoo's pipelines. Figures are the
seconds of each epoch after the first (which traces), as the training log reports them.
Each run is its own process, the sides alternate.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked)

SIDES = ("tf.data default", "zoo")
SLOW = 1.3  # an epoch this many times the zoo side's median counts as stalled


def measure(side: str, spec: str, epochs) -> dict:
    import tensorflow as tf

    import zoo
    import zoo.pipeline
    import zoo.training

    if side == "tf.data default":
        autotuning = tf.data.Options()
        autotuning.autotune.enabled = True
        # what train_phase() builds: its training batches, and the evaluation batches that
        # zoo.pipeline.evaluation_passes repeats
        for module, name in ((zoo.training, "training_batches"),
                             (zoo.pipeline, "evaluation_batches")):
            def with_autotuning(*args, zoo_batches=getattr(module, name), **kwargs):
                return zoo_batches(*args, **kwargs).with_options(autotuning)

            setattr(module, name, with_autotuning)
    with tempfile.TemporaryDirectory() as output:
        result = zoo.train(os.path.join("specs", f"{spec}.yaml"), output=output,
                           overrides=["data.dataset=mnist_subset", f"train.epochs={epochs}"],
                           log=lambda *_: None)
        with open(os.path.join(result.export, "history.json")) as file:
            history = json.load(file)
    (phase,) = history.values()
    return {"epoch_s": [epoch["seconds"] for epoch in phase[1:]]}


def main():
    parser = benchmark_parser(__doc__, repeats=3, smoke="lenet, 2 epochs, one repetition")
    parser.add_argument("--spec", default="resnet20")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    if args.smoke:
        args.spec, args.epochs, args.repeats = "lenet", 2, 1
    runs = [[side, args.spec, str(args.epochs)] for side in SIDES]
    results = interleaved(__file__, runs, args.repeats)
    seconds = {side: [value for figures in side_results for value in figures["epoch_s"]]
               for side, side_results in zip(SIDES, results)}
    usual = statistics.median(seconds["zoo"])
    rows = []
    for side, values in seconds.items():
        stalled = sum(value > SLOW * usual for value in values)
        rows.append([side, len(values), f"{statistics.median(values):.2f}",
                     f"{statistics.mean(values):.2f}", f"{max(values):.2f}",
                     f"{stalled}/{len(values)}"])
    mean = {side: statistics.mean(values) for side, values in seconds.items()}
    print(f"{args.spec} on mnist_subset, epochs 2..{args.epochs} of {args.repeats} alternating "
          f"runs per side; stalled: over {SLOW}x the zoo's median epoch; mean epoch, "
          f"tf.data default / zoo: {mean['tf.data default'] / mean['zoo']:.2f}")
    print(markdown_table(["side", "epochs", "median s", "mean s", "longest s", "stalled"], rows))


if __name__ == "__main__":
    main()
