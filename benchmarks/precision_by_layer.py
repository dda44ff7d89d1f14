"""Which layer types train faster in mixed_bfloat16 than in float32 on this CPU (issue 21).

    python benchmarks/precision_by_layer.py                 # every layer type, 3 repetitions
    python benchmarks/precision_by_layer.py --layers depthwise lstm --repeats 5
    python benchmarks/precision_by_layer.py --smoke         # seconds: checks it still runs

`train.precision: auto` must train any spec at the speed of the faster of float32 and
mixed_bfloat16 (within 5%), whatever its layers. Each case is a small network whose
multiply-accumulates are nearly all in one layer type (and MobileNet v1's first layers with
their batch normalization and ReLU6, at 96x96), trained by the zoo's own loop (in-memory
batches, SGD with momentum, no XLA) in float32, in mixed_bfloat16 and in what `auto` picks
(its probe, zoo.precision, run afresh in that process), each measurement in its own process,
the three alternating; medians of images/s, their ratios, and what auto picked.
"""

from __future__ import annotations

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

PRECISIONS = ("float32", "mixed_bfloat16", "auto")
# layer type: the layers of a network dominated by it, on 32x32x3 images
LAYERS = {
    "conv2d": "- conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}\n"
              "- conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}\n",
    "depthwise": "- conv2d: {filters: 128, kernel_size: 1, activation: relu}\n"
                 "- depthwise_conv2d: {kernel_size: 3, padding: same, activation: relu}\n"
                 "- depthwise_conv2d: {kernel_size: 3, padding: same, activation: relu}\n",
    # few channels on large images, as in MobileNet's early layers (INPUTS)
    "depthwise_narrow": "- depthwise_conv2d: {kernel_size: 3, padding: same}\n"
                        "- depthwise_conv2d: {kernel_size: 3, padding: same}\n"
                        "- average_pooling2d: {pool_size: 4}\n",
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
    # MobileNet v1's first layers as its paper has them, on larger images (INPUTS)
    "mobilenet_v1": "".join(
        f"- {layer}\n- batch_normalization\n- activation: {{activation: relu6}}\n" for layer in (
            "conv2d: {filters: 32, kernel_size: 3, strides: 2, padding: same, use_bias: false}",
            "depthwise_conv2d: {kernel_size: 3, padding: same, use_bias: false}",
            "conv2d: {filters: 64, kernel_size: 1, use_bias: false}",
            "depthwise_conv2d: {kernel_size: 3, strides: 2, padding: same, use_bias: false}",
            "conv2d: {filters: 128, kernel_size: 1, use_bias: false}")),
}
INPUTS = {"mobilenet_v1": [96, 96, 3], "depthwise_narrow": [48, 48, 32]}  # else [32, 32, 3]
SPEC = """\
model:
  inputs: {{image: {shape}}}
  layers:
{layers}    - flatten
    - dense: {{units: 10, activation: softmax, name: predictions}}
"""
BATCH = 64


def spec_text(layer: str) -> str:
    return SPEC.format(shape=INPUTS.get(layer, [32, 32, 3]),
                       layers="".join(f"    {line}\n" for line in LAYERS[layer].splitlines()))


def measure(layer: str, precision: str, steps: str) -> dict:
    import zoo
    from benchmarks.measure import precision_for, zoo_loop
    from zoo.devices import dtype_policy
    from zoo.macs import model_macs

    def build():
        return zoo.build_model(spec_text(layer))

    chosen = precision_for(precision, build, BATCH)  # auto: what its probe chose
    with dtype_policy(chosen):
        model = build()
        speed = zoo_loop(model, BATCH, int(steps), xla=False)
    return {"img_s": speed, "macs": model_macs(model), "precision": chosen}


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
        float32, bfloat16, auto = (median(figures, "img_s") for figures in results)
        picks = collections.Counter(figure["precision"] for figure in results[2])
        # a process's own speed varies by tens of percent here; the sides' medians do not
        # share that noise with the auto run, so they judge the pick itself
        side = {"float32": float32, "mixed_bfloat16": bfloat16}
        worst_pick = min(side[picked] for picked in picks) / max(float32, bfloat16)
        rows.append([layer, f"{results[0][0]['macs'] / 1e6:.1f}", f"{float32:.0f}",
                     f"{bfloat16:.0f}", f"{bfloat16 / float32:.2f}",
                     ", ".join(f"{name} {count}/{args.repeats}" for name, count in picks.items()),
                     f"{auto:.0f}", f"{auto / max(float32, bfloat16):.2f}", f"{worst_pick:.2f}"])
    print(f"batch {BATCH}, medians of {args.repeats} alternating runs of {args.steps} timed "
          "steps; bf16/f32: mixed_bfloat16 images/s over float32's; auto: train.precision "
          "auto, its probe run afresh in each run (what it picked, how often); auto/best: its "
          "images/s over the faster precision's; picked/best: the median of the side auto "
          "picked (the slower of its picks, if it varied) over the faster side's median")
    print(markdown_table(["layer type", "MMACs/image", "float32 images/s",
                          "mixed_bfloat16 images/s", "bf16/f32", "auto picked", "auto images/s",
                          "auto/best", "picked/best"], rows))


if __name__ == "__main__":
    main()
