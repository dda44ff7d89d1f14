"""Input pipeline cost: training from the real pipeline vs from tensors already in memory.

    python benchmarks/input_pipeline.py            # lenet and resnet20 on mnist_subset
    python benchmarks/input_pipeline.py --specs resnet20_randaugment   # + RandAugment 2, 9
    python benchmarks/input_pipeline.py --smoke    # seconds: checks it still runs

"pipeline" is what train.py feeds the model: the TFDS split read (and cached in memory
after the first epoch, as train.py does for small splits), decoded, preprocessed (for
resnet20: resized to 32x32, grey to RGB, normalized) and augmented (resnet20: flips and
pad-and-crop; resnet20_randaugment: also Keras's RandAugment, 2 ops of magnitude 9),
shuffled, batched and prefetched. "memory" is one batch already in memory.
Both sides train with the zoo's loop under train.py's default precision, from one iterator
as train.py does; five full epochs are timed after a first one, so the first epoch's reading
and tracing are left out. The first epoch warms the memory side too.
"""

from __future__ import annotations

import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

SIDES = ("pipeline", "memory")
CASES = {  # name: spec, batch size, --set values
    "lenet": ("lenet", 64, []),
    "resnet20": ("resnet20", 128, []),
    "resnet20_randaugment": ("resnet20", 128,
                             ["data.augment.randaugment={num_ops: 2, magnitude: 9}"]),
}
DEFAULT_CASES = ["lenet", "resnet20"]
TIMED_EPOCHS = 5  # after an untimed first one: LeNet's epoch alone lasts a quarter second


def measure(side: str, case: str) -> dict:
    import zoo
    from benchmarks.measure import precision_for, zoo_loop
    from zoo.devices import dtype_policy
    from zoo.pipeline import load_splits, training_batches
    from zoo.training import Plan

    spec_name, batch, changes = CASES[case]
    spec = zoo.load_spec(os.path.join("specs", f"{spec_name}.yaml"),
                         ["data.dataset=mnist_subset", f"train.batch_size={batch}", *changes])
    splits = load_splits(spec, "train", download=False)
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)
    plan = dataclasses.replace(plan, epochs=1 + TIMED_EPOCHS)
    precision = precision_for(spec.train.get("precision"), lambda: zoo.build_model(spec), batch)
    with dtype_policy(precision):
        model = zoo.build_model(spec)
        dataset = None
        if side == "pipeline":  # every epoch in one dataset, as train_phase() iterates them
            dataset = training_batches(splits, tuple(model.inputs[0].shape[1:]), plan)
        speed = zoo_loop(model, batch, plan.steps_per_epoch * TIMED_EPOCHS, dataset=dataset,
                         warmup_steps=plan.steps_per_epoch)
    return {"img_s": speed}


def main():
    parser = benchmark_parser(__doc__, repeats=3, smoke="lenet, one repetition")
    parser.add_argument("--specs", nargs="+", default=DEFAULT_CASES, choices=CASES)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    specs = ["lenet"] if args.smoke else args.specs
    repeats = 1 if args.smoke else args.repeats
    rows = []
    for case in specs:
        runs = [[side, case] for side in SIDES]
        pipeline, memory = interleaved(__file__, runs, repeats,
                                       measure if args.smoke else None)
        ours, theirs = median(pipeline, "img_s"), median(memory, "img_s")
        rows.append([case, CASES[case][1], f"{ours:.1f}", f"{theirs:.1f}",
                     f"{ours / theirs:.3f}"])
    print(f"medians of {repeats} alternating runs each; images/s of epochs 2 to "
          f"{TIMED_EPOCHS + 1}")
    print(markdown_table(["case", "batch", "pipeline", "in memory", "ratio"], rows))


if __name__ == "__main__":
    main()
