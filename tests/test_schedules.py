"""Learning-rate schedules, plateau and early stopping behave as the spec language promises."""

import keras
import pytest

from zoo.checkpoints import RunState
from zoo.source import Mapping
from zoo.optimization import make_optimizer, schedule_note
from zoo.spec import spec_from_text
from zoo.training import Plan, _after_epoch


def train_section(**values):
    return Mapping(values, path="train")


def test_step_schedule_counts_in_epochs():
    optimizer = make_optimizer(train_section(
        optimizer={"sgd": {"learning_rate": 0.1}},
        schedule={"step": {"epochs": [2, 3], "factor": 0.1}}), steps_per_epoch=10, epochs=10)
    schedule = optimizer._learning_rate  # the first step of epoch e is step e * 10
    assert [float(schedule(step)) for step in (0, 19, 20, 29, 30)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])


def test_keras_schedules_by_name_start_from_the_optimizers_rate():
    optimizer = make_optimizer(train_section(
        optimizer={"adam": {"learning_rate": 0.01}},
        schedule={"cosine_decay": {"decay_steps": 100}}), steps_per_epoch=10, epochs=10)
    schedule = optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(100)) == pytest.approx(0.0)


SMALL_SPEC = """
model:
  inputs: {image: [8, 8, 1]}
  layers: [flatten, {dense: {units: 10, activation: softmax}}]
data: {dataset: digits}
train:
  epochs: 90
"""


def note_for(schedule: str, epochs: int):
    spec = spec_from_text(SMALL_SPEC, [f"train.schedule={schedule}"], name="mine")
    return schedule_note(spec.train["schedule"], epochs)


def test_a_schedule_that_fits_the_run_says_nothing():
    assert note_for("{step: {epochs: [30, 60], warmup_epochs: 5}}", 90) is None
    assert note_for("{cosine: {warmup_epochs: 5}}", 6) is None
    assert note_for("cosine", 1) is None
    assert note_for("{cosine_decay: {decay_steps: 100000}}", 1) is None  # Keras's, in steps


def test_a_warm_up_as_long_as_the_run_is_pointed_out_where_it_is_set():
    note = note_for("{cosine: {warmup_epochs: 5}}", 2)
    assert note.startswith("--set train.schedule:1:26: train.schedule.cosine.warmup_epochs: ")
    assert "the warm-up lasts 5 epochs and the run 2" in note
    assert "never reaching" in note and "cosine decay never begins" in note
    exactly = note_for("{step: {epochs: [9], warmup_epochs: 5}}", 5)
    assert "the whole run warms up" in exactly and "never reaching" not in exactly


def test_step_cuts_after_the_last_epoch_are_pointed_out():
    # a cut at epoch e acts from the first step after e epochs: at 2 of a 2-epoch run, never
    note = note_for("{step: {epochs: [1, 2, 5]}}", 2)
    assert "train.schedule.step.epochs: the run ends after 2 epochs, before the cuts at " \
           "epochs 2 and 5" in note
    assert "after 1 epoch, before the cut at epoch 1," in note_for("{step: {epochs: [1]}}", 1)


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


def test_cosine_counts_in_epochs_after_a_linear_warm_up():
    optimizer = make_optimizer(train_section(
        optimizer={"sgd": {"learning_rate": 0.1}},
        schedule={"cosine": {"warmup_epochs": 2, "min_rate": 0.001}}), steps_per_epoch=10,
        epochs=12)
    rate = optimizer._learning_rate  # 20 warm-up steps, then 100 steps of cosine
    assert [float(rate(step)) for step in (0, 10, 20, 70, 120)] == pytest.approx(
        [0.0, 0.05, 0.1, 0.0505, 0.001], abs=1e-6)


def test_a_step_schedule_can_warm_up_first():
    optimizer = make_optimizer(train_section(
        optimizer={"sgd": {"learning_rate": 0.1}},
        schedule={"step": {"epochs": [3], "factor": 0.1, "warmup_epochs": 1}}),
        steps_per_epoch=10, epochs=5)
    rate = optimizer._learning_rate
    assert [float(rate(step)) for step in (0, 4, 9, 10, 29, 30)] == pytest.approx(
        [0.01, 0.05, 0.1, 0.1, 0.1, 0.01])


