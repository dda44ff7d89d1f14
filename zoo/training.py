"""Training under a tf.distribute strategy: optimizer, loss, schedule, checkpoints, resume.

One custom training loop serves every strategy. Keras 3's `Model.fit` fails
under MultiWorkerMirroredStrategy (keras-team/keras#20585), while a step run
with `strategy.run` over a distributed dataset works everywhere, so there is
no second code path to keep in step with the first.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from zoo.checkpoints import RunState
from zoo.data import DataInfo, augment, preprocess, resize
from zoo.devices import choose_xla
from zoo.source import SpecError, normalize_name

SHUFFLE_BUFFER = 10_000
# Epochs one training iterator serves (zoo.training.batches). Its dataset takes longer to
# build and start the more epochs it chains (ResNet-20's pipeline: 0.55 s for 1 to 10
# epochs, 1.3 s for 200, 26 s for 2,000); a new one every 100 epochs starts cold once.
CHAINED_EPOCHS = 100


# --- strategy --------------------------------------------------------------------------------


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


# --- what the spec asks for ------------------------------------------------------------------


def _keras_class(module, name: str):
    for attribute in dir(module):
        if attribute[0].isupper() and normalize_name(attribute) == normalize_name(name):
            return getattr(module, attribute)
    raise SpecError(None, "train", f"unknown name '{name}' in {module.__name__}")


def _split(value) -> tuple[str, dict]:
    """`name` or `{name: kwargs}` -> (name, plain kwargs)."""
    if isinstance(value, str):
        return value, {}
    (name, kwargs), = value.items()
    return name, dict(kwargs or {})


def make_optimizer(train, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    name, kwargs = _split(train.get("optimizer") or "adam")
    schedule = train.get("schedule")
    if schedule is not None:
        schedule_name, schedule_kwargs = _split(schedule)
        base_rate = kwargs.get("learning_rate", 0.001)
        if normalize_name(schedule_name) == "step":
            # Keras keeps a value up to and including its boundary step; the first step of
            # epoch e is step e * steps_per_epoch, which must already use the new rate.
            boundaries = [epoch * steps_per_epoch - 1
                          for epoch in schedule_kwargs.get("epochs", [])]
            factor = schedule_kwargs.get("factor", 0.1)
            kwargs["learning_rate"] = keras.optimizers.schedules.PiecewiseConstantDecay(
                boundaries, [base_rate * factor**i for i in range(len(boundaries) + 1)])
        elif normalize_name(schedule_name) != "plateau":  # plateau acts between epochs
            schedule_kwargs.setdefault("initial_learning_rate", base_rate)
            kwargs["learning_rate"] = _keras_class(keras.optimizers.schedules,
                                                   schedule_name)(**schedule_kwargs)
    return _keras_class(keras.optimizers, name)(**kwargs)


def make_loss(train):
    """A function (targets, predictions) -> one loss value per example."""
    name, kwargs = _split(train.get("loss") or "sparse_categorical_crossentropy")
    loss = _keras_class(keras.losses, name)(reduction=None, **kwargs)

    def per_example(targets, predictions):
        values = loss(targets, predictions)
        return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)

    return per_example


@dataclass
class Plan:
    """Everything the loop needs that follows from the spec and the data."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    target: str  # "label", "input", or "codes" (the model returns its own targets)
    metrics: tuple
    weight_decay: float
    seed: int
    plateau: dict = field(default_factory=dict)
    early_stopping: dict = field(default_factory=dict)
    xla: object = "auto"  # auto, True or False (zoo.devices.choose_xla)

    @classmethod
    def from_section(cls, train, info: DataInfo, train_size: int) -> "Plan":
        """The plan a `train` section (or a pretraining phase shaped like one) describes."""
        batch_size = train.get("batch_size") or 32
        target = train.get("target") or "label"
        metrics = tuple(train.get("metrics") or (("accuracy", "top5") if info.num_classes > 5
                                                  else ("accuracy",)))
        if target != "label":
            metrics = ()
        schedule_name, schedule = _split(train.get("schedule") or "none")
        return cls(
            epochs=train.get("epochs") or 10, batch_size=batch_size,
            steps_per_epoch=train.get("steps_per_epoch") or max(1, train_size // batch_size),
            target=target, metrics=metrics, weight_decay=float(train.get("weight_decay") or 0.0),
            seed=train.get("seed") if train.get("seed") is not None else 0,
            plateau=schedule if normalize_name(schedule_name) == "plateau" else {},
            early_stopping=dict(train.get("early_stopping") or {}),
            xla=train.get("xla", "auto"))


# --- data as the loop sees it ----------------------------------------------------------------


@dataclass
class Splits:
    """The raw data of a run: (uint8 image, label) pairs, and what is known about them."""

    train: tf.data.Dataset
    eval: tf.data.Dataset
    info: DataInfo
    train_size: int
    eval_size: int
    options: dict  # the spec's data section: preprocess, augment, shuffle_buffer


def batches(dataset, splits: Splits, input_shape, plan: Plan, *, training: bool,
            first_epoch: int = 0):
    """Raw (uint8 image, label) pairs -> batches of (model input, target).

    For training, the batches of up to CHAINED_EPOCHS epochs from `first_epoch` on, one
    epoch after another in one endless dataset: a single iterator serves them and prefetches
    across the end of each epoch, where a new iterator per epoch would start cold (about
    25 ms each time: a tenth of a LeNet epoch on 4,000 images; benchmarks/input_pipeline.py).
    Each epoch is shuffled from the seed and its own number and each batch is augmented
    from its own number, so a resumed run sees the epochs an uninterrupted one would.
    For evaluation, one pass.

    Preprocessing and augmentation run on whole batches: one op per batch instead of one per
    image costs the cores that train less. Images whose sizes vary (a folder of photos) are
    resized one by one first, so that they can share a batch.
    """
    options = dict(splits.options.get("preprocess") or {})
    augment_options = dict(splits.options.get("augment") or {}) if training else {}
    if training:
        buffer = splits.options.get("shuffle_buffer") or SHUFFLE_BUFFER
        dataset = shuffled_epochs(dataset, plan, buffer, first_epoch)
    if None in splits.info.image_shape:
        dataset = dataset.map(lambda image, label: (resize(image, input_shape, options), label),
                              num_parallel_calls=tf.data.AUTOTUNE)

    def prepare(number, batch):
        images, labels = batch
        images = preprocess(images, input_shape, options)
        if augment_options:
            images = augment(images, augment_options, seed=tf.stack([plan.seed, number]))
        return images, (images if plan.target == "input" else labels)

    dataset = dataset.batch(plan.batch_size, drop_remainder=training)
    dataset = dataset.enumerate(start=first_epoch * plan.steps_per_epoch)  # batch numbers
    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    if training:  # endless: MultiWorkerMirroredStrategy's iterator then skips the all-reduce
        # that asks every worker whether it still has data, each step (12 of the 23 ms a
        # LeNet step spent communicating on two workers: benchmarks/scaling.py)
        dataset = dataset.repeat()
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def shuffled_epochs(dataset, plan: Plan, buffer: int, first_epoch: int):
    """The examples of up to CHAINED_EPOCHS epochs from `first_epoch` on, one after another,
    each shuffled from its own seed (a seed that is a tensor, as a per-epoch function would
    give, fails in tf.data's shuffle when the global seed is 0)."""
    last = min(first_epoch + CHAINED_EPOCHS, plan.epochs)
    epochs = [dataset.shuffle(buffer, seed=plan.seed + epoch, reshuffle_each_iteration=False)
              .repeat().take(plan.steps_per_epoch * plan.batch_size)
              for epoch in range(first_epoch, last)] or [dataset.take(0)]
    while len(epochs) > 1:  # joined in pairs: nested log2(epochs) deep, not one per epoch
        joined = [earlier.concatenate(later) for earlier, later in zip(epochs[::2], epochs[1::2])]
        epochs = joined + epochs[2 * len(joined):]
    return epochs[0]


# --- the loop --------------------------------------------------------------------------------


class Trainer:
    """Compiled train and eval steps for one model under one strategy."""

    def __init__(self, strategy, model, optimizer, loss_fn, plan: Plan):
        self.strategy = strategy
        replicas = strategy.num_replicas_in_sync
        decayed = [w for w in model.trainable_weights if w.path.endswith("kernel")]

        # A step returns its statistics as one vector, in this order, so that a step reduces
        # them across replicas in one all-reduce: under MultiWorkerMirroredStrategy each
        # all-reduce is a round trip between machines.
        self.statistic_names = ["loss", "count", *(name for name in ("accuracy", "top5")
                                                   if name in plan.metrics)]

        def statistics(targets, predictions, losses):
            stats = {"loss": tf.reduce_sum(losses), "count": tf.cast(tf.size(losses), tf.float32)}
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

        def run(step):
            @tf.function(jit_compile=jit_compile)
            def distributed(batch):
                return strategy.reduce(tf.distribute.ReduceOp.SUM,
                                       strategy.run(step, args=batch), axis=None)
            return distributed

        self.train_step, self.eval_step = run(train_step), run(eval_step)

    def batches(self, dataset: tf.data.Dataset):
        """An iterator over `dataset`'s batches, each split between the replicas."""
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def run_epoch(self, batches, step, steps: int | None = None) -> dict:
        """Averaged statistics of `steps` batches from the iterator (all it has if None)."""
        totals = {}
        for number, batch in enumerate(itertools.islice(batches, steps), start=1):
            for name, value in zip(self.statistic_names, step(batch).numpy()):
                totals[name] = totals.get(name, 0.0) + float(value)
            if not math.isfinite(totals["loss"]):  # stop at once: later steps only spread it
                raise NonFiniteLoss(number, totals["loss"], step is self.train_step)
            if INTERRUPTED.is_set():
                raise KeyboardInterrupt
        return averages(totals)


class NonFiniteLoss(FloatingPointError):
    """The loss stopped being a finite number at one batch of an epoch."""

    def __init__(self, number: int, value: float, training: bool):
        super().__init__(number, value)
        self.kind = "NaN" if math.isnan(value) else "infinite"
        self.where = f"training step {number}" if training else f"validation batch {number}"


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


def train(section, model, splits: Splits, strategy, state: RunState, log=print,
          title: str = "training", tensorboard: TensorBoardLog | None = None) -> list:
    """Train `model` as `section` (a spec's `train` or a phase like it) says, resuming from
    `state`; returns the history of epoch metrics. Build the model in `strategy.scope()`.
    `tensorboard`, if given, receives every epoch's metrics (give it on the chief only)."""
    plan = Plan.from_section(section, splits.info, splits.train_size)
    input_shape = tuple(model.inputs[0].shape[1:])
    with strategy.scope():
        optimizer = make_optimizer(section, plan.steps_per_epoch)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_weights)
        trainer = Trainer(strategy, model, optimizer, make_loss(section), plan)
    start = state.restore(model, optimizer)
    if start:
        log(f"resuming {title} after epoch {start} of {plan.epochs} "
            f"(checkpoint in {state.directory})")
    eval_batches = batches(splits.eval, splits, input_shape, plan, training=False)
    for epoch in range(start, plan.epochs):
        began = time.monotonic()
        if (epoch - start) % CHAINED_EPOCHS == 0:
            train_batches = trainer.batches(batches(splits.train, splits, input_shape, plan,
                                                    training=True, first_epoch=epoch))
        try:
            metrics = trainer.run_epoch(train_batches, trainer.train_step, plan.steps_per_epoch)
            metrics.update({f"val_{key}": value for key, value in trainer.run_epoch(
                trainer.batches(eval_batches), trainer.eval_step).items()})
        except NonFiniteLoss as bad:
            kept = (f"the checkpoint after epoch {epoch} is kept in {state.directory}" if epoch
                    else "no epoch had finished")
            raise FloatingPointError(f"the loss became {bad.kind} in epoch {epoch + 1}, "
                                     f"{bad.where} ({kept}); a smaller learning rate usually "
                                     "cures it") from None
        metrics["lr"] = float(_current_rate(optimizer))
        metrics["seconds"] = time.monotonic() - began
        state.history.append(metrics)
        log(f"{title}: epoch {epoch + 1}/{plan.epochs}  " + "  ".join(
            f"{key} {value:.4g}" for key, value in metrics.items()))
        if tensorboard:
            tensorboard.write(epoch + 1, metrics)
        stop = _after_epoch(plan, state, optimizer, metrics, log)
        state.save(model, optimizer, epoch + 1)
        if stop:
            break
    return state.history


