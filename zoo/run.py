"""The main job, top to bottom: spec -> data -> strategy -> (pretrain) -> train -> export."""

from __future__ import annotations

import contextlib
import math
import os
import shutil

import keras
import tensorflow as tf

from zoo.build import build_model
from zoo.checkpoints import RunState, one_run_at_a_time, spec_fingerprint
from zoo.data import IMAGE_SUFFIXES, DataInfo, load_split
from zoo.devices import (choose_precision, choose_xla, describe_threads, dtype_policy,
                          use_threads)
from zoo.export import check_writable, export
from zoo.pretrain import phases, set_trainable
from zoo.source import SpecError, plain
from zoo.spec import Spec, load_spec
from zoo.catalog import record_result
from zoo.training import (Splits, TensorBoardLog, choose_strategy, is_chief,
                           stop_between_steps_on_ctrl_c, train)

CACHE_LIMIT_BYTES = 2 << 30  # raw uint8 splits smaller than this stay in memory


def split_logical_cpus(count: int) -> None:
    """Present the CPU as `count` devices, to run multi-device code where there are no GPUs."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def size_thread_pools(train) -> None:
    """Apply `train.threads` before anything starts TensorFlow's runtime."""
    try:
        use_threads(train.get("threads"))
    except RuntimeError:  # only a program that already ran TensorFlow, never train.py
        raise train.error("threads", "TensorFlow is already running in this process and its "
                                     "thread pools are fixed; train in a new process (train.py) "
                                     "or leave threads at auto") from None


def load_splits(spec: Spec, train_split: str, download: bool) -> Splits:
    """The raw train split named, and the split that evaluates it, for the spec's dataset."""
    data = spec.data
    if not data.get("dataset"):
        raise SpecError(data.location, "data", "training needs a dataset: add `data: {dataset: "
                                               "NAME}` or pass --set data.dataset=mnist_subset")
    name = data["dataset"]
    where = data.where("dataset")
    eval_split = data.get("validation_split") or data.get("eval_split") or "test"
    train_raw, info = load_split(name, train_split, download=download, where=where)
    eval_raw, _ = load_split(name, eval_split, download=download, where=where)
    sizes = [_split_size(info, split, raw) for split, raw in ((train_split, train_raw),
                                                              (eval_split, eval_raw))]
    train_raw, eval_raw = (cache_if_small(raw, info, size)
                           for raw, size in zip((train_raw, eval_raw), sizes))
    return Splits(train_raw, eval_raw, info, *sizes, options=dict(data))


def cache_if_small(raw, info: DataInfo, size: int):
    """Keep a raw split in memory after its first pass when it fits (every epoch reuses it)."""
    pixels = math.prod(info.image_shape) if None not in info.image_shape else None
    return raw.cache() if pixels and pixels * size < CACHE_LIMIT_BYTES else raw


def _split_size(info: DataInfo, split: str, raw) -> int:
    if split in info.split_sizes:
        return info.split_sizes[split]
    return int(raw.reduce(0, lambda count, _: count + 1))  # a sliced split such as train[:90%]


def bind_classes(spec: Spec, info: DataInfo, log) -> None:
    """A classifier spec's `classes` variable follows the dataset's number of classes."""
    variables = spec.model.get("vars")
    if spec.train.get("target") == "input" or not variables or "classes" not in variables:
        return
    if variables["classes"] != info.num_classes:
        log(f"model.vars.classes = {info.num_classes} (dataset {info.name} has "
            f"{info.num_classes} classes; the spec said {variables['classes']})")
        variables["classes"] = info.num_classes


def check_model_fits_data(spec: Spec, model, info: DataInfo) -> None:
    """Fail before training when the data cannot feed the model or its labels cannot fit it."""
    inputs = spec.model["inputs"]
    if len(model.inputs) != 1:
        raise SpecError(inputs.location, inputs.path, f"training feeds one image per example, "
                        f"but the model takes {len(model.inputs)} inputs")
    shape = [int(size) if size is not None else None for size in model.inputs[0].shape[1:]]
    if len(shape) != 3 or shape[-1] not in (1, 3, info.image_shape[-1]):
        raise inputs.error(next(iter(inputs)), f"dataset '{info.name}' yields images of shape "
                           f"{list(info.image_shape)}, which are resized and converted to the "
                           "model's input: it must be [height, width, channels] with 1 or 3 "
                           f"channels, received {shape} (a dense network starts with flatten)")
    if spec.train.get("target") == "input":
        return
    predicted = model.outputs[0].shape[-1]
    if predicted != info.num_classes:
        raise SpecError(spec.model.location, "model", f"the model predicts {predicted} classes "
                        f"but dataset '{info.name}' has {info.num_classes}; give the output layer "
                        f"units: \"${{classes}}\" with model.vars.classes, which follows the data")