def one_step_weights(batches, accumulate):
    """The weights of a small dense network (no BatchNormalization) after training on
    `batches` (each a (images, labels) pair) with plain SGD, `accumulate` batches an update."""
    import numpy as np
    import tensorflow as tf

    from zoo.optimization import make_loss
    from zoo.pipeline import distribute
    from zoo.training import Trainer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    section = train_section(optimizer={"sgd": {"learning_rate": 0.5}}, accumulate=accumulate)
    strategy = tf.distribute.get_strategy()
    optimizer = make_optimizer(section, steps_per_epoch=len(batches), epochs=1)
    trainer = Trainer(strategy, model, optimizer, make_loss(section),
                      plan(batch_size=len(batches[0][1]) if batches else 1))
    for images, labels in batches:
        trainer.train_steps(distribute(strategy, tf.data.Dataset.from_tensors(
            (images, labels))), tf.constant(1))
    return [np.array(weight) for weight in model.weights]


def test_four_accumulated_batches_of_16_are_one_batch_of_64():
    import numpy as np

    random = np.random.default_rng(1)
    images = random.normal(size=(64, 6)).astype("float32")
    labels = random.integers(0, 3, 64)
    whole = one_step_weights([(images, labels)], accumulate=1)
    quarters = one_step_weights([(images[i:i + 16], labels[i:i + 16]) for i in range(0, 64, 16)],
                                accumulate=4)
    for one, other in zip(whole, quarters):
        np.testing.assert_allclose(one, other, rtol=1e-5, atol=1e-6)
    # one batch of four accumulated changes nothing yet
    untouched = one_step_weights([(images[:16], labels[:16])], accumulate=4)
    for initial, after in zip(one_step_weights([], accumulate=1), untouched):
        np.testing.assert_array_equal(initial, after)


def test_label_smoothing_spreads_the_labels_mass():
    import numpy as np

    from zoo.optimization import make_loss

    predictions = np.array([[0.7, 0.2, 0.1]], "float32")
    smoothed = make_loss(train_section(label_smoothing=0.3))(np.array([0]), predictions)
    # targets [0.8, 0.1, 0.1]: -(0.8 log 0.7 + 0.1 log 0.2 + 0.1 log 0.1)
    expected = -(0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1))
    assert float(smoothed[0]) == pytest.approx(expected, rel=1e-5)


def test_weight_averaging_evaluates_with_the_moving_average_of_the_weights():
    import numpy as np
    import tensorflow as tf

    from zoo.optimization import averaged_weights, make_loss
    from zoo.pipeline import distribute
    from zoo.training import Trainer

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    section = train_section(optimizer={"sgd": {"learning_rate": 0.5}}, ema=0.8)
    strategy = tf.distribute.get_strategy()
    optimizer = make_optimizer(section, steps_per_epoch=3, epochs=1)
    trainer = Trainer(strategy, model, optimizer, make_loss(section), plan(batch_size=8))
    random = np.random.default_rng(2)
    average = None
    for _ in range(3):
        batch = (random.normal(size=(8, 6)).astype("float32"), random.integers(0, 3, 8))
        trainer.train_steps(distribute(strategy, tf.data.Dataset.from_tensors(batch)),
                            tf.constant(1))
        weights = [np.array(w) for w in model.trainable_weights]
        average = weights if average is None else [0.8 * a + 0.2 * w
                                                   for a, w in zip(average, weights)]
    with averaged_weights(optimizer, model.trainable_variables):
        for expected, weight in zip(average, model.trainable_weights):
            np.testing.assert_allclose(np.array(weight), expected, rtol=1e-6, atol=1e-7)
    for trained, weight in zip(weights, model.trainable_weights):  # the trained ones are back
        np.testing.assert_array_equal(np.array(weight), trained)


def test_a_run_with_weight_averaging_exports_the_averaged_weights(tmp_path, monkeypatch):
    import numpy as np

    import zoo
    import zoo.training
    from conftest import TINY

    made = []

    def keep(*args, **kwargs):
        made.append(make_optimizer(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(zoo.training, "make_optimizer", keep)
    monkeypatch.chdir(tmp_path)
    result = zoo.train(TINY, output="out", log=lambda _: None,
                       overrides=["train.ema=0.9", "train.epochs=2", "train.precision=float32"])
    exported = keras.saving.load_model(tmp_path / result.export / "model.keras")
    (optimizer,) = made
    averages = [np.array(v) for v in optimizer._model_variables_moving_average]
    for average, weight in zip(averages, exported.trainable_weights):
        np.testing.assert_array_equal(average, np.array(weight))
