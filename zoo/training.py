"""The training loop under a tf.distribute strategy: optimizer, loss, schedule, early stopping,
checkpoints and resume, and the phases a run trains in order (`run_phases`).

One custom training loop serves every strategy. Keras 3's `Model.fit` fails
under MultiWorkerMirroredStrategy (keras-team/keras#20585), while a step run
with `strategy.run` over a distributed dataset works everywhere, so there is
no second code path to keep in step with the first.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.checkpoints import Position, RunState
from zoo.data import DataInfo
from zoo.devices import choose_steps_per_execution, choose_xla
from zoo.divergence import NonFiniteLoss, current_rate, diverged, rate_in_force
from zoo.pipeline import (CHAINED_EPOCHS, Batching, Splits, distribute, distribute_by_worker,
                          evaluation_passes, training_batches)
from zoo.optimization import (averaged_weights, call_parts, make_loss, make_optimizer,
                               schedule_note)
from zoo.progress import EpochProgress
from zoo.source import Mapping, normalize_name, suggest


# --- what the spec asks for ------------------------------------------------------------------


@dataclass
class Plan(Batching):
    """Everything the loop needs that follows from the spec and the data: the batching
    (epochs, batch size, steps per epoch, seed, target) and the rest."""

    metrics: tuple = ()
    weight_decay: float = 0.0
    plateau: dict = field(default_factory=dict)
    early_stopping: dict = field(default_factory=dict)
    xla: object = "auto"  # auto, True or False (zoo.devices.choose_xla)
    steps_per_execution: object = "auto"  # auto or a number (choose_steps_per_execution)
    checkpoint_every: int | None = None  # steps; None: at the end of each epoch only

    @classmethod
    def from_section(cls, train, info: DataInfo, train_size: int) -> "Plan":
        """The plan a `train` section (or a pretraining phase shaped like one) describes."""
        batch_size = train.get("batch_size") or 32
        target = train.get("target") or "label"
        metrics = tuple(train.get("metrics") or (("accuracy", "top5") if info.num_classes > 5
                                                  else ("accuracy",)))
        if target != "label":
            metrics = ()
        schedule_name, schedule = call_parts(train.get("schedule") or "none")
        return cls(
            epochs=train.get("epochs") or 10, batch_size=batch_size,
            steps_per_epoch=train.get("steps_per_epoch") or max(1, train_size // batch_size),
            target=target, metrics=metrics, weight_decay=float(train.get("weight_decay") or 0.0),
            seed=train.get("seed") if train.get("seed") is not None else 0,
            plateau=_watching(schedule, factor=0.1) if normalize_name(schedule_name) == "plateau"
            else {},
            early_stopping=_watching(train.get("early_stopping"), restore_best=True)
            if train.get("early_stopping") else {},
            xla="auto" if train.get("xla") is None else train["xla"],
            steps_per_execution=train.get("steps_per_execution") or "auto",
            checkpoint_every=train.get("checkpoint_every"))

    def checkpoints_within_epoch(self, epoch: int, number: int) -> bool:
        """Whether step `number` (from 1) of `epoch` (from 0) is followed by a checkpoint
        within the epoch: every `checkpoint_every` steps counted over the run."""
        every = self.checkpoint_every
        return bool(every) and 0 < number < self.steps_per_epoch and (
            epoch * self.steps_per_epoch + number) % every == 0


def _watching(settings, **more) -> dict:
    """A plateau or early-stopping setting with its defaults where the spec left them out."""
    defaults = {"monitor": "val_loss", "patience": 5, **more}
    return {**defaults, **{key: value for key, value in dict(settings).items()
                           if value is not None}}


# --- the loop --------------------------------------------------------------------------------


class Trainer:
    """Compiled train and eval steps for one model under one strategy."""

    def __init__(self, strategy, model, optimizer, loss_fn, plan: Plan):
        replicas = strategy.num_replicas_in_sync
        decayed = [w for w in model.trainable_weights if w.path.endswith("kernel")]

        # A step returns its statistics as one vector, in this order, so that a step reduces
        # them across replicas in one all-reduce: under MultiWorkerMirroredStrategy each
        # all-reduce is a round trip between machines.
        self.statistic_names = ["loss", "count", *(name for name in ("accuracy", "top5")
                                                   if name in plan.metrics)]

        def statistics(targets, predictions, losses):
            stats = {"loss": tf.reduce_sum(losses), "count": tf.cast(tf.size(losses), tf.float32)}
            if targets.shape.rank == predictions.shape.rank:  # mixed labels: the larger part
                targets = tf.argmax(targets, axis=-1)
            for name, k in (("accuracy", 1), ("top5", 5)):
                if name in plan.metrics:
                    stats[name] = tf.reduce_sum(tf.cast(tf.math.in_top_k(
                        tf.cast(targets, tf.int32), tf.cast(predictions, tf.float32), k),
                        tf.float32))
            return tf.stack([stats[name] for name in self.statistic_names])

        @tf.autograph.experimental.do_not_convert  # plain Python decisions, made when tracing
        def regularization():
            """L2 weight decay as in the papers (gradient += decay * w), plus layers' own losses;
            each replica adds its share so the sum over replicas counts them once."""
            terms = [tf.add_n([tf.reduce_sum(tf.square(w)) for w in decayed]) * (
                plan.weight_decay / 2)] if plan.weight_decay and decayed else []
            terms += list(model.losses)
            return tf.add_n(terms) / replicas if terms else 0.0

        def outputs(inputs, targets, training):
            predictions = model(inputs, training=training)
            if plan.target == "codes":  # a pretraining stage reconstructs its own input codes
                predictions, targets = predictions
                targets = tf.cast(targets, tf.float32)
            # Under a mixed precision policy the model computes in 16 bits; losses and
            # metrics are computed in float32.
            return tf.cast(predictions, tf.float32), targets

        def train_step(inputs, targets):
            with tf.GradientTape() as tape:
                predictions, targets = outputs(inputs, targets, training=True)
                losses = loss_fn(targets, predictions)
                loss = tf.reduce_sum(losses) / plan.batch_size + regularization()
            # A LossScaleOptimizer (mixed_float16) scales the loss against underflow and
            # unscales the gradients in apply_gradients; other optimizers leave it as it is.
            gradients = tape.gradient(optimizer.scale_loss(loss), model.trainable_weights)
            optimizer.apply_gradients(zip(gradients, model.trainable_weights))
            return statistics(targets, predictions, losses)

        def eval_step(inputs, targets):
            predictions, targets = outputs(inputs, targets, training=False)
            return statistics(targets, predictions, loss_fn(targets, predictions))

        jit_compile = choose_xla(plan.xla, strategy)

        @tf.function(jit_compile=jit_compile)
        def evaluate_batch(batch):
            return strategy.reduce(tf.distribute.ReduceOp.SUM,
                                   strategy.run(eval_step, args=batch), axis=None)

        self.eval_step = evaluate_batch

        # this worker's replicas (the default strategy, one device, has no worker_devices)
        local_replicas = len(strategy.extended.worker_devices) if replicas > 1 else 1
        replica_step = tf.function(train_step, jit_compile=True) if jit_compile else train_step

        @tf.function
        def train_steps(batches, count):
            """`count` training steps in one call, each on the iterator's next batch: one
            dispatch from Python and one fetch of the statistics (a row per step) for all of
            them, which a worker of several otherwise pays at every step. Each replica keeps
            its rows, summed over the replicas at the end: one all-reduce of statistics a
            call (a round trip between workers), not one a step."""
            rows = [tf.TensorArray(tf.float32, size=count) for _ in range(local_replicas)]
            for index in tf.range(count):
                results = strategy.experimental_local_results(
                    strategy.run(replica_step, args=next(batches)))
                rows = [table.write(index, result) for table, result in zip(rows, results)]
            tables = [table.stack() for table in rows]
            return strategy.reduce(tf.distribute.ReduceOp.SUM,
                                   strategy.experimental_distribute_values_from_function(
                                       lambda replica: tables[
                                           replica.replica_id_in_sync_group % local_replicas]),
                                   axis=None)

        self.train_steps = train_steps
        self.steps_per_execution = choose_steps_per_execution(plan.steps_per_execution,
                                                              strategy)

    def train_epoch(self, batches, steps: int, done: int = 0, totals: dict | None = None,
                    after_step=None, call_ends=lambda number: False) -> dict:
        """Averaged statistics of an epoch of `steps` training steps on the iterator's
        batches, of which `done` were taken before a resume, with the running `totals` they
        left. Steps run `steps_per_execution` to a call; a call also ends after each step
        `call_ends(number)` names (a checkpoint), so that `after_step(number, totals)`,
        called after each step, sees the weights of that step there. A NaN loss stops at
        its step; Ctrl-C between calls."""
        totals, number = dict(totals or {}), done
        while number < steps:
            count = 1
            while count < min(self.steps_per_execution, steps - number) and not call_ends(
                    number + count):
                count += 1
            for row in self.train_steps(batches, tf.constant(count)).numpy():
                number += 1
                self._add(totals, row, number, training=True)
                if after_step:
                    after_step(number, totals)
            if INTERRUPTED.is_set():
                raise KeyboardInterrupt
        return averages(totals)

    def evaluate(self, batches, steps: int) -> dict:
        """Averaged statistics of the iterator's next `steps` batches."""
        totals = {}
        for number in range(1, steps + 1):
            self._add(totals, self.eval_step(next(batches)).numpy(), number, training=False)
            if INTERRUPTED.is_set():
                raise KeyboardInterrupt
        return averages(totals)

    def _add(self, totals: dict, row, number: int, training: bool) -> None:
        """Step or batch `number`'s statistics into the running totals; a loss no longer
        finite stops at once (later steps only spread it)."""
        for name, value in zip(self.statistic_names, row):
            totals[name] = totals.get(name, 0.0) + float(value)
        if not math.isfinite(totals["loss"]):
            raise NonFiniteLoss(number, totals["loss"], training)


