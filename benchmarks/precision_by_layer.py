"""Which layer types train faster in mixed_bfloat16 than in float32 on this CPU (issue 21).

    python benchmarks/precision_by_layer.py                 # every layer type, 3 repetitions
    python benchmarks/precision_by_layer.py --layers depthwise lstm --repeats 5
    python benchmarks/precision_by_layer.py --smoke         # seconds: checks it still runs

`train.precision: auto` picks mixed_bfloat16 on a CPU with bfloat16 instructions. That is
right for the shipped convolutional specs, but a new user's spec may be made of other
layers. Each case is a small network whose multiply-accumulates are nearly all in one layer
type, trained by the zoo's own loop (in-memory batches, SGD with momentum, no XLA) in
float32 and in mixed_bfloat16, each measurement in its own process, the two alternating;
medians of images/s, and their ratio (above 1: bfloat16 is faster).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

PRECISIONS = ("float32", "mixed_bfloat16")
# layer type: the layers of a network dominated by it, on 32x32x3 images
LAYERS = {
    "conv2d": "- conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}\n"
              "- conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}\n",
    "depthwise": "- conv2d: {filters: 128, kernel_size: 1, activation: relu}\n"
                 "- depthwise_conv2d: {kernel_size: 3, padding: same, activation: relu}\n"
                 "- depthwise_conv2d: {kernel_size: 3, padding: same, activation: relu}\n",
    "mobilenet_block": "- conv2d: {filters: 64, kernel_size: 1, activation: relu}\n"
                       "- depthwise_conv2d: {kernel_size: 3, padding: same, activation: relu}\n"
                       "- conv2d: {filters: 128, kernel_size: 1, activation: relu}\n",
    "separable": "- separable_conv2d: {filters: 64, kernel_size: 3, padding: same, "
                 "activation: relu}\n"
                 "- separable_conv2d: {filters: 64, kernel_size: 3, padding: same, "
                 "activation: relu}\n",
    "grouped": "- conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}\n"
               "- conv2d: {filters: 64, kernel_size: 3, padding: same, groups: 4, "
               "activation: relu}\n",
    "lstm": "- reshape: {target_shape: [32, 96]}\n- lstm: {units: 256}\n",
    "dense": "- flatten\n- dense: {units: 1024, activation: relu}\n"
             "- dense: {units: 1024, activation: relu}\n",
}
SPEC = """\
model:
  inputs: {{image: [32, 32, 3]}}
  layers:
{layers}    - flatten
    - dense: {{units: 10, activation: softmax, name: predictions}}
"""
BATCH = 64


def spec_text(layer: str) -> str:
    return SPEC.format(layers="".join(f"    {line}\n" for line in LAYERS[layer].splitlines()))


def measure(layer: str, precision: str, steps: str) -> dict:
    import zoo
    from benchmarks.measure import zoo_loop
    from zoo.devices import dtype_policy
    from zoo.macs import model_macs

    with dtype_policy(precision):
        model = zoo.build_model(spec_text(layer))
        speed = zoo_loop(model, BATCH, int(steps), xla=False)
    return {"img_s": speed, "macs": model_macs(model)}


def main():
    parser = benchmark_parser(__doc__, repeats=3, smoke="the dense case, 2 steps, once")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    if args.smoke:
        args.layers, args.steps, args.repeats = ["dense"], 2, 1
    rows = []
    for layer in args.layers:
        runs = [[layer, precision, str(args.steps)] for precision in PRECISIONS]
        results = interleaved(__file__, runs, args.repeats, measure if args.smoke else None)
        speeds = [median(figures, "img_s") for figures in results]
        rows.append([layer, f"{results[0][0]['macs'] / 1e6:.1f}",
                     *(f"{speed:.0f}" for speed in speeds), f"{speeds[1] / speeds[0]:.2f}"])
    print(f"batch {BATCH}, medians of {args.repeats} alternating runs of {args.steps} timed "
          "steps; ratio: mixed_bfloat16 images/s over float32's")
    print(markdown_table(["layer type", "MMACs/image", "float32 images/s",
                          "mixed_bfloat16 images/s", "ratio"], rows))


if __name__ == "__main__":
    main()
