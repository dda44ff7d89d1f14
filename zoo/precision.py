"""`train.precision: auto` where two precisions are worth trying (a CPU with bfloat16
instructions): float32 or mixed_bfloat16, whichever trains this model faster here, measured.

Which one wins depends on the model as much as on the CPU. On an AMD EPYC with AVX512-BF16
bfloat16 trains convolutions 1.2-2.0x as fast (BENCHMARKS.md, "Precision by layer type"),
while a MobileNet spec trained 4x slower in it on an AMX Xeon (issue 21). No rule per layer
type covers every spec a user may write, so the first run of a model on a machine times a
few of its training steps in each precision, on the run's own batches, and trains in the
faster. The figures are remembered per model and machine (a cache file, so the next run of
the model starts at once), and a run that resumes keeps the precision it began in (each
phase's state.json records it), so that it resumes exactly.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import glob
import itertools
import json
import math
import os
import time

import keras
import tensorflow as tf

from zoo.build import build_model
from zoo.checkpoints import spec_fingerprint
from zoo.devices import describe_threads, dtype_policy, is_chief, precision_candidates
from zoo.files import write_json_atomically
from zoo.optimization import make_loss, make_optimizer
from zoo.pipeline import Splits, distribute, training_batches
from zoo.source import plain
from zoo.training import Plan, Trainer

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")  # what `auto` may choose
ROUNDS = 3  # alternating rounds per precision at least; the fastest round of each decides
ROUND_SECONDS = 0.1  # each round lasts at least this long (or one step, if longer)
# While the fastest rounds are closer than this, more rounds follow, up to PROBE_SECONDS of
# them: on a noisy machine three short rounds cannot tell 5% from 15% (BENCHMARKS.md,
# "Precision by layer type"), and a close call is cheap to measure longer once per model.
CLEAR_MARGIN = 1.15
PROBE_SECONDS = 3.0
# Within this factor of the fastest, mixed_bfloat16 is taken: a near tie is beyond what the
# probe can rank here (a depthwise network measured 0.95-1.08 inside it and 1.04-1.17 in
# separate runs), and bfloat16 halves the activations' memory at float32's accuracy
# (BENCHMARKS.md, "Accuracy of the precision default"). Auto is then within 5% of the best.
TIE = 1.05
WARMUP_STEPS = 2  # the first traces the step, the second lets oneDNN pick its kernels
# In the train section, what changes the work a step does; the rest (epochs, seed, schedule)
# does not change which precision is faster.
STEP_KEYS = ("optimizer", "loss", "weight_decay", "target", "metrics", "xla")


@dataclasses.dataclass
class Choice:
    precision: str
    how: str  # what the log says of it


def choose_precision(spec, splits: Splits, strategy, checkpoints: str | None, check,
                     log) -> Choice:
    """The dtype policy a run trains in. `checkpoints`: the run's checkpoint folder (None when
    it restarts); `check(model)` raises the located errors of a model that cannot train on
    `splits`, so a probe never runs one. Under MultiWorkerMirroredStrategy the chief decides
    and the other workers take its choice."""
    setting = spec.train.get("precision") or "auto"
    if setting != "auto":
        return Choice(setting, "")
    choice = _chiefs_choice(spec, splits, strategy, checkpoints, check, log) \
        if is_chief(strategy) else None
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return choice
    # every worker votes, whatever its own hardware would choose
    if choice is None:  # fail as the chief would before waiting for its vote
        _checked_model(spec, check)
    chosen = _as_the_chief_chose(strategy, choice and choice.precision)
    return choice or Choice(chosen, "")  # only the chief logs


def _chiefs_choice(spec, splits: Splits, strategy, checkpoints: str | None, check,
                   log) -> Choice:
    options = precision_candidates("auto")
    if len(options) == 1:
        return Choice(options[0], "")
    recorded = recorded_precision(checkpoints) if checkpoints else None
    if recorded:
        return Choice(recorded, "as when this run began")
    return _measured_or_remembered(spec, splits, strategy, options, check, log)


def recorded_precision(checkpoints: str) -> str | None:
    """The precision an unfinished run trained in (its phases' state.json), if any."""
    for state_file in sorted(glob.glob(os.path.join(checkpoints, "*", "state.json"))):
        try:
            with open(state_file) as handle:
                precision = json.load(handle).get("extra", {}).get("precision")
        except (OSError, ValueError):
            continue
        if precision:
            return precision
    return None


def cache_file() -> str:
    """$ZOO_CACHE_DIR/precision.json, else under $XDG_CACHE_HOME or ~/.cache."""
    folder = os.environ.get("ZOO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zoo")
    return os.path.join(folder, "precision.json")


def _measured_or_remembered(spec, splits: Splits, strategy, options, check, log) -> Choice:
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)
    batch = max(1, plan.batch_size // strategy.num_replicas_in_sync)  # what a device computes
    key = _cache_key(spec, batch, options)
    remembered = _read_cache().get(key)
    if remembered:
        return _decided(remembered, batch, f"measured {remembered['date']}, remembered in "
                                           f"{cache_file()}")
    log(f"precision auto: timing a few training steps of {spec.name} in "
        f"{' and '.join(options)} (once per model and machine)")
    began = time.monotonic()
    plan = dataclasses.replace(plan, batch_size=batch)
    seconds = step_seconds(lambda: _checked_model(spec, check), spec.train, plan, lambda model:
                           training_batches(splits, tuple(model.inputs[0].shape[1:]), plan),
                           options)
    measured = {"spec": spec.name, "date": datetime.date.today().isoformat(),
                "seconds_per_step": seconds}
    _remember(key, measured)
    return _decided(measured, batch, f"measured in {time.monotonic() - began:.0f} s")


def _checked_model(spec, check) -> keras.Model:
    model = build_model(spec)
    check(model)
    return model


def _decided(measured: dict, batch: int, how: str) -> Choice:
    seconds = measured["seconds_per_step"]
    winner = precision_to_train_in(seconds)
    other = max((name for name in seconds if name != winner), key=seconds.get)
    tie = (f", a tie within {TIE - 1:.0%}, which goes to it" if seconds[winner] > seconds[other]
           else "")
    return Choice(winner, f"{seconds[other] / seconds[winner]:.2f}x as fast as {other}{tie} "
                          f"for this model here ({1000 * seconds[winner]:.3g} vs "
                          f"{1000 * seconds[other]:.3g} ms a step of {batch}; {how})")


def step_seconds(build, section, plan: Plan, dataset_for, options) -> dict:
    """Seconds a training step takes in each dtype policy of `options`: `build()` makes the
    model under each, trained as `section` trains (optimizer, loss, weight decay) with
    `plan`'s batch size on one device, on the batches of `dataset_for(model)`."""
    strategy, one = tf.distribute.get_strategy(), tf.constant(1)
    steps = {}
    for name in options:
        with dtype_policy(name):
            model = build()
            optimizer = make_optimizer(section, plan.steps_per_epoch, plan.epochs)
            trainer = Trainer(strategy, model, optimizer, make_loss(section), plan)
        steps[name] = functools.partial(trainer.train_steps,
                                        distribute(strategy, dataset_for(model)), one)
    return time_alternately(steps)


def precision_to_train_in(seconds: dict) -> str:
    """The precision to train in: the fastest, or mixed_bfloat16 within TIE of it."""
    quickest = min(seconds, key=seconds.get)
    if seconds.get("mixed_bfloat16", math.inf) <= TIE * seconds[quickest]:
        return "mixed_bfloat16"
    return quickest


def time_alternately(steps: dict) -> dict:
    """Seconds per call of each step function in its fastest of at least ROUNDS alternating
    rounds, more while the two are within CLEAR_MARGIN (for up to PROBE_SECONDS). Other work
    on the machine only ever slows a round down, so the fastest is the nearest to the step's
    own speed (timeit's reasoning); alternating spreads a busy minute over both."""
    for step in steps.values():
        for _ in range(WARMUP_STEPS):
            step().numpy()
    began = time.perf_counter()
    for step in steps.values():
        step().numpy()
    calls = max(1, math.ceil(ROUND_SECONDS * len(steps) / (time.perf_counter() - began)))
    rounds = {name: [] for name in steps}
    probing = time.perf_counter()
    for done in itertools.count(1):
        for name, step in steps.items():
            began = time.perf_counter()
            for _ in range(calls):
                step().numpy()
            rounds[name].append((time.perf_counter() - began) / calls)
        best = {name: min(seconds) for name, seconds in rounds.items()}
        clear = max(best.values()) >= CLEAR_MARGIN * min(best.values())
        if done >= ROUNDS and (clear or time.perf_counter() - probing >= PROBE_SECONDS):
            return best


def _cache_key(spec, batch: int, options) -> str:
    """What decides which precision is faster: the model, the step's work, the batch each
    device computes, and the machine (CPU, cores this process may use, threads, TensorFlow)."""
    return spec_fingerprint({
        "model": plain(spec.model), "train": {key: plain(spec.train.get(key))
                                              for key in STEP_KEYS},
        "batch": batch, "options": list(options), "cpu": _cpu_name(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(), "threads": describe_threads(),
        "tensorflow": tf.__version__})


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name")), "")
    except OSError:
        return ""


def _read_cache() -> dict:
    try:
        with open(cache_file()) as handle:
            cache = json.load(handle)
        return cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):  # none yet, or damaged: measure again and write it anew
        return {}


def _remember(key: str, measured: dict) -> None:
    try:
        os.makedirs(os.path.dirname(cache_file()), exist_ok=True)
        write_json_atomically(cache_file(), {**_read_cache(), key: measured})
    except OSError:  # a read-only home: the next run measures again
        pass


def _as_the_chief_chose(strategy, choice: str | None) -> str:
    """Every worker trains in the chief's choice: one all-reduce of a vote only the chief
    casts (the others have none to give, and a worker of other hardware must not differ)."""
    vote = tf.constant([1.0 if name == choice else 0.0 for name in POLICIES])

    @tf.function
    def count():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: vote),
                               axis=None)

    return POLICIES[int(tf.argmax(count()))]