INTERRUPTED = threading.Event()


@contextlib.contextmanager
def stop_between_steps_on_ctrl_c():
    """Ctrl-C ends training between two steps. Python raises KeyboardInterrupt only when the
    main thread runs Python code, and a signal that lands while TensorFlow's runtime runs a
    step could be lost; a flag checked after every step is never missed. A second Ctrl-C
    interrupts at once."""
    def request_stop(signum, frame):
        INTERRUPTED.set()
        signal.signal(signal.SIGINT, previous)

    INTERRUPTED.clear()
    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def averages(totals: dict) -> dict:
    count = totals.get("count") or 1.0
    return {key: value / count for key, value in totals.items() if key != "count"}


def monitor_improved(name: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if "accuracy" in name or "top5" in name else value < best


class TensorBoardLog:
    """Epoch metrics as TensorBoard scalars: DIR/<phase>/train and DIR/<phase>/validation hold
    the same tags (loss, accuracy, ...), so TensorBoard draws train and validation together."""

    def __init__(self, directory: str, phase: str):
        self.writers = {kind: tf.summary.create_file_writer(os.path.join(directory, phase, kind))
                        for kind in ("train", "validation")}

    def write(self, epoch: int, metrics: dict) -> None:
        for key, value in metrics.items():
            kind, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self.writers[kind].as_default():
                tf.summary.scalar(name, value, step=epoch)
        for writer in self.writers.values():
            writer.flush()


@dataclass
class Phase:
    """One stretch of training with its own settings: the whole run of most specs, or one
    of the phases of greedy pretraining (a stage autoencoder, the head, fine-tuning)."""

    name: str  # directory name of its checkpoints, e.g. "pretrain-2-hidden2"
    title: str  # how progress lines name it
    section: dict  # a train-like section: epochs, batch_size, optimizer, loss, target, ...
    model: keras.Model  # what this phase trains (a stage model shares the real model's layers)
    trainable: set  # names of the real model's layers that learn in this phase
    splits: Splits
    optimizer_from: Mapping  # the spec section whose optimizer it uses: errors point there


def train_phases(spec, model: keras.Model, splits: Splits, name: str = "train",
                 title: str = "") -> list[Phase]:
    """The phases of the spec's `train` section: one, or one per stage of `train.stages`, each
    with `train`'s settings changed where the stage says and its frozen layers fixed."""
    everything = {layer.name for layer in model.layers}

    def phase(phase_name, phase_title, section, optimizer_from):
        frozen = set(layers_matching(model, section["freeze"])) if section.get("freeze") \
            else set()
        return Phase(phase_name, phase_title, section, model, everything - frozen, splits,
                     optimizer_from)

    train = dict(spec.train)
    stages = train.pop("stages", None)
    if not stages:
        return [phase(name, title or spec.name, train, spec.train)]
    return [phase(f"stage-{number}", f"stage {number}/{len(stages)}",
                  {**train, "freeze": None,
                   **{key: value for key, value in stage.items() if value is not None}},
                  stage if stage.get("optimizer") is not None else spec.train)
            for number, stage in enumerate(stages, start=1)]


def run_phases(phases: list, model, strategy, checkpoints: str, fingerprint: str, chief: bool,
               log, tensorboard: str | None = None, progress: bool = False,
               on_epoch=()) -> dict:
    """Run each phase in order; a finished phase is skipped and its final weights loaded, so
    the next phase starts from exactly what it ended with. Returns the histories by phase.
    With `tensorboard` (a directory), the chief also writes TensorBoard logs there;
    `progress` draws a bar of each epoch's steps; the chief calls each of `on_epoch` with
    (phase name, epoch number, metrics) after each epoch is checkpointed."""
    histories = {}
    for phase in phases:
        state = RunState(os.path.join(checkpoints, phase.name), fingerprint, chief)
        if state.is_complete:
            model.load_weights(state.final_weights)
            histories[phase.name] = state.history
            continue
        set_trainable(model, phase.trainable)
        observers = []
        if chief:
            if tensorboard:
                observers.append(TensorBoardLog(tensorboard, phase.name).write)
            observers += [functools.partial(observer, phase.name) for observer in on_epoch]
        try:
            histories[phase.name] = train_phase(phase, strategy, state, log, progress=progress,
                                                after_epoch=observers)
        except NonFiniteLoss as bad:
            finished = [done.title for done in phases[:phases.index(phase)]]
            raise diverged(phase.optimizer_from, bad, _what_is_kept(bad, checkpoints, finished),
                           phase.model) from None
        set_trainable(model, {layer.name for layer in model.layers})
        state.complete(model)
    return histories


def _what_is_kept(bad: NonFiniteLoss, checkpoints: str, finished: list) -> str:
    """What a diverged run leaves to resume from, once its rate is lowered; `finished`: the
    titles of the phases done before."""
    if bad.checkpointed:
        return (f"the last checkpoint is kept in {checkpoints}: the same command with the "
                "lower rate resumes from it")
    if finished:
        return (f"the phases before it ({', '.join(finished)}) are kept in {checkpoints}: "
                "the same command with the lower rate resumes after them")
    return "no epoch had finished, so no checkpoint is kept"


MAX_SHOWN = 12  # layer names an error lists


def layers_matching(model: keras.Model, patterns) -> list[str]:
    """The model's layers whose names match any of `patterns` (a located list of names or
    patterns such as conv*), in the model's order; a located error for a pattern that
    matches no layer."""
    everything = [layer.name for layer in model.layers
                  if not isinstance(layer, keras.layers.InputLayer)]
    matched = []
    for index, pattern in enumerate(patterns):
        found = [name for name in everything if fnmatch.fnmatchcase(name, pattern)]
        if not found:
            shown = ", ".join(everything[:MAX_SHOWN]) + (" ..." if len(everything) > MAX_SHOWN
                                                         else "")
            raise patterns.error(index, f"no layer of the model matches '{pattern}'"
                                        f"{suggest(pattern, everything)}; its layers: {shown}")
        matched += [name for name in found if name not in matched]
    return [name for name in everything if name in matched]


def set_trainable(model: keras.Model, names: set) -> None:
    for layer in model.layers:
        layer.trainable = layer.name in names


def train_phase(phase: Phase, strategy, state: RunState, log=print, progress: bool = False,
                after_epoch=()) -> list:
    """Train `phase.model` as `phase.section` says, resuming from `state`; returns the history
    of epoch metrics. Build the model in `strategy.scope()`. `progress` draws a bar of each
    epoch's steps; each of `after_epoch` (give them on the chief only) is called with the
    epoch's number and metrics once the epoch is checkpointed, so one that raises (a sweep
    pruning a trial) leaves a run that resumes."""
    model, splits = phase.model, phase.splits
    plan = Plan.from_section(phase.section, splits.info, splits.train_size)
    input_shape = tuple(model.inputs[0].shape[1:])
    with strategy.scope():
        optimizer = make_optimizer(phase.section, plan.steps_per_epoch, plan.epochs)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_weights)
        trainer = Trainer(strategy, model, optimizer, make_loss(phase.section), plan)
    rate = current_rate(optimizer)  # the spec's, before the checkpoint's replaces it
    start = state.restore(model, optimizer)
    # A resumed run trains in this precision again (zoo.precision), to resume exactly
    state.extra["precision"] = keras.mixed_precision.global_policy().name
    if state.extra.pop("rate_changed", False) and hasattr(optimizer.learning_rate, "assign"):
        optimizer.learning_rate.assign(rate)  # lowered after a divergence (a schedule is not
        # restored: it is made afresh from the spec)
    if start.steps:
        log(f"resuming {phase.title} in epoch {start.epochs + 1}/{plan.epochs} after step "
            f"{start.steps} of {plan.steps_per_epoch} (checkpoint in {state.directory})")
    elif start.epochs:
        log(f"resuming {phase.title} after epoch {start.epochs} of {plan.epochs} "
            f"(checkpoint in {state.directory})")
    if note := schedule_note(phase.section.get("schedule"), plan.epochs):
        log(f"note: {note}")
    endless, eval_steps = evaluation_passes(splits, input_shape, plan)
    eval_batches = distribute(strategy, endless)  # one iterator for every epoch's evaluation
    for epoch in range(start.epochs, plan.epochs):
        began = time.monotonic()
        done = start.steps if epoch == start.epochs else 0
        if (epoch - start.epochs) % CHAINED_EPOCHS == 0:
            train_batches = distribute_by_worker(strategy, functools.partial(
                training_batches, splits, input_shape, plan, epoch, done))
        after_step = _each_step(plan, state, model, optimizer, epoch,
                                EpochProgress(plan.steps_per_epoch, done) if progress else None)
        try:
            metrics = trainer.train_epoch(
                train_batches, plan.steps_per_epoch, done, state.partial_totals if done else None,
                after_step, call_ends=functools.partial(plan.checkpoints_within_epoch, epoch))
            with averaged_weights(optimizer, model.trainable_variables):  # with `ema`
                metrics.update({f"val_{key}": value for key, value in trainer.evaluate(
                    eval_batches, eval_steps).items()})
        except NonFiniteLoss as bad:
            # A checkpoint taken at the step before holds the weights that gave the NaN
            checkpointed = (state.drop(Position(epoch, bad.number - 1), plan.steps_per_epoch)
                            if bad.training and plan.checkpoints_within_epoch(epoch, bad.number - 1)
                            else bool(epoch or done))
            bad.during(epoch + 1, plan.steps_per_epoch, rate_in_force(optimizer), checkpointed)
            raise
        metrics["lr"] = current_rate(optimizer)
        metrics["seconds"] = time.monotonic() - began
        state.history.append(metrics)
        log(f"{phase.title}: epoch {epoch + 1}/{plan.epochs}  " + "  ".join(
            f"{key} {value:.4g}" for key, value in metrics.items()))
        if _keeps_best(plan) and monitor_improved(plan.early_stopping["monitor"],
                                                  metrics[plan.early_stopping["monitor"]],
                                                  state.extra.get("stop_best")):
            with averaged_weights(optimizer, model.trainable_variables):  # what was measured
                state.save_best(model)
        stop = _after_epoch(plan, state, optimizer, metrics, log)
        state.save(model, optimizer, Position(epoch + 1), plan.steps_per_epoch)
        for observer in after_epoch:
            observer(epoch + 1, metrics)
        if stop:
            break
    # With `ema` the phase ends with the averaged weights: the next phase, the export and
    # the phase's final weights all take them.
    getattr(optimizer, "inner_optimizer", optimizer).finalize_variable_values(
        model.trainable_variables)
    if _keeps_best(plan) and state.restore_best(model):
        monitor, best = plan.early_stopping["monitor"], _best_epoch(plan, state.history)
        log(f"{phase.title}: the weights of epoch {best + 1} come back, its {monitor} the "
            f"best ({state.history[best][monitor]:.4g})")
    return state.history


