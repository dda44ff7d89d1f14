"""Achieved training FLOP/s as a fraction of this machine's matrix-product peak.

    python benchmarks/utilization.py                   # resnet50, resnet20, alexnet
    python benchmarks/utilization.py --specs resnet20 --steps 50 --repeats 5
    python benchmarks/utilization.py --smoke           # seconds: checks it still runs

The peak: GFLOP/s of products of two 2048x2048 matrices (2 * 2048^3 floating-point
operations each) in TensorFlow, in float32 and in bfloat16, with TensorFlow's default
thread pools, the ones training runs on.

The training: images/s of the zoo's loop (benchmarks/training_speed.py's "zoo float32" and
"zoo default" sides, same specs, input sizes and batches), turned into FLOP/s as

    3 * 2 * MACs per example * images/s

- MACs per example: zoo/macs.py on the model as built at that input size; it counts the
  convolutions and dense layers only (normalization, activations, pooling, additions and the
  optimizer update are left out, as the papers leave them out);
- 2 floating-point operations per multiply-accumulate;
- 3: forward + backward is about 3x the forward pass (the backward pass computes the
  gradients of the inputs and of the weights, each as much work as the forward; the first
  layer needs no input gradient, so 3 slightly overstates it).

Each figure is divided by the peak of the precision it computes in (mixed_bfloat16 computes
in bfloat16). Every measurement, peaks included, is its own process; they alternate within
each repetition, and the table shows medians.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import training_speed  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

PEAK_DTYPES = ("float32", "bfloat16")
PEAK_SIZE, PEAK_PRODUCTS = 2048, 30  # 30 float32 products: about 2.5 s on this machine
SIDES = ("zoo float32", "zoo default")
SPECS = ("resnet50", "resnet20", "alexnet")


def matmul_peak(dtype: str, size, products) -> dict:
    """GFLOP/s of `products` eager matrix products of two size x size matrices in `dtype`."""
    size, products = int(size), int(products)
    import tensorflow as tf

    a, b = (tf.cast(tf.random.stateless_uniform((size, size), seed=(0, i)), dtype)
            for i in (1, 2))
    for _ in range(3):  # oneDNN picks and caches its kernel on the first products
        tf.linalg.matmul(a, b)
    began = time.perf_counter()
    for _ in range(products):  # eager ops on a CPU return when their result is computed
        product = tf.linalg.matmul(a, b)
    float(product[0, 0])
    seconds = time.perf_counter() - began
    return {"gflop_s": 2 * size**3 * products / seconds / 1e9}


def measure(side: str, *case) -> dict:
    """A peak (side "matmul", case: dtype, size, products) or a training_speed side."""
    if side == "matmul":
        return matmul_peak(*case)
    return training_speed.measure(side, *case)


def main():
    parser = benchmark_parser(__doc__, repeats=3,
                              smoke="lenet, batch 8, 128x128 matrices, one repetition")
    parser.add_argument("--specs", nargs="+", default=list(SPECS), choices=training_speed.CASES)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    cases = {name: training_speed.CASES[name] for name in args.specs}
    size, products = PEAK_SIZE, PEAK_PRODUCTS
    if args.smoke:
        cases, args.steps, args.repeats, size, products = {"lenet": (0, 8)}, 2, 1, 128, 3
    runs = [["matmul", dtype, str(size), str(products)] for dtype in PEAK_DTYPES]
    runs += [[side, spec, str(image), str(batch), str(args.steps)]
             for spec, (image, batch) in cases.items() for side in SIDES]
    results = interleaved(__file__, runs, args.repeats, measure if args.smoke else None)
    peaks = {dtype: median(figures, "gflop_s") for dtype, figures
             in zip(PEAK_DTYPES, results)}
    rows = []
    for run, figures in zip(runs[len(PEAK_DTYPES):], results[len(PEAK_DTYPES):]):
        precision, macs = figures[0]["precision"], figures[0]["macs"]
        speed = median(figures, "img_s")
        achieved = 3 * 2 * macs * speed / 1e9
        peak = peaks.get(precision.removeprefix("mixed_"))  # the dtype it computes in
        rows.append([run[1], precision, f"{speed:.1f}", f"{macs / 1e6:.4g}",
                     f"{achieved:.1f}", f"{peak:.1f}" if peak else "n/a",
                     f"{achieved / peak:.0%}" if peak else "n/a"])
    print(f"medians of {args.repeats} alternating runs each, {args.steps} timed steps; peak: "
          f"{size}x{size} matrix products, " + ", ".join(
              f"{dtype} {gflop_s:.1f} GFLOP/s" for dtype, gflop_s in peaks.items()))
    print(markdown_table(["spec", "precision", "images/s", "MMACs/example",
                          "training GFLOP/s", "peak GFLOP/s", "of peak"], rows))


if __name__ == "__main__":
    main()