STRATEGY_NAMES = {"CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy",
                  "_DefaultDistributionStrategy": "the default strategy"}


def run_phases(steps, model, strategy, checkpoints: str, fingerprint: str, chief: bool,
               log, tensorboard: str | None = None) -> dict:
    """Run each phase in order; a finished phase is skipped and its final weights loaded, so
    the next phase starts from exactly what it ended with. Returns the histories by phase.
    With `tensorboard` (a directory), the chief also writes TensorBoard logs there."""
    histories = {}
    for phase in steps:
        state = RunState(os.path.join(checkpoints, phase.name), fingerprint, chief)
        if state.is_complete:
            model.load_weights(state.final_weights)
            histories[phase.name] = state.history
            continue
        set_trainable(model, phase.trainable)
        board = TensorBoardLog(tensorboard, phase.name) if tensorboard and chief else None
        histories[phase.name] = train(phase.section, phase.model, phase.splits, strategy, state,
                                      log, title=phase.title, tensorboard=board)
        set_trainable(model, {layer.name for layer in model.layers})
        state.complete(model)
    return histories


def run_training(args, log=print):
    """Train the spec as `train.py` was asked to: every phase it declares, then export.

    Returns (the trained model, the export directory; None on workers other than the chief).
    """
    if args.logical_cpus:
        split_logical_cpus(args.logical_cpus)
    spec = load_spec(args.spec, args.overrides)
    size_thread_pools(spec.train)
    strategy = choose_strategy(args.strategy)
    chief = is_chief(strategy)
    if chief:
        check_writable(args.output, spec.name)
    log = log if chief else (lambda *_: None)
    train_split = spec.data.get("train_split") or "train"
    labeled = load_splits(spec, train_split, args.download)
    info = labeled.info
    bind_classes(spec, info, log)
    precision = choose_precision(spec.train.get("precision"))
    log(f"training {spec.name} on {info.name} ({labeled.train_size:,} train / "
        f"{labeled.eval_size:,} eval images) with "
        f"{STRATEGY_NAMES.get(type(strategy).__name__, type(strategy).__name__)} over "
        f"{strategy.num_replicas_in_sync} replica(s), {precision}"
        f"{', XLA' if choose_xla(spec.train.get('xla'), strategy) else ''}"
        f"{', ' + threads if (threads := describe_threads()) else ''}")
    if info.skipped:
        log(f"skipped {len(info.skipped)} file(s) of {info.name} that are not images by their "
            f"name (not {', '.join(IMAGE_SUFFIXES)}): {', '.join(info.skipped[:3])}"
            + (" ..." if len(info.skipped) > 3 else ""))
    unlabeled = labeled
    if spec.pretrain and spec.pretrain.get("unlabeled", train_split) != train_split:
        unlabeled = load_splits(spec, spec.pretrain["unlabeled"], args.download)
    checkpoints = os.path.join(args.output, spec.name, "checkpoint")
    lock = one_run_at_a_time(checkpoints, log) if chief else contextlib.nullcontext()
    with lock, dtype_policy(precision):
        if args.restart and chief:
            shutil.rmtree(checkpoints, ignore_errors=True)
        keras.utils.set_random_seed(spec.train.get("seed") or 0)  # initial weights follow it
        with strategy.scope():
            model = build_model(spec)
            check_model_fits_data(spec, model, info)
            steps = phases(spec, model, labeled, unlabeled)
        with stop_between_steps_on_ctrl_c():
            histories = run_phases(steps, model, strategy, checkpoints,
                                   spec_fingerprint(plain(spec.document)), chief, log,
                                   args.tensorboard)
        if not chief:
            return model, None
        final = {key[4:]: value for key, value in histories[steps[-1].name][-1].items()
                 if key.startswith("val_")}
        dataset = {"name": info.name, "train_split": train_split,
                   "eval_split": spec.data.get("eval_split") or "test"}
        directory = export(spec, model, info, args.output, history=histories, metrics=final,
                           dataset=dataset)
        log(f"exported {directory}")
        shutil.rmtree(checkpoints, ignore_errors=True)
    if args.results:
        record_result(args.results, spec.name, final, dataset, args.command_line, directory)
        log(f"recorded the result in {args.results}")
    return model, directory
