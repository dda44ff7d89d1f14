"""One normalization layer, the stock computation vs the zoo's kernel: a training step's time.

    python benchmarks/normalization.py              # ResNet-50 and AlexNet shapes, fp32, bf16
    python benchmarks/normalization.py --smoke      # seconds: checks it still runs

Two layers of zoo/layers.py, each against what it would be without its TensorFlow kernel:
- batch_norm: Keras's BatchNormalization (element-wise ops) vs the zoo's, which runs
  FusedBatchNormV3; at ResNet-50's first- and last-stage shapes (96x96 input, batch 32);
- lrn: local response normalization by its formula in element-wise ops
  (LocalResponseNormalization.formula) vs the zoo's layer, which runs TensorFlow's LRN
  kernel; at AlexNet's norm1 and norm2 shapes (batch 32).
A step is the layer's forward pass in training mode (batch normalization: batch statistics,
moving averages updated) and the gradients of a loss with respect to its input and weights,
compiled with tf.function; the input is in the layer's compute precision (bfloat16 under
`mixed_bfloat16`, as the layer below it would hand it over). Each measurement is its own
process, the two sides alternate, medians are reported.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

# layer: (the stock side, the zoo's side, (batch, height, width, channels) shapes)
LAYERS = {"batch_norm": ("keras", "zoo", ((32, 24, 24, 256), (32, 3, 3, 2048))),
          "lrn": ("formula", "zoo", ((32, 55, 55, 96), (32, 27, 27, 256)))}
WARMUP_STEPS = 3


def normalization(layer_name: str, side: str, precision: str, shape: tuple):
    """A function (inputs) -> outputs in training mode, and the layer that holds its weights."""
    import keras

    from zoo.layers import BatchNormalization, LocalResponseNormalization

    if layer_name == "lrn":
        layer = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0,
                                           dtype=precision)
        return (layer.formula if side == "formula" else layer), layer
    layer = (keras.layers.BatchNormalization if side == "keras" else BatchNormalization)(
        dtype=precision)
    layer.build(shape)
    return (lambda x: layer(x, training=True)), layer


def measure(layer_name: str, side: str, precision: str, batch, height, width, channels,
            steps) -> dict:
    import tensorflow as tf

    shape = tuple(int(size) for size in (batch, height, width, channels))
    forward, layer = normalization(layer_name, side, precision, shape)
    inputs = tf.cast(tf.random.normal(shape) * 10, layer.compute_dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(forward(x), tf.float32) ** 2)
        return tape.gradient(loss, [x, *layer.trainable_weights])

    for _ in range(WARMUP_STEPS):
        step(inputs)
    began = time.perf_counter()
    for _ in range(int(steps)):
        [gradient.numpy() for gradient in step(inputs)]
    return {"ms": (time.perf_counter() - began) / int(steps) * 1000}


def main():
    parser = benchmark_parser(__doc__, repeats=5, smoke="small shapes, 2 steps, one repetition")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    if args.smoke:
        args.steps, args.repeats = 2, 1
    rows = []
    for layer_name in args.layers:
        stock, ours, shapes = LAYERS[layer_name]
        for precision in ("float32", "mixed_bfloat16"):
            for shape in ((2, 4, 4, 8),) if args.smoke else shapes:
                cases = [[layer_name, side, precision, *map(str, shape), str(args.steps)]
                         for side in (stock, ours)]
                stock_side, zoo_side = interleaved(__file__, cases, args.repeats,
                                                   measure if args.smoke else None)
                stock_ms, zoo_ms = median(stock_side, "ms"), median(zoo_side, "ms")
                rows.append([layer_name, precision, "x".join(map(str, shape)),
                             f"{stock} {stock_ms:.2f}", f"{zoo_ms:.2f}",
                             f"{stock_ms / zoo_ms:.2f}"])
    print(f"milliseconds per training step of one layer, medians of {args.repeats} alternating "
          f"runs of {args.steps} steps")
    print(markdown_table(["layer", "precision", "input", "stock", "zoo", "speed-up"], rows))


if __name__ == "__main__":
    main()
