"""The devices a run trains on: the tf.distribute strategy over them, and per-device defaults
for speed (numeric precision, XLA compilation, threads).

`train.precision`, `train.xla` and `train.threads` in a spec override them; `auto` (the default)
picks what the benchmarks measured fastest at equal accuracy (BENCHMARKS.md):

- CPU with bfloat16 instructions (AVX512-BF16 or AMX): float32 or the
  `mixed_bfloat16` policy (variables and the output layers stay float32),
  whichever trains the model faster, measured (zoo.precision). On an AMX Xeon
  bfloat16 trained ResNet-20 1.62x and LeNet 1.42x faster than float32, with
  the same accuracy at the end of their recipes, but a MobileNet 4x slower.
  Other CPUs: float32.
- XLA off on a CPU: it trained ResNet-20 at 0.41x and LeNet at 0.56x the speed
  of the same step without it (AMX Xeon), ResNet-50 about 3x slower (an AMD EPYC).
- Threads: TensorFlow's own pools (intra-op and inter-op, one thread per core
  each); one inter-op thread trained ResNet-50 at 0.92x and ResNet-20 at 0.96x.
  `threads: N` gives each pool N threads instead, to train on N cores of a
  shared machine.
- GPU: `mixed_float16` (tensor cores; the loss is scaled against underflow)
  and XLA on a single device. Keras turns XLA off under any tf.distribute
  strategy and so does the zoo. No GPU was here to measure this; it follows
  the TensorFlow and Keras performance guides.
"""

from __future__ import annotations

import contextlib
import json
import os

import keras
import tensorflow as tf


def cpu_has_bfloat16() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:  # not Linux: no way to tell cheaply, stay with float32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def precision_candidates(setting: str | None) -> tuple[str, ...]:
    """The Keras dtype policies a run may train in: the one the spec sets, else the device's
    (two on a CPU with bfloat16 instructions, where zoo.precision measures which is faster
    for the model)."""
    if setting not in (None, "auto"):
        return (setting,)
    if _has_gpu():
        return ("mixed_float16",)
    return ("float32", "mixed_bfloat16") if cpu_has_bfloat16() else ("float32",)


def choose_xla(setting, strategy: tf.distribute.Strategy) -> bool:
    """Whether the training step is compiled with XLA."""
    if setting not in (None, "auto"):
        return bool(setting)
    single_device = strategy.num_replicas_in_sync == 1 and not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy)
    return _has_gpu() and single_device


def choose_steps_per_execution(setting, strategy: tf.distribute.Strategy) -> int:
    """Training steps per call of the compiled loop. Several replicas: STEPS_PER_EXECUTION,
    since each call costs every replica a dispatch from Python and a fetch, which the
    slowest one holds up (benchmarks/scaling.py); one device: one, as it always trained."""
    if setting not in (None, "auto"):
        return setting
    return STEPS_PER_EXECUTION if strategy.num_replicas_in_sync > 1 else 1


STEPS_PER_EXECUTION = 8


def use_threads(setting) -> None:
    """Size TensorFlow's intra-op and inter-op pools; possible only before TensorFlow starts
    its runtime (the first op, device listing or strategy), a RuntimeError after."""
    if setting in (None, "auto"):
        return
    tf.config.threading.set_intra_op_parallelism_threads(setting)
    tf.config.threading.set_inter_op_parallelism_threads(setting)


def describe_threads() -> str:
    """The pools' sizes as TensorFlow has them; '' when they are its defaults."""
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return f"{intra} intra-op / {inter} inter-op threads" if intra or inter else ""


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build and train under a Keras dtype policy; the previous one is back afterwards, so a
    process that trains several specs (tests, experiments) never inherits one."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# --- the tf.distribute strategy -------------------------------------------------------------


def choose_strategy(name: str | None = None) -> tf.distribute.Strategy:
    """`name` (from --strategy) or, by default, what the hardware and cluster call for.

    Several workers come from TF_CONFIG, or from Slurm (`srun` with several tasks).
    """
    workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
    slurm = not workers and int(os.environ.get("SLURM_NTASKS", "1")) > 1
    if name is None:  # physical devices: listing logical ones would start the runtime too early
        gpus = tf.config.list_physical_devices("GPU")
        name = "multi_worker" if len(workers) > 1 or slurm else \
            "mirrored" if len(gpus) > 1 else "default"
    if name == "multi_worker":
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver() if slurm else None
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def split_logical_cpus(count: int) -> None:
    """Present the CPU as `count` devices, to run multi-device code where there are no GPUs."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


_STRATEGY_NAMES = {"CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy",
                   "_DefaultDistributionStrategy": "the default strategy"}


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The name users know a strategy by (MultiWorkerMirroredStrategy's class is called
    CollectiveAllReduceStrategy)."""
    return _STRATEGY_NAMES.get(type(strategy).__name__, type(strategy).__name__)
