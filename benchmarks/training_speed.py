"""The zoo's training defaults vs stock Keras: images/s per spec, side by side.

    python benchmarks/training_speed.py                    # resnet50, resnet20, alexnet, ...
    python benchmarks/training_speed.py --specs lenet mlp --repeats 3
    python benchmarks/training_speed.py --smoke            # seconds: checks it still runs

Sides, each its own process, alternating, medians reported:
- keras: the spec's network built from Keras's own layers (float32), trained by
  `model.fit` with Keras's defaults (`jit_compile="auto"`, which is no XLA on a CPU);
- zoo float32: the zoo's model (its fused BatchNormalization) and training loop, float32,
  no XLA;
- zoo bf16: the zoo's loop under the `mixed_bfloat16` policy;
- zoo xla: the zoo's loop, float32, the step compiled with XLA;
- zoo default: the zoo's loop with what `train.py` chooses on this machine (the precision
  `auto` measures faster for the model, zoo.precision).
All sides use the same in-memory batch (no input pipeline), SGD with momentum.
"""

from __future__ import annotations

import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median, peak_rss_mb)

SIDES = ("keras", "zoo float32", "zoo bf16", "zoo xla", "zoo default")
# (spec, input side or 0 for the spec's own, batch size)
CASES = {"resnet50": (96, 32), "resnet20": (0, 128), "alexnet": (0, 32), "lenet": (0, 128),
         "mlp": (0, 128)}


def measure(side: str, spec: str, image, batch, steps,
            around_timed=contextlib.nullcontext) -> dict:
    """One side's images/s; `around_timed` wraps the zoo loop's timed steps
    (benchmarks/profile_training.py profiles them)."""
    image, batch, steps = int(image), int(batch), int(steps)
    import zoo
    from benchmarks.measure import keras_fit, zoo_loop
    from zoo.layers import with_stock_keras_layers
    from benchmarks.measure import precision_for
    from zoo.devices import dtype_policy
    from zoo.macs import model_macs
    from zoo.summary import parameter_counts

    overrides = [f"model.inputs.image=[{image},{image},3]"] if image else []
    def build():
        return zoo.build_model(os.path.join("specs", f"{spec}.yaml"), overrides)

    precision = {"zoo bf16": "mixed_bfloat16"}.get(side, "float32")
    if side == "zoo default":
        precision = precision_for("auto", build, batch)
    with dtype_policy(precision):
        model = build()
        if side == "keras":
            speed = keras_fit(with_stock_keras_layers(model), batch, steps)
        else:
            speed = zoo_loop(model, batch, steps, xla=True if side == "zoo xla" else "auto",
                             around_timed=around_timed)
    return {"img_s": speed, "peak_rss_mb": peak_rss_mb(), "precision": precision,
            "macs": model_macs(model), "params": parameter_counts(model)["trainable_params"]}


def main():
    parser = benchmark_parser(__doc__, repeats=3, smoke="lenet, batch 8, one repetition")
    parser.add_argument("--specs", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    cases = {name: CASES[name] for name in args.specs}
    if args.smoke:
        cases, args.steps, args.repeats = {"lenet": (0, 8)}, 2, 1
    rows = []
    for spec, (image, batch) in cases.items():
        runs = [[side, spec, str(image), str(batch), str(args.steps)] for side in args.sides]
        results = dict(zip(args.sides, interleaved(__file__, runs, args.repeats,
                                                      measure if args.smoke else None)))
        baseline = median(results[args.sides[0]], "img_s")
        for side, figures in results.items():
            speed = median(figures, "img_s")
            rows.append([spec, side, figures[0]["precision"], f"{speed:.1f}",
                         f"{speed / baseline:.2f}", f"{median(figures, 'peak_rss_mb'):.0f}"])
    print(f"medians of {args.repeats} alternating runs each, {args.steps} timed steps; "
          f"ratio: to the first side ({args.sides[0]})")
    print(markdown_table(["spec", "side", "precision", "images/s", "ratio", "peak MB"], rows))


if __name__ == "__main__":
    main()
