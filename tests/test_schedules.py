"""Learning-rate schedules, plateau and early stopping behave as the spec language promises."""

import keras
import pytest

from zoo.checkpoints import RunState
from zoo.source import Mapping
from zoo.training import Plan, _after_epoch, make_optimizer


def train_section(**values):
    return Mapping(values, path="train")


def test_step_schedule_counts_in_epochs():
    optimizer = make_optimizer(train_section(
        optimizer={"sgd": {"learning_rate": 0.1}},
        schedule={"step": {"epochs": [2, 3], "factor": 0.1}}), steps_per_epoch=10)
    schedule = optimizer._learning_rate  # the first step of epoch e is step e * 10
    assert [float(schedule(step)) for step in (0, 19, 20, 29, 30)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])


def test_keras_schedules_by_name_start_from_the_optimizers_rate():
    optimizer = make_optimizer(train_section(
        optimizer={"adam": {"learning_rate": 0.01}},
        schedule={"cosine_decay": {"decay_steps": 100}}), steps_per_epoch=10)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(100)) == pytest.approx(0.0)


def plan(**changes):
    values = dict(epochs=10, batch_size=8, steps_per_epoch=1, target="label", metrics=(),
                  weight_decay=0.0, seed=0)
    values.update(changes)
    return Plan(**values)


def test_plateau_divides_the_rate_after_patience_epochs(tmp_path):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    state = RunState(str(tmp_path), "fingerprint")
    on_plateau = plan(plateau={"factor": 0.5, "patience": 2, "monitor": "val_loss"})
    messages = []
    for loss in (1.0, 0.9, 0.95, 0.91, 0.92):
        _after_epoch(on_plateau, state, optimizer, {"val_loss": loss}, messages.append)
    assert float(optimizer.learning_rate) == pytest.approx(0.05)
    assert messages == ["val_loss has not improved for 2 epochs: learning rate now 0.05"]


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    state = RunState(str(tmp_path), "fingerprint")
    stopping = plan(early_stopping={"monitor": "val_accuracy", "patience": 2})
    decisions = [_after_epoch(stopping, state, optimizer, {"val_accuracy": accuracy}, print)
                 for accuracy in (0.5, 0.6, 0.6, 0.55)]
    assert decisions == [False, False, False, True]
