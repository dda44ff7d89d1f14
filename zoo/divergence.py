"""A training loss that stops being a finite number: where it happened, the learning rate in
force then, and the located error that names the rate to lower (`Diverged`).

A loss that becomes NaN or infinite is nearly always a learning rate too large for the
network and the data (AlexNet's paper rate, 0.01, on 4,000 digits scaled up to 227 pixels is
NaN at step 7), so the error is located at the rate the phase's optimizer was given: in
`train.optimizer`, a stage's or pretraining's own optimizer, or the optimizer key itself when
the rate is Keras's default. The message gives the `--set` that lowers it to a tenth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

from zoo import names
from zoo.optimization import call_parts
from zoo.source import Location, Mapping, SpecError


class NonFiniteLoss(FloatingPointError):
    """The loss stopped being a finite number at one batch of an epoch; the loop then adds
    what only it knows (`during`)."""

    def __init__(self, number: int, value: float, training: bool):
        super().__init__(number, value)
        self.number, self.training = number, training
        self.kind = "NaN" if math.isnan(value) else "infinite"
        self.where = (f"training step {number}" if training else f"validation batch {number}")
        self.epoch, self.rate, self.checkpointed = 0, 0.0, False

    def during(self, epoch: int, steps: int, rate: float, checkpointed: bool) -> None:
        """Epoch `epoch` (from 1) of `steps` steps, at learning rate `rate`; `checkpointed`:
        whether the phase has a checkpoint from before it."""
        self.epoch, self.rate, self.checkpointed = epoch, rate, checkpointed
        if self.training:
            self.where += f" of {steps}"


class Diverged(SpecError, FloatingPointError):
    """A spec problem found while training: the loss diverged at the rate the spec gives.
    Located like any SpecError (exit code 2); still a FloatingPointError for callers that
    catch a NaN loss."""

    def __init__(self, location, path: str, message: str, setting: "RateSetting"):
        super().__init__(location, path, message)
        self.setting = setting


@dataclass(frozen=True)
class RateSetting:
    """Where a phase's learning rate is written: the located key, and the rate it gives."""

    location: Location | None
    path: str  # train.optimizer.sgd.learning_rate; train.optimizer when Keras's default
    rate: float
    optimizer: str  # the optimizer's name as the spec writes it
    container: str | None  # the path of the optimizer's arguments, when it has a mapping

    @property
    def fixed_key(self) -> str:
        """The key the fix sets."""
        return self.path if self.container is None else f"{self.container}.learning_rate"

    def lowered(self, factor: float = 0.1) -> str:
        """The --set that multiplies the rate by `factor`."""
        rate = f"{self.rate * factor:.3g}"
        if self.container is not None:
            return f"--set {self.fixed_key}={rate}"
        return f"--set \"{self.path}={{{self.optimizer}: {{learning_rate: {rate}}}}}\""


def rate_setting(section: Mapping) -> RateSetting:
    """Where the learning rate of the optimizer that `section` (train, a stage, pretrain or
    pretrain.head) gives is written, and its value."""
    value = section.get("optimizer") or "adam"
    name, kwargs = call_parts(value)
    arguments = value[name] if isinstance(value, Mapping) else None
    if isinstance(arguments, Mapping) and arguments.get("learning_rate") is not None:
        return RateSetting(*arguments.where("learning_rate"), float(arguments["learning_rate"]),
                           name, arguments.path)
    default = (names.signature(names.resolve("optimizer", name)) or {}).get("learning_rate",
                                                                            0.001)
    where = value.where(name) if isinstance(value, Mapping) else section.where("optimizer")
    return RateSetting(*where, float(default), name,
                       arguments.path if isinstance(arguments, Mapping) else None)


def rate_in_force(optimizer) -> float:
    """The learning rate of the optimizer's last step: its schedule's value at that step (a
    warm-up or a step schedule changes it), or the rate it holds (a plateau changes that)."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's
    schedule = optimizer._learning_rate  # Keras keeps the schedule itself only here
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(schedule(max(int(optimizer.iterations.numpy()) - 1, 0)))
    return current_rate(optimizer)


def current_rate(optimizer) -> float:
    rate = optimizer.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


def diverged(section: Mapping, bad: NonFiniteLoss, kept: str, model) -> Diverged:
    """The located error for a phase trained as `section` says whose loss diverged; `kept`
    says what the run leaves to resume from."""
    setting = rate_setting(section)
    message = (f"the loss became {bad.kind} in epoch {bad.epoch} at {bad.where}, with the "
               f"learning rate at {bad.rate:.3g}: training diverged and stopped. No export was "
               f"written; {kept}. Lower the rate, e.g. to a tenth: {setting.lowered()}"
               f"{deep_network_advice(model)}")
    return Diverged(setting.location, setting.path, message, setting)


DEEP = 100  # weighted layers from which a network counts as very deep


def deep_network_advice(model) -> str:
    """What the papers did for networks this deep, which diverge at the usual rates."""
    weighted = sum(1 for layer in model.layers if layer.weights)
    if weighted < DEEP:
        return ""
    return (f" ({weighted} weighted layers: He et al. 2015 trained ResNet-110 and ResNet-1202 "
            "at 0.01 until the training error fell below 80%, about 400 steps, then at 0.1)")
