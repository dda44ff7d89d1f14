"""Where the training time goes: the zoo's loop under the TensorFlow profiler, op by op.

    python benchmarks/profile_training.py                    # resnet50, float32 and default
    python benchmarks/profile_training.py --spec alexnet --steps 5 --top 20
    python benchmarks/profile_training.py --spec resnet20 --logdir /tmp/profile
    python benchmarks/profile_training.py --smoke            # seconds: checks it still runs

Each side (benchmarks/training_speed.py's zoo sides, same specs, input sizes and batches)
trains in its own process; after the untimed warm-up steps, `--steps` steps run under
`tf.profiler.experimental` (host tracer only). The trace it writes,
`plugins/profile/*/HOST.xplane.pb`, is an XSpace protocol buffer, read here with the
classes TensorFlow ships (no profile plugin needed; with `--logdir` the trace is kept, and
TensorBoard with `tensorboard-plugin-profile` shows it). In it, every op the executor ran
is an event `node/name:OpType` on the thread that ran it.

Per training step, in milliseconds and as a share of the step's wall time (from the images/s
measured while profiling), the tables show:
- by category: convolution forward and backward, matmul, normalization (the ops inside a
  normalization layer, casts aside: Keras 3 computes batch normalization with element-wise
  ops and reductions), pooling, casts (most come from the mixed_bfloat16 policy), the optimizer
  update (ops under the optimizer's name scope), variable reads and data, and the rest
  (element-wise ops, reductions, the loss);
- "no op running": the time in which no thread was in any op: Python, dispatch, the
  executor's scheduling between ops;
- the top op types.
An op's time is its self time (time in which it was the innermost op on its thread). TensorFlow
runs up to as many ops at once as it has inter-op threads (one per core, each op using the
intra-op threads too), so a moment in which two ops ran is split between them: then the
categories and "no op running" add up to the step. The last row of the first table adds
the ops' own times without splitting: above 100% when ops overlapped.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import training_speed  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median)

SIDES = ("zoo float32", "zoo bf16", "zoo default")  # XLA would run the step as one op
CATEGORIES = ("convolution forward", "convolution backward", "matmul", "normalization",
              "pooling", "casts", "optimizer update", "variables, data",
              "element-wise, reductions, loss")
# benchmarks/measure.py trains with SGD; Keras names its scope sgd (sgd_1 for a second one).
OPTIMIZER_SCOPE = r"sgd(_\d+)?/"


def category(op_type: str, node: str, layer_classes: dict) -> str:
    """An op's category from its type (oneDNN's _Mkl / _MklNative prefix removed), its node
    name (gradient_tape/resnet20_1/stage1_block1_bn1_1/moments/Mul: which layer, or the
    optimizer) and the classes of the model's layers (name -> class name)."""
    bare = re.sub(r"^_Mkl(Native)?", "", op_type)
    if "Conv" in bare:
        return "convolution backward" if "Backprop" in bare else "convolution forward"
    if "MatMul" in bare or bare == "Einsum":
        return "matmul"
    if re.match(OPTIMIZER_SCOPE, node):
        return "optimizer update"
    if bare == "Cast":
        return "casts"
    # Keras 3 normalizes with element-wise ops and reductions (no FusedBatchNorm); the zoo's
    # local response normalization too: the layer they run in tells.
    layer = next((layer_classes[name] for part in node.split("/")
                  for name in (part, re.sub(r"_\d+$", "", part)) if name in layer_classes), "")
    if layer.endswith("Normalization") or "BatchNorm" in bare or bare.startswith("LRN"):
        return "normalization"
    if "Pool" in bare:
        return "pooling"
    if re.search("Variable|Iterator|Dataset|Placeholder", bare):
        return "variables, data"
    return "element-wise, reductions, loss"


def op_times(xplane_path: str, layer_classes: dict) -> dict:
    """Picoseconds per (op type, category) from a trace: "self", the time in which the op was
    the innermost op on its thread; "wall", that time split evenly among the ops running at
    the same moment on other threads (so the ops' wall times add up to "busy", the time in
    which any op ran)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as trace:
        space.ParseFromString(trace.read())
    boundaries = []  # (time, 0 for an end / 1 for a start, thread, key)
    for plane in space.planes:
        for thread, line in enumerate(plane.lines):
            for event in line.events:
                metadata = plane.event_metadata[event.metadata_id]
                node, _, op_type = metadata.name.rpartition(":")
                if node and op_type == metadata.display_name:  # an op, not a runtime region
                    key = (op_type, category(op_type, node, layer_classes))
                    start = line.timestamp_ns * 1000 + event.offset_ps
                    boundaries += [(start, 1, (plane.id, thread), key),
                                   (start + event.duration_ps, 0, (plane.id, thread), key)]
    self_ps, wall_ps, busy, now = collections.Counter(), collections.Counter(), 0, None
    running = collections.defaultdict(list)  # thread -> its ops, the innermost last
    for time, starts, thread, key in sorted(boundaries):
        innermost = [ops[-1] for ops in running.values() if ops]
        if innermost:
            for op in innermost:
                self_ps[op] += time - now
                wall_ps[op] += (time - now) / len(innermost)
            busy += time - now
        now = time
        if starts:
            running[thread].append(key)
        else:
            running[thread].remove(key)
    return {"self": self_ps, "wall": wall_ps, "busy": busy}


@contextlib.contextmanager
def profiling(logdir: str, model, layer_classes: dict):
    """Profiles the steps run inside it into `logdir`; notes the model's layer classes."""
    import tensorflow as tf

    layer_classes.update({layer.name: type(layer).__name__ for layer in model.layers})
    tf.profiler.experimental.start(logdir, tf.profiler.experimental.ProfilerOptions(
        host_tracer_level=2, python_tracer_level=0, device_tracer_level=0))
    try:
        yield
    finally:
        tf.profiler.experimental.stop()