def _keeps_best(plan: Plan) -> bool:
    return bool(plan.early_stopping) and plan.early_stopping["restore_best"]


def _best_epoch(plan: Plan, history: list) -> int:
    """The index of the epoch with the best monitored figure (the first, if several tie):
    the one whose weights early stopping's `restore_best` kept."""
    monitor, best = plan.early_stopping["monitor"], 0
    for index, figures in enumerate(history):
        if monitor_improved(monitor, figures[monitor], history[best][monitor]):
            best = index
    return best


def final_figures(phase: Phase, history: list) -> dict:
    """The figures of the epoch whose weights `phase` ended with: the last epoch's, or with
    early stopping's `restore_best` the best epoch's."""
    plan = Plan.from_section(phase.section, phase.splits.info, phase.splits.train_size)
    return history[_best_epoch(plan, history)] if _keeps_best(plan) else history[-1]


def _each_step(plan: Plan, state: RunState, model, optimizer, epoch: int,
               progress: EpochProgress | None):
    """What happens after each training step of `epoch`: the progress bar moves, and every
    `checkpoint_every` steps (counted over the run) a checkpoint within the epoch is saved."""
    def after_step(number: int, totals: dict) -> None:
        if progress:
            progress.update(number, totals)
        if plan.checkpoints_within_epoch(epoch, number):
            state.save(model, optimizer, Position(epoch, number), plan.steps_per_epoch, totals)
    return after_step


