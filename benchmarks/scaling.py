"""Scaling over machines: two MultiWorkerMirroredStrategy workers, one core each, vs one.

    python benchmarks/scaling.py                  # lenet and resnet20 on mnist_subset
    python benchmarks/scaling.py --smoke          # one short epoch: checks it still runs

Real `train.py` processes pinned with `taskset` (worker i on core i), a real cluster on
127.0.0.1 through TF_CONFIG. Three runs per spec, alternating, each repeated:
- 1 worker, global batch B, core 0;
- 1 worker, batch B/2, core 0 (what each of two workers computes per step);
- 2 workers, global batch B (B/2 each), cores 0 and 1.
Throughput is training images/s of the chief, median over epochs after the first;
the per-step communication cost is the two-worker step time minus the one-worker
step time at B/2 (the same computation per worker, without the all-reduce). The last
column times a step's two all-reduces alone (the gradients, the statistics) on the same
pinned pair: what the communication would cost with no worker waiting for the other.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import ROOT, markdown_table  # noqa: E402

CASES = {"lenet": 128, "resnet20": 64}  # spec: global batch
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ .* seconds ([0-9.]+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_pinned(arguments: list, workers: int, what: str) -> str:
    """`python ARGUMENTS` as `workers` processes of one cluster on 127.0.0.1 (TF_CONFIG),
    worker i pinned to core i; returns the chief's standard output."""
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
    processes = []
    for index in range(workers):
        environment = dict(os.environ)
        if workers > 1:
            environment["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                                   "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            ["taskset", "-c", str(index), sys.executable, *arguments], env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate() for process in processes]
    for process, (_, errors) in zip(processes, outputs):
        if process.returncode != 0:
            raise SystemExit(f"{what} failed:\n{errors[-2000:]}")
    return outputs[0][0]


def epoch_seconds(spec: str, batch: int, workers: int, epochs: int, steps: int) -> list:
    """Seconds of each epoch after the first, as the chief logged them."""
    with tempfile.TemporaryDirectory() as output:
        log = run_pinned([os.path.join(ROOT, "train.py"),
                          os.path.join(ROOT, "specs", f"{spec}.yaml"), "--output", output,
                          "--results", "",  # a benchmark's runs are not the zoo's results
                          "--set", "data.dataset=mnist_subset",
                          "--set", "data.validation_split=test[:64]",
                          "--set", f"train.batch_size={batch}",
                          "--set", f"train.epochs={epochs}",
                          "--set", f"train.steps_per_epoch={steps}"],
                         workers, f"{spec} with {workers} worker(s)")
    return [float(seconds) for epoch, seconds in EPOCH_LINE.findall(log) if int(epoch) > 1]


def all_reduce_ms(spec: str, steps: int) -> float:
    """Milliseconds of a training step's two all-reduces alone (the spec's gradients as one
    float32 vector, then the step's statistics) between two workers pinned as above."""
    log = run_pinned([__file__, "--all-reduce-worker", spec, str(steps)], 2,
                     f"the all-reduce of {spec}")
    return float(log.split()[-1])


def all_reduce_worker(spec: str, steps: int) -> None:
    import tensorflow as tf

    import zoo

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    size = sum(int(tf.size(weight)) for weight in zoo.build_model(zoo.load_spec(
        os.path.join(ROOT, "specs", f"{spec}.yaml"))).trainable_weights)
    with strategy.scope():
        gradients = tf.Variable(tf.ones([size]))

    @tf.function
    def step():
        def replica():
            summed = tf.distribute.get_replica_context().all_reduce("SUM", gradients * 1.0)
            return tf.stack([tf.reduce_sum(summed), 1.0])  # like the statistics
        return strategy.reduce("SUM", strategy.run(replica), axis=None)

    for _ in range(5):  # tracing, connections
        step().numpy()
    began = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    print((time.perf_counter() - began) / steps * 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images-per-epoch", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--all-reduce-worker", nargs=2, metavar=("SPEC", "STEPS"),
                        help=argparse.SUPPRESS)  # one worker of all_reduce_ms
    args = parser.parse_args()
    if args.all_reduce_worker:
        spec, steps = args.all_reduce_worker
        return all_reduce_worker(spec, int(steps))
    specs = {"lenet": 16} if args.smoke else {name: CASES[name] for name in args.specs}
    if args.smoke:
        args.epochs, args.images_per_epoch, args.repeats = 2, 64, 1
    rows = []
    for spec, batch in specs.items():
        runs = {"1 worker, batch B": (batch, 1), "1 worker, batch B/2": (batch // 2, 1),
                "2 workers, batch B/2 each": (batch, 2)}
        seconds = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (global_batch, workers) in runs.items():
                steps = args.images_per_epoch // global_batch
                seconds[name] += [value / steps for value in epoch_seconds(
                    spec, global_batch, workers, args.epochs, steps)]
        step = {name: statistics.median(values) for name, values in seconds.items()}
        one = batch / step["1 worker, batch B"]
        two = batch / step["2 workers, batch B/2 each"]
        communication = step["2 workers, batch B/2 each"] - step["1 worker, batch B/2"]
        alone = statistics.median(all_reduce_ms(spec, 5 if args.smoke else 50)
                                  for _ in range(args.repeats))
        rows.append([spec, batch, f"{one:.1f}", f"{two:.1f}", f"{two / one:.2f}",
                     f"{communication * 1000:.1f}", f"{alone:.1f}"])
    print(f"medians over epochs 2..{args.epochs} of {args.repeats} alternating repetitions; "
          "epochs include a 64-image validation pass")
    print(markdown_table(["spec", "global batch B", "1 worker, images/s",
                          "2 workers, images/s", "speed-up (ideal 2.0)",
                          "communication per step, ms", "the all-reduces alone, ms"], rows))


if __name__ == "__main__":
    main()
