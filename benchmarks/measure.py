"""Throughput of one model, measured inside one benchmark process: stock Keras `fit`, the
zoo's own training loop, and inference, all on one in-memory batch repeated (so the input
pipeline costs nothing; benchmarks/input_pipeline.py measures that separately)."""

from __future__ import annotations

import contextlib
import time

import keras
import numpy as np
import tensorflow as tf

from zoo.data import without_autotuning
from zoo.devices import precision_candidates
from zoo.pipeline import distribute
from zoo.precision import precision_to_train_in, step_seconds
from zoo.optimization import make_loss, make_optimizer
from zoo.training import Plan, Trainer

WARMUP_STEPS = 3  # tracing and the first slow steps, not timed
OPTIMIZER = {"sgd": {"learning_rate": 0.01, "momentum": 0.9}}
SECTION = {"optimizer": OPTIMIZER, "loss": "sparse_categorical_crossentropy"}  # zoo_loop's


def in_memory_batches(model: keras.Model, batch_size: int) -> tf.data.Dataset:
    random = np.random.default_rng(0)
    shape = (batch_size, *model.inputs[0].shape[1:])
    images = tf.constant(random.random(shape, dtype=np.float32))
    labels = tf.constant(random.integers(0, model.outputs[0].shape[-1], batch_size))
    return without_autotuning(tf.data.Dataset.from_tensors((images, labels)).repeat())


def keras_fit(model: keras.Model, batch_size: int, steps: int) -> float:
    """Images per second of `model.fit` with Keras's defaults, as a user would write it."""
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = in_memory_batches(model, batch_size)
    model.fit(batches, steps_per_epoch=WARMUP_STEPS, epochs=1, verbose=0)
    began = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return batch_size * steps / (time.perf_counter() - began)


def zoo_loop(model: keras.Model, batch_size: int, steps: int, xla="auto", dataset=None,
             warmup_steps: int = WARMUP_STEPS, around_timed=contextlib.nullcontext) -> float:
    """Images per second of the zoo's training step (zoo.training.Trainer) under the
    default strategy, with the dtype policy the model was built under; on `dataset` or on an
    in-memory batch repeated. One iterator gives `warmup_steps` untimed batches, then `steps`
    timed ones. The timed steps run inside the context `around_timed(model)` (a profiler,
    say), whose own entry and exit are not timed."""
    plan = loop_plan(batch_size, steps, xla)
    strategy = tf.distribute.get_strategy()
    optimizer = make_optimizer(SECTION, steps, 1)
    trainer = Trainer(strategy, model, optimizer, make_loss(SECTION), plan)
    batches = distribute(strategy, in_memory_batches(model, batch_size) if dataset is None
                         else dataset)
    trainer.train_epoch(batches, warmup_steps)
    with around_timed(model):
        began = time.perf_counter()
        trainer.train_epoch(batches, steps)
        seconds = time.perf_counter() - began
    return batch_size * steps / seconds


def loop_plan(batch_size: int, steps: int, xla="auto") -> Plan:
    return Plan(epochs=1, batch_size=batch_size, steps_per_epoch=steps, target="label",
                metrics=("accuracy",), weight_decay=0.0, seed=0, xla=xla)


def precision_for(setting: str | None, build, batch_size: int) -> str:
    """The precision `train.precision: SETTING` trains the model `build()` makes in: where
    `auto` has two to choose from, zoo.precision's probe, on zoo_loop's step and batches."""
    options = precision_candidates(setting)
    if len(options) == 1:
        return options[0]
    return precision_to_train_in(step_seconds(
        build, SECTION, loop_plan(batch_size, 1),
        lambda model: in_memory_batches(model, batch_size), options))


def inference(model: keras.Model, batch_size: int, steps: int) -> float:
    """Images per second of a compiled forward pass in inference mode."""
    forward = tf.function(lambda images: model(images, training=False))
    images = next(iter(in_memory_batches(model, batch_size)))[0]
    for _ in range(WARMUP_STEPS):
        forward(images).numpy()
    began = time.perf_counter()
    for _ in range(steps):
        forward(images).numpy()
    return batch_size * steps / (time.perf_counter() - began)
