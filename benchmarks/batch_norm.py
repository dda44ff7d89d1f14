"""One BatchNormalization layer, Keras's vs the zoo's fused one: a training step's time.

    python benchmarks/batch_norm.py                 # ResNet-50-like shapes, float32 and bf16
    python benchmarks/batch_norm.py --smoke         # seconds: checks it still runs

A step is the layer's forward pass in training mode (batch statistics, moving averages
updated) and the gradients of a loss with respect to its input, gamma and beta, compiled
with tf.function; the input is in the layer's compute precision (bfloat16 under
`mixed_bfloat16`, as the layer below it would hand it over). Each measurement is its own
process, the two layers alternate, medians are reported.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

SIDES = ("keras", "zoo")
# (batch, height, width, channels): ResNet-50 at 96x96, batch 32, in its first and last stage
SHAPES = ((32, 24, 24, 256), (32, 3, 3, 2048))
WARMUP_STEPS = 3


def measure(side: str, precision: str, batch, height, width, channels, steps) -> dict:
    import keras
    import tensorflow as tf

    from zoo.layers import BatchNormalization

    shape = tuple(int(size) for size in (batch, height, width, channels))
    cls = keras.layers.BatchNormalization if side == "keras" else BatchNormalization
    layer = cls(dtype=precision)
    layer.build(shape)
    inputs = tf.cast(tf.random.normal(shape), layer.compute_dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32) ** 2)
        return tape.gradient(loss, [x, *layer.trainable_weights])

    for _ in range(WARMUP_STEPS):
        step(inputs)
    began = time.perf_counter()
    for _ in range(int(steps)):
        [gradient.numpy() for gradient in step(inputs)]
    return {"ms": (time.perf_counter() - began) / int(steps) * 1000}


def main():
    parser = benchmark_parser(__doc__, repeats=5, smoke="a small shape, 2 steps, one repetition")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    shapes = ((2, 4, 4, 8),) if args.smoke else SHAPES
    if args.smoke:
        args.steps, args.repeats = 2, 1
    rows = []
    for precision in ("float32", "mixed_bfloat16"):
        for shape in shapes:
            cases = [[side, precision, *map(str, shape), str(args.steps)] for side in SIDES]
            keras_side, zoo_side = interleaved(__file__, cases, args.repeats,
                                               measure if args.smoke else None)
            keras_ms, zoo_ms = median(keras_side, "ms"), median(zoo_side, "ms")
            rows.append([precision, "x".join(map(str, shape)), f"{keras_ms:.2f}",
                         f"{zoo_ms:.2f}", f"{keras_ms / zoo_ms:.2f}"])
    print(f"milliseconds per training step of one layer, medians of {args.repeats} alternating "
          f"runs of {args.steps} steps")
    print(markdown_table(["precision", "input", "keras", "zoo (fused)", "speed-up"], rows))


if __name__ == "__main__":
    main()