def _patience_exhausted(state: RunState, key: str, settings: dict, metrics: dict) -> bool:
    """Track the best value of the monitored metric; True after `patience` epochs without
    improvement (the count then starts again). Kept in the run state, so it survives a resume."""
    name = settings["monitor"]
    if monitor_improved(name, metrics[name], state.extra.get(f"{key}_best")):
        state.extra.update({f"{key}_best": metrics[name], f"{key}_wait": 0})
        return False
    state.extra[f"{key}_wait"] = state.extra.get(f"{key}_wait", 0) + 1
    if state.extra[f"{key}_wait"] < settings["patience"]:
        return False
    state.extra[f"{key}_wait"] = 0
    return True


def _after_epoch(plan: Plan, state: RunState, optimizer, metrics: dict, log) -> bool:
    """Plateau schedule and early stopping; True when training should stop."""
    if plan.plateau and _patience_exhausted(state, "plateau", plan.plateau, metrics):
        new_rate = current_rate(optimizer) * plan.plateau["factor"]
        optimizer.learning_rate.assign(new_rate)
        log(f"{plan.plateau['monitor']} has not improved for {plan.plateau['patience']} "
            f"epochs: learning rate now {new_rate:.3g}")
    if plan.early_stopping and _patience_exhausted(state, "stop", plan.early_stopping, metrics):
        log(f"early stopping: {plan.early_stopping['monitor']} has not improved for "
            f"{plan.early_stopping['patience']} epochs")
        return True
    return False