def measure(side: str, spec: str, image, batch, steps, logdir) -> dict:
    """One side's profile: milliseconds per step of each op type, of all ops, of the step."""
    layer_classes = {}
    with contextlib.ExitStack() as stack:
        logdir = logdir or stack.enter_context(tempfile.TemporaryDirectory())
        figures = training_speed.measure(
            side, spec, image, batch, steps,
            around_timed=lambda model: profiling(logdir, model, layer_classes))
        traces = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
        times = op_times(max(traces, key=os.path.getmtime), layer_classes)
    per_step = 1e9 * int(steps)  # picoseconds -> milliseconds per step
    return {"precision": figures["precision"], "img_s": figures["img_s"],
            "step_ms": 1000 * int(batch) / figures["img_s"], "busy_ms": times["busy"] / per_step,
            "ops": [[*key, times["self"][key] / per_step, wall / per_step]
                    for key, wall in times["wall"].items()]}


def median_ops(figures: list[dict], column: int) -> dict:
    """Median over repetitions of each (op type, category)'s self (2) or wall (3) ms/step."""
    runs = [{(op[0], op[1]): op[column] for op in figure["ops"]} for figure in figures]
    return {key: statistics.median(run.get(key, 0.0) for run in runs)
            for key in set().union(*runs)}


def cells(sides_ms: list[float], steps_ms: list[float]) -> list[str]:
    """Per side: ms per step and share of the step; after the first, its speed-up over it."""
    row = []
    for index, (ms, step) in enumerate(zip(sides_ms, steps_ms)):
        row += [f"{ms:.1f}", f"{ms / step:.0%}"]
        if index:
            row.append(f"{sides_ms[0] / ms:.2f}" if ms and sides_ms[0] else "n/a")
    return row


def main():
    parser = benchmark_parser(__doc__, repeats=1, smoke="lenet, batch 8, 3 steps")
    parser.add_argument("--spec", default="resnet50", choices=training_speed.CASES)
    parser.add_argument("--sides", nargs="+", default=["zoo float32", "zoo default"],
                        choices=SIDES)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=15, help="op types in the second table")
    parser.add_argument("--logdir", default="", help="keep the traces here (one per side)")
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    spec, (image, batch) = args.spec, training_speed.CASES[args.spec]
    if args.smoke:
        spec, image, batch, args.steps, args.repeats = "lenet", 0, 8, 3, 1
    runs = [[side, spec, str(image), str(batch), str(args.steps),
             os.path.join(args.logdir, side.replace(" ", "_")) if args.logdir else ""]
            for side in args.sides]
    results = interleaved(__file__, runs, args.repeats, measure if args.smoke else None)
    steps_ms = [median(figures, "step_ms") for figures in results]
    walls = [median_ops(figures, 3) for figures in results]
    header = []
    for index, (side, figures) in enumerate(zip(args.sides, results)):
        header += [f"{side} ({figures[0]['precision']}) ms", "share"]
        header += ["speed-up"] if index else []

    by_category = [collections.Counter() for _ in walls]
    for wall, totals in zip(walls, by_category):
        for (_, group), ms in wall.items():
            totals[group] += ms
    rows = [[group, *cells([totals[group] for totals in by_category], steps_ms)]
            for group in CATEGORIES]
    rows.append(["no op running", *cells([max(0.0, step - median(figures, "busy_ms"))
                                          for step, figures in zip(steps_ms, results)],
                                         steps_ms)])
    rows.append(["step", *cells(steps_ms, steps_ms)])
    rows.append(["(ops' own times added over threads)", *cells(
        [sum(median_ops(figures, 2).values()) for figures in results], steps_ms)])

    keys = sorted(set().union(*walls), key=lambda key: -max(wall.get(key, 0.0)
                                                             for wall in walls))
    top = [[op, group, *cells([wall.get((op, group), 0.0) for wall in walls], steps_ms)]
           for op, group in keys[:args.top]]

    speeds = ", ".join(f"{side} {median(figures, 'img_s'):.1f}"
                       for side, figures in zip(args.sides, results))
    print(f"{spec}, batch {batch}, {args.steps} profiled steps, medians of {args.repeats} "
          f"runs; images/s under the profiler: {speeds}. Milliseconds per step, overlapping "
          f"ops splitting the time; speed-up: the first side's time over this side's")
    print(markdown_table(["category", *header], rows))
    print()
    print(markdown_table(["op type", "category", *header], top))


if __name__ == "__main__":
    main()