def _current_rate(optimizer) -> float:
    rate = optimizer.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


def _patience_exhausted(state: RunState, key: str, settings: dict, metrics: dict) -> bool:
    """Track the best value of the monitored metric; True after `patience` epochs without
    improvement (the count then starts again). Kept in the run state, so it survives a resume."""
    name = settings.get("monitor", "val_loss")
    if monitor_improved(name, metrics[name], state.extra.get(f"{key}_best")):
        state.extra.update({f"{key}_best": metrics[name], f"{key}_wait": 0})
        return False
    state.extra[f"{key}_wait"] = state.extra.get(f"{key}_wait", 0) + 1
    if state.extra[f"{key}_wait"] < settings.get("patience", 5):
        return False
    state.extra[f"{key}_wait"] = 0
    return True


def _after_epoch(plan: Plan, state: RunState, optimizer, metrics: dict, log) -> bool:
    """Plateau schedule and early stopping; True when training should stop."""
    if plan.plateau and _patience_exhausted(state, "plateau", plan.plateau, metrics):
        new_rate = _current_rate(optimizer) * plan.plateau.get("factor", 0.1)
        optimizer.learning_rate.assign(new_rate)
        log(f"{plan.plateau.get('monitor', 'val_loss')} has not improved for "
            f"{plan.plateau.get('patience', 5)} epochs: learning rate now {new_rate:.3g}")
    if plan.early_stopping and _patience_exhausted(state, "stop", plan.early_stopping, metrics):
        log(f"early stopping: {plan.early_stopping.get('monitor', 'val_loss')} has not "
            f"improved for {plan.early_stopping.get('patience', 5)} epochs")
        return True
    return False
