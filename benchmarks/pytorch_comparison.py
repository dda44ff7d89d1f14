"""ResNet-50 training, the zoo against PyTorch 2.13 on this CPU: images/s with threads matched.

    python benchmarks/pytorch_comparison.py --torch-python /work/venv-pytorch/bin/python
        # the full run: 2 and 1 threads x batch 32 and 64, every side, 3 repetitions of
        # 20 timed steps at 96x96; roughly 1.5 to 2 hours on 2 quiet cores
    python benchmarks/pytorch_comparison.py --threads 1 --batches 32 --repeats 5
    python benchmarks/pytorch_comparison.py --smoke     # minutes: checks it still runs

PyTorch lives in a benchmark-only environment and is never a project dependency:

    python3.11 -m venv /work/venv-pytorch
    /work/venv-pytorch/bin/pip install torch==2.13.0 numpy \\
        --index-url https://download.pytorch.org/whl/cpu

Its interpreter is --torch-python, else $ZOO_TORCH_PYTHON; with neither (or an empty one),
the script says so in one line and measures the Keras sides only.

The model is specs/resnet50.yaml on the Keras sides and benchmarks/torch_resnet50.py, the
same layers and parameters written by hand, on PyTorch's (the table's header prints both
parameter counts). Every side trains on one random in-memory batch repeated (SGD with
momentum 0.9, cross-entropy, 3 untimed warmup steps); every measurement is its own fresh
process, the sides of all configurations alternate within each repetition, and the tables
show medians. A configuration is a number of threads, given alike to TensorFlow's intra-op
and inter-op pools and to torch.set_num_threads (threads 1 is the per-core comparison), and
a batch size. Sides:
- keras float32: the spec's model trained by stock `model.fit` (training_speed.py's keras);
- zoo default: the zoo's loop with what train.py chooses here (the precision `auto`
  measures faster, no XLA);
- zoo float32 + oneDNN bf16: the zoo's loop in float32 with TF_SET_ONEDNN_FPMATH_MODE=BF16,
  which lets oneDNN compute float32 convolutions and matrix products in bfloat16, with no
  casts in the graph;
- torch float32, torch bf16 (torch.autocast("cpu", dtype=torch.bfloat16)), and both with
  channels_last memory (NHWC, the layout Keras uses; PyTorch's default is NCHW).
The second table is the gap the issue asks about: Keras / PyTorch, target at least 1.00.

Run it on a quiet machine: PyTorch's OpenMP threads wait for each other, and on cores that
other processes share they stall. With two other busy processes on the 2 cores, PyTorch
trained 17x slower with 2 threads than with 1 (0.56 vs 9.9 images/s, 32x32, batch 2), a
penalty TensorFlow's thread pools did not pay; such a run says nothing about either side.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    add_torch_python, benchmark_parser, interleaved, markdown_table, measured_as_asked, median,
    peak_rss_mb, torch_python)

# Keras side: training_speed.py's side that measures it
KERAS_SIDES = {"keras float32": "keras", "zoo default": "zoo default",
               "zoo float32 + oneDNN bf16": "zoo float32"}
ENVIRONMENT = {"zoo float32 + oneDNN bf16": {"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}}
# PyTorch side: (bfloat16 autocast, channels_last)
TORCH_SIDES = {"torch float32": (False, False), "torch bf16": (True, False),
               "torch float32 channels_last": (False, True),
               "torch bf16 channels_last": (True, True)}
SIDES = (*KERAS_SIDES, *TORCH_SIDES)


def measure(side: str, threads, image, batch, steps) -> dict:
    threads, image, batch, steps = int(threads), int(image), int(batch), int(steps)
    if side in TORCH_SIDES:  # this process is the PyTorch environment's python
        from benchmarks.torch_resnet50 import measure as torch_measure

        figures = torch_measure(threads, image, batch, steps, *TORCH_SIDES[side])
        return {**figures, "peak_rss_mb": peak_rss_mb()}
    os.environ.update(ENVIRONMENT.get(side, {}))  # TensorFlow reads these once per process
    from zoo.devices import use_threads

    use_threads(threads)
    from benchmarks.training_speed import measure as keras_measure

    figures = keras_measure(KERAS_SIDES[side], "resnet50", image, batch, steps)
    settings = [f"{name}={value}" for name, value in ENVIRONMENT.get(side, {}).items()]
    return {**figures, "precision": ", ".join([figures["precision"], *settings]),
            "layout": "NHWC"}


def ratio(speeds: dict, side: str, other: str) -> str:
    return f"{speeds[side] / speeds[other]:.2f}" if side in speeds and other in speeds else "-"


def gap_row(threads: str, batch: str, speeds: dict) -> list | None:
    """Keras / PyTorch at one configuration: at matching precision, and the fastest of each."""
    keras = {side: speed for side, speed in speeds.items() if side not in TORCH_SIDES}
    torch = {side: speed for side, speed in speeds.items() if side in TORCH_SIDES}
    if not keras or not torch:
        return None
    fastest_keras, fastest_torch = max(keras, key=keras.get), max(torch, key=torch.get)
    return [threads, batch, ratio(speeds, "keras float32", "torch float32"),
            ratio(speeds, "zoo default", "torch bf16"),
            f"{ratio(speeds, fastest_keras, fastest_torch)} ({fastest_keras} / {fastest_torch})"]


def main():
    parser = benchmark_parser(__doc__, repeats=3,
                              smoke="32x32, batch 2, 2 steps, one thread count, one repetition")
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--image", type=int, default=96)
    parser.add_argument("--steps", type=int, default=20)
    add_torch_python(parser)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    python = torch_python(args.torch_python)
    if python and not os.access(python, os.X_OK):
        parser.error(f"the PyTorch python {python} is not an executable file")
    sides = args.sides
    if python is None:
        print("No PyTorch python (--torch-python or $ZOO_TORCH_PYTHON): measuring the Keras "
              "sides only.")
        sides = [side for side in sides if side not in TORCH_SIDES]
        if not sides:
            return
    if args.smoke:  # the Keras sides then run in this process, whose threads are set once
        args.threads, args.batches, args.image, args.steps, args.repeats = (
            args.threads[:1], [2], 32, 2, 1)
    cases = [[side, str(threads), str(args.image), str(batch), str(args.steps)]
             for threads in args.threads for batch in args.batches for side in sides]

    def interpreter(case):  # PyTorch's python for its sides; a fresh one for set variables
        return python if case[0] in TORCH_SIDES else (
            sys.executable if case[0] in ENVIRONMENT else None)

    results = interleaved(__file__, cases, args.repeats, measure if args.smoke else None,
                          interpreter)
    speeds = {}  # (threads, batch) -> side -> median images/s
    for (side, threads, _, batch, _), figures in zip(cases, results):
        speeds.setdefault((threads, batch), {})[side] = median(figures, "img_s")
    rows, parameters = [], {}  # model -> trainable parameters
    for (side, threads, _, batch, _), figures in zip(cases, results):
        group = speeds[threads, batch]
        model = (f"PyTorch {figures[0]['torch']} ({python})" if side in TORCH_SIDES else
                 "Keras (specs/resnet50.yaml)")
        parameters[model] = figures[0]["params"]
        rows.append([threads, batch, side, figures[0]["precision"], figures[0]["layout"],
                     f"{group[side]:.1f}", ratio(group, side, sides[0]),
                     f"{median(figures, 'peak_rss_mb'):.0f}"])
    print(f"ResNet-50 at {args.image}x{args.image}: medians of {args.repeats} alternating runs "
          f"each, {args.steps} timed steps; ratio: to {sides[0]} at the same threads and batch")
    print("trainable parameters: " + ", ".join(f"{model} {count:,}"
                                               for model, count in parameters.items()))
    print(markdown_table(["threads", "batch", "side", "precision", "layout", "images/s", "ratio",
                          "peak MB"], rows))
    gap = [row for (threads, batch), group in speeds.items()
           if (row := gap_row(threads, batch, group))]
    if gap:
        print("\nKeras / PyTorch, images/s (the issue's target: at least 1.00)")
        print(markdown_table(["threads", "batch", "keras float32 / torch float32",
                              "zoo default / torch bf16", "fastest Keras / fastest PyTorch"],
                             gap))


if __name__ == "__main__":
    main()
