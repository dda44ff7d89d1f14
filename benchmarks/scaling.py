"""Scaling over machines: two MultiWorkerMirroredStrategy workers, one core each, vs one.

    python benchmarks/scaling.py                  # lenet and resnet20 on mnist_subset
    python benchmarks/scaling.py --smoke          # one short epoch: checks it still runs
    python benchmarks/scaling.py --profile        # where a two-worker step's time goes
    python benchmarks/scaling.py --specs lenet --batches 128 256 512 1024   # the smallest
                                                  # global batch at which two workers win
    python benchmarks/scaling.py --specs resnet20 --workers 4   # four workers on two cores

Real `train.py` processes pinned with `taskset` (worker i on core i), a real cluster on
127.0.0.1 through TF_CONFIG. Three runs per spec, alternating, each repeated:
- 1 worker, global batch B, core 0;
- 1 worker, batch B/2, core 0 (what each of two workers computes per step);
- 2 workers, global batch B (B/2 each), cores 0 and 1.
Throughput is training images/s of the chief, median over epochs after the first;
the per-step communication cost is the two-worker step time minus the one-worker
step time at B/2 (the same computation per worker, without the all-reduce). The next
column times a step's two all-reduces alone (the gradients, the statistics) on the same
pinned pair: what the communication would cost with no worker waiting for the other.
The last column is the largest share of the pinned cores' time that the hypervisor gave to
something else (steal, from /proc/stat) in any repetition: a run with steal is a slowed run.
With --workers 4 on this 2-core machine, worker i is pinned to core i mod 2: two workers
share each core, so the step time measures the all-reduce's extra hops, not the speed-up.

--profile times the parts of one worker's step in a two-worker cluster (pinned as above),
each alone over the same steps: taking the batches (the whole global batch prepared and
split, as before, or only the worker's share, as now), the training step with its batch
taken inside the function, one step per call or STEPS_PER_EXECUTION, and the all-reduces
alone. The rest of a step is one worker waiting for the other.
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


def run_pinned(arguments: list, workers: int, what: str, first_core: int = 0) -> str:
    """`python ARGUMENTS` as `workers` processes of one cluster on 127.0.0.1 (TF_CONFIG),
    worker i pinned to core first_core + i (modulo the cores); returns the chief's standard
    output."""
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
    processes = []
    for index in range(workers):
        environment = dict(os.environ)
        if workers > 1:
            environment["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                                   "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            ["taskset", "-c", str((first_core + index) % os.cpu_count()), sys.executable,
             *arguments],
            env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate() for process in processes]
    for process, (_, errors) in zip(processes, outputs):
        if process.returncode != 0:
            raise SystemExit(f"{what} failed:\n{errors[-2000:]}")
    return outputs[0][0]


def cpu_jiffies(cores: set) -> tuple:
    """(all, stolen) time of `cores` so far, in clock ticks, from /proc/stat: stolen is the
    time the hypervisor gave this virtual machine's cores to something else."""
    with open("/proc/stat") as stat:
        rows = [line.split() for line in stat if re.match(r"cpu\d", line)]
    counts = [[int(count) for count in row[1:9]] for row in rows if int(row[0][3:]) in cores]
    return sum(sum(count) for count in counts), sum(count[7] for count in counts)


def epoch_seconds(spec: str, batch: int, workers: int, epochs: int, steps: int) -> tuple:
    """Seconds of each epoch after the first, as the chief logged them, and the share of the
    run's cores' time that the hypervisor stole."""
    cores = {index % os.cpu_count() for index in range(workers)}
    before = cpu_jiffies(cores)
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
    (all_after, stolen_after), (all_before, stolen_before) = cpu_jiffies(cores), before
    return ([float(seconds) for epoch, seconds in EPOCH_LINE.findall(log) if int(epoch) > 1],
            (stolen_after - stolen_before) / max(all_after - all_before, 1))


