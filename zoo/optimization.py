"""What a `train` section (or a phase like it) asks of the optimization: the optimizer, its
learning rate over the epochs, the loss, weight averaging and gradient accumulation.

Schedules in epochs (`step`, `cosine`, each with an optional linear warm-up) become Keras
schedules in steps from the run's real steps per epoch; they read the optimizer's step
counter, which checkpoints keep, so a resumed run continues on the same curve. Keras's own
schedules are taken by name, in steps. `plateau` acts between epochs (zoo.training).
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from zoo import names
from zoo.source import normalize_name


def call_parts(value) -> tuple[str, dict]:
    """`name` or `{name: kwargs}` -> (name, plain kwargs)."""
    if isinstance(value, str):
        return value, {}
    (name, kwargs), = value.items()
    return name, dict(kwargs or {})


def make_optimizer(train, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
    """The optimizer `train` names, with its learning-rate schedule, weight averaging (`ema`)
    and gradient accumulation (`accumulate`); the spec's names and arguments were checked
    when it was loaded (zoo.names)."""
    name, kwargs = call_parts(train.get("optimizer") or "adam")
    supplied = {}
    if train.get("ema") is not None:
        supplied.update(use_ema=True, ema_momentum=train["ema"])
    if (train.get("accumulate") or 1) > 1:
        supplied["gradient_accumulation_steps"] = train["accumulate"]
    if train.get("schedule") is not None:
        keras_default = (names.signature(names.resolve("optimizer", name)) or {}).get(
            "learning_rate", 0.001)
        rate = learning_rate(train["schedule"], kwargs.get("learning_rate", keras_default),
                             steps_per_epoch, epochs)
        if rate is not None:
            kwargs.pop("learning_rate", None)
            supplied["learning_rate"] = rate
    # what `train` says wins over the same argument given to the optimizer itself
    kwargs = {key: value for key, value in kwargs.items() if key not in supplied}
    return names.construct("optimizer", name, kwargs, supplied)


def learning_rate(schedule, base_rate: float, steps_per_epoch: int, epochs: int):
    """The Keras schedule (in steps) a spec's schedule describes, starting from `base_rate`;
    None for `plateau`, which changes the rate between epochs instead."""
    name, kwargs = call_parts(schedule)
    kind = normalize_name(name)
    if kind == "plateau":
        return None
    if kind not in ("step", "cosine"):  # a Keras schedule by name, in steps
        start = {} if "initial_learning_rate" in kwargs else {"initial_learning_rate": base_rate}
        return names.construct("schedule", name, kwargs, start)
    warmup = (kwargs.get("warmup_epochs") or 0) * steps_per_epoch
    if kind == "cosine":
        # Keras's cosine decay warms up linearly from its initial rate to warmup_target
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else base_rate,
            decay_steps=max(1, epochs * steps_per_epoch - warmup),
            alpha=(kwargs.get("min_rate") or 0.0) / base_rate if base_rate else 0.0,
            warmup_target=base_rate if warmup else None, warmup_steps=warmup)
    # Keras keeps a value up to and including its boundary step; the first step of epoch e is
    # step e * steps_per_epoch, which must already use the new rate.
    boundaries = [epoch * steps_per_epoch - 1 for epoch in kwargs["epochs"]]
    factor = kwargs.get("factor") or 0.1
    steps = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [base_rate * factor**i for i in range(len(boundaries) + 1)])
    return LinearWarmup(steps, base_rate, warmup) if warmup else steps


def schedule_note(schedule, epochs: int) -> str | None:
    """What to tell a user whose epoch schedule reaches past a run of `epochs` (a spec
    shortened with --set train.epochs, or a slip), located at the setting; None when it fits.
    Not an error: a quick trial of a long recipe is worth running as it is."""
    if not isinstance(schedule, dict):  # a name alone: no epochs in it
        return None
    (name, settings), = schedule.items()
    kind = normalize_name(name)
    if kind not in ("step", "cosine") or not settings:
        return None
    warmup = settings.get("warmup_epochs") or 0
    if warmup >= epochs:
        return str(settings.error("warmup_epochs", (
            f"the warm-up lasts {warmup} epoch{'s' if warmup > 1 else ''} and the run {epochs}: "
            "the whole run warms up"
            + (", its rate never reaching the optimizer's" if warmup > epochs else "")
            + (", and the cosine decay never begins" if kind == "cosine" else ""))))
    late = [epoch for epoch in settings.get("epochs") or () if epoch >= epochs]
    if late:
        plural = "s" if len(late) > 1 else ""
        return str(settings.error("epochs", (
            f"the run ends after {epochs} epoch{'s' if epochs > 1 else ''}, before the "
            f"cut{plural} at epoch{plural} {' and '.join(map(str, late))}, so the rate is "
            "never cut there")))
    return None


@keras.saving.register_keras_serializable(package="zoo")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`target * (step + 1) / steps` for the first `steps` steps, then `after`'s rate: the
    warm-up Goyal et al. (2017) put in front of a step schedule for large batches."""

    def __init__(self, after, target: float, steps: int):
        self.after, self.target, self.steps = after, target, steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warming = self.target * (step + 1.0) / float(self.steps)
        return tf.where(step < self.steps, warming, tf.cast(self.after(step), tf.float32))

    def get_config(self):
        return {"after": keras.optimizers.schedules.serialize(self.after),
                "target": self.target, "steps": self.steps}

    @classmethod
    def from_config(cls, config):
        return cls(keras.optimizers.schedules.deserialize(config["after"]), config["target"],
                   config["steps"])


def make_loss(train):
    """A function (targets, predictions) -> one loss value per example. Targets are integer
    labels, or rows of class weights where mixup or cutmix mixed two images; with
    sparse_categorical_crossentropy both work, and `label_smoothing` spreads part of each
    row's weight over every class."""
    name, kwargs = call_parts(train.get("loss") or "sparse_categorical_crossentropy")
    loss = names.construct("loss", name, {**kwargs, "reduction": None})
    smoothing = train.get("label_smoothing") or 0.0
    rows = None  # the same loss for targets given as rows of class weights
    if normalize_name(name) == "sparsecategoricalcrossentropy":
        rows = names.construct("loss", "categorical_crossentropy", {
            "label_smoothing": smoothing, "from_logits": kwargs.get("from_logits", False),
            "reduction": None})

    def per_example(targets, predictions):
        targets, predictions = tf.convert_to_tensor(targets), tf.convert_to_tensor(predictions)
        if rows is not None and (smoothing or targets.shape.rank == predictions.shape.rank):
            if targets.shape.rank < predictions.shape.rank:
                targets = tf.one_hot(tf.cast(targets, tf.int32), tf.shape(predictions)[-1])
            values = rows(targets, predictions)
        else:
            values = loss(targets, predictions)
        return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)

    return per_example


@contextlib.contextmanager
def averaged_weights(optimizer, variables):
    """The optimizer's moving averages of `variables` in their place for the block (to
    evaluate them), and the trained values back after it; nothing without weight averaging.
    Keras keeps the averages but uses them only when told (finalize_variable_values)."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    if not optimizer.use_ema:
        yield
        return
    trained = [variable.numpy() for variable in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, trained):
            variable.assign(value)
