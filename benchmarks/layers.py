"""The zoo's faster layers, one at a time, vs the stock computation: a training step's time.

    python benchmarks/layers.py                    # ResNet-50 and AlexNet shapes, fp32, bf16
    python benchmarks/layers.py --layers grouped_conv --repeats 5
    python benchmarks/layers.py --smoke            # seconds: checks it still runs

Each layer of zoo/layers.py against what it would be without its TensorFlow kernels:
- batch_norm: Keras's BatchNormalization (element-wise ops) vs the zoo's, which runs
  FusedBatchNormV3; at ResNet-50's first- and last-stage shapes (96x96 input, batch 32);
- lrn: local response normalization by its formula in element-wise ops
  (LocalResponseNormalization.formula) vs the zoo's layer, which runs TensorFlow's LRN
  kernel; at AlexNet's norm1 and norm2 shapes (batch 32);
- grouped_conv: Keras's Conv2D with groups=2 (compiled with XLA by Keras) vs the zoo's,
  which runs one ordinary convolution per group; AlexNet's conv2 (5x5, 256 filters) and
  conv4 (3x3, 384 filters) on their inputs (batch 32).
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

# layer: (the stock side, input shapes (batch, height, width, channels))
LAYERS = {"batch_norm": ("keras", ((32, 24, 24, 256), (32, 3, 3, 2048))),
          "lrn": ("formula", ((32, 55, 55, 96), (32, 27, 27, 256))),
          "grouped_conv": ("keras", ((32, 27, 27, 96), (32, 13, 13, 384)))}
# grouped_conv's filters and kernel size by input channels: AlexNet's conv2 and conv4
CONVOLUTIONS = {96: (256, 5), 384: (384, 3), 8: (8, 3)}
WARMUP_STEPS = 3


def training_forward(layer_name: str, stock: bool, precision: str, shape: tuple):
    """A function (inputs) -> outputs in training mode, and the built layer behind it."""
    import keras

    from zoo import layers

    if layer_name == "lrn":
        layer = layers.LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0,
                                                  dtype=precision)
        return (layer.formula if stock else layer), layer
    if layer_name == "batch_norm":
        layer = (keras.layers.BatchNormalization if stock else layers.BatchNormalization)(
            dtype=precision)
    else:
        filters, kernel_size = CONVOLUTIONS[shape[-1]]
        layer = (keras.layers.Conv2D if stock else layers.Conv2D)(
            filters, kernel_size, padding="same", groups=2, dtype=precision)
    layer.build(shape)
    return (lambda x: layer(x, training=True)), layer


def measure(layer_name: str, side: str, precision: str, batch, height, width, channels,
            steps) -> dict:
    import tensorflow as tf

    shape = tuple(int(size) for size in (batch, height, width, channels))
    forward, layer = training_forward(layer_name, side != "zoo", precision, shape)
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
        stock, shapes = LAYERS[layer_name]
        for precision in ("float32", "mixed_bfloat16"):
            for shape in ((2, 4, 4, 8),) if args.smoke else shapes:
                cases = [[layer_name, side, precision, *map(str, shape), str(args.steps)]
                         for side in (stock, "zoo")]
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