def all_reduce_ms(spec: str, steps: int, workers: int = 2) -> float:
    """Milliseconds of a training step's two all-reduces alone (the spec's gradients as one
    float32 vector, then the step's statistics) between workers pinned as above."""
    log = run_pinned([__file__, "--all-reduce-worker", spec, str(steps)], workers,
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


def profile_worker(spec: str, batch: int, steps: int) -> None:
    """One worker of --profile: milliseconds a step of each part, as one JSON line; run
    alone (no TF_CONFIG), the milliseconds of each of `steps` steps, one a call."""
    import functools

    import keras
    import tensorflow as tf

    import zoo
    from zoo.devices import STEPS_PER_EXECUTION, dtype_policy, precision_candidates
    from zoo.optimization import make_loss, make_optimizer
    from zoo.pipeline import distribute, distribute_by_worker, load_splits, training_batches
    from zoo.training import Plan, Trainer

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ \
        else tf.distribute.get_strategy()
    loaded = zoo.load_spec(os.path.join(ROOT, "specs", f"{spec}.yaml"),
                           ["data.dataset=mnist_subset", f"train.batch_size={batch}"])
    splits = load_splits(loaded, "train", download=False)
    plan = Plan.from_section(loaded.train, splits.info, splits.train_size)
    # bfloat16 where the CPU has it, as the figures in BENCHMARKS.md were taken (the probe
    # that `auto` runs in train.py would need the two workers to agree first)
    with dtype_policy(precision_candidates(None)[-1]):
        with strategy.scope():
            model = zoo.build_model(loaded)
            optimizer = make_optimizer(loaded.train, plan.steps_per_epoch, plan.epochs)
            optimizer.build(model.trainable_weights)
            trainer = Trainer(strategy, model, optimizer, make_loss(loaded.train), plan)
        shape = tuple(model.inputs[0].shape[1:])
        whole = distribute(strategy, training_batches(splits, shape, plan))
        share = distribute_by_worker(strategy, functools.partial(
            training_batches, splits, shape, plan, 0, 0))

        def per_step(work, count: int = 1) -> float:
            work()  # tracing, warming up
            began = time.perf_counter()
            for _ in range(steps // count):
                work()
            return (time.perf_counter() - began) / (steps // count * count) * 1000

        if "TF_CONFIG" not in os.environ:  # each step alone: how much one step varies
            def one_step():
                trainer.train_steps(share, tf.constant(1)).numpy()
            for _ in range(3):  # tracing, warming up
                one_step()
            return print(json.dumps([1000 * timed(one_step) for _ in range(steps)]))
        figures = {
            "input: whole batch, split": per_step(lambda: next(whole)),
            "input: own share": per_step(lambda: next(share)),
            "step, 1 per call": per_step(lambda: trainer.train_steps(
                share, tf.constant(1)).numpy()),
            f"steps, {STEPS_PER_EXECUTION} per call": per_step(lambda: trainer.train_steps(
                share, tf.constant(STEPS_PER_EXECUTION)).numpy(), STEPS_PER_EXECUTION)}
    keras.backend.clear_session()
    print(json.dumps(figures))


def timed(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def profile(spec: str, batch: int, steps: int) -> list:
    """A table row per part of a two-worker step of `spec` at global batch `batch`, then
    what a synchronous step costs besides the all-reduces: each worker's own step (half the
    batch, one worker alone on its core, one step a call) varies from step to step and from
    core to core, and every step of the pair waits for the slower of the two."""
    log = run_pinned([__file__, "--profile-worker", spec, str(batch), str(steps)], 2,
                     f"the profile of {spec}")
    figures = json.loads(log.strip().splitlines()[-1])
    figures["all-reduces alone"] = all_reduce_ms(spec, steps)
    alone = [json.loads(run_pinned([__file__, "--profile-worker", spec, str(batch // 2),
                                    str(steps)], 1, f"{spec} alone on core {core}",
                                   first_core=core).strip().splitlines()[-1])
             for core in (0, 1)]
    for core, times in enumerate(alone):
        figures[f"one step alone on core {core} (median, sd)"] = (
            statistics.median(times), statistics.stdev(times))
    # the steps of the two cores paired in every way: what a step waiting for the slower costs
    figures["the slower of the two cores' steps (mean)"] = statistics.mean(
        max(first, second) for first in alone[0] for second in alone[1])
    figures["predicted pair step: slower core + all-reduces"] = (
        figures["the slower of the two cores' steps (mean)"] + figures["all-reduces alone"])
    return [[spec, batch, part, f"{ms[0]:.1f} ({ms[1]:.1f})" if isinstance(ms, tuple)
             else f"{ms:.1f}"] for part, ms in figures.items()]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images-per-epoch", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--batches", nargs="+", type=int,
                        help="global batches to measure (default: each spec's own)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--all-reduce-worker", nargs=2, metavar=("SPEC", "STEPS"),
                        help=argparse.SUPPRESS)  # one worker of all_reduce_ms
    parser.add_argument("--profile-worker", nargs=3, metavar=("SPEC", "BATCH", "STEPS"),
                        help=argparse.SUPPRESS)  # one worker of profile
    args = parser.parse_args()
    if args.all_reduce_worker:
        spec, steps = args.all_reduce_worker
        return all_reduce_worker(spec, int(steps))
    if args.profile_worker:
        spec, batch, steps = args.profile_worker
        return profile_worker(spec, int(batch), int(steps))
    cases = [(name, batch) for name in args.specs for batch in args.batches or [CASES[name]]]
    if args.smoke:
        cases, args.epochs, args.images_per_epoch, args.repeats = [("lenet", 16)], 2, 64, 1
    if args.profile:
        rows = [row for spec, batch in cases for row in profile(spec, batch, 8 if args.smoke
                                                                 else 96)]
        print("ms per step of one worker of two, each part timed alone")
        return print(markdown_table(["spec", "global batch", "part", "ms per step"], rows))
    rows = []
    for spec, batch in cases:
        n = args.workers
        runs = {"1 worker, batch B": (batch, 1), f"1 worker, batch B/{n}": (batch // n, 1),
                f"{n} workers, batch B/{n} each": (batch, n)}
        seconds, stolen = {name: [] for name in runs}, {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (global_batch, workers) in runs.items():
                # at least 16 steps an epoch: the epoch's end (validation, checkpoint) is
                # then a small part of a step's time, however large the batch
                steps = max(args.images_per_epoch // global_batch, 16)
                epochs, steal = epoch_seconds(spec, global_batch, workers, args.epochs, steps)
                seconds[name] += [value / steps for value in epochs]
                stolen[name].append(steal)
        step = {name: statistics.median(values) for name, values in seconds.items()}
        spread = {name: (min(values), max(values)) for name, values in seconds.items()}
        one, several = (batch / step[name] for name in (
            "1 worker, batch B", f"{n} workers, batch B/{n} each"))
        low, high = (batch / spread[f"{n} workers, batch B/{n} each"][i] / (
            batch / spread["1 worker, batch B"][1 - i]) for i in (1, 0))
        communication = step[f"{n} workers, batch B/{n} each"] - step[f"1 worker, batch B/{n}"]
        alone = statistics.median(all_reduce_ms(spec, 5 if args.smoke else 50, n)
                                  for _ in range(args.repeats))
        rows.append([spec, batch, f"{one:.1f}", f"{several:.1f}",
                     f"{several / one:.2f} ({low:.2f}-{high:.2f})",
                     f"{communication * 1000:.1f}", f"{alone:.1f}",
                     " / ".join(f"{100 * max(stolen[name]):.1f}" for name in (
                         "1 worker, batch B", f"{n} workers, batch B/{n} each"))])
    print(f"medians over epochs 2..{args.epochs} of {args.repeats} alternating repetitions "
          "(in brackets: slowest to fastest epochs); epochs include a 64-image validation pass;\n"
          "most stolen: the largest share of the pinned cores' time the hypervisor took, in "
          "any repetition")
    print(markdown_table(["spec", "global batch B", "1 worker, images/s",
                          f"{n} workers, images/s", f"speed-up (ideal {n}.0)",
                          "communication per step, ms", "the all-reduces alone, ms",
                          f"most stolen, % (1 worker / {n} workers)"], rows))


if __name__ == "__main__":
    main()
