"""The main job, top to bottom: spec -> data -> strategy -> (pretrain) -> train -> export.

    import zoo
    result = zoo.train("specs/lenet.yaml", overrides=["data.dataset=mnist_subset"])
    result.metrics["accuracy"], result.export      # 0.97..., 'exports/lenet/1'

`zoo train` (and train.py) call `train` with the command line's values; a notebook calls it
with keyword arguments. Bad input raises `zoo.SpecError` before any training.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass

import keras

from zoo.build import build_model
from zoo.checkpoints import (RunState, adopt_lowered_rate, note_divergence, one_run_at_a_time,
                             spec_fingerprint)
from zoo.data import IMAGE_SUFFIXES, DataInfo
from zoo.devices import (choose_strategy, choose_xla, describe_threads, dtype_policy, is_chief,
                         split_logical_cpus, strategy_name, use_threads)
from zoo.conversion import convert
from zoo.divergence import Diverged
from zoo.export import export, removed_if_left_empty
from zoo.precision import choose_precision
from zoo.pipeline import eval_split_name, load_splits, split_of, upscaling_note
from zoo.preflight import check_before_training, check_model_takes_images
from zoo.pretrain import phases
from zoo.source import SpecError, plain
from zoo.spec import Spec, as_spec
from zoo.tracking import MlflowRun, check_tracker
from zoo.training import final_figures, run_phases, stop_between_steps_on_ctrl_c
from zoo.weights import initial_weights


@dataclass
class TrainResult:
    """What a finished run leaves: the trained model and, on the chief, its export."""

    spec: Spec
    model: keras.Model
    export: str | None  # the version directory, e.g. exports/lenet/1; None on other workers
    metrics: dict  # the evaluation split's figures after the last epoch (accuracy, loss, ...)
    dataset: dict  # name, train_split, eval_split, evaluated (the split `metrics` are on)
    history: dict  # every epoch's figures, by phase


def train(spec, *, overrides=(), output: str = "exports", strategy: str | None = None,
          logical_cpus: int | None = None, restart: bool = False,
          tensorboard: str | None = None, download: bool = False, log=print,
          progress: bool = False, on_epoch=None, track: str | None = None,
          track_uri: str | None = None, tags: dict | None = None) -> TrainResult:
    """Train a spec as it declares (every pretraining phase, then training) and export it.

    `spec`: a spec file's path, YAML text (a string of several lines, named "spec"), or a
    loaded `zoo.Spec`. `overrides`: `dotted.key=value` strings, as `--set` takes them.
    `output`: exports go to OUTPUT/<spec name>/<version>/. `strategy`: default, mirrored or
    multi_worker (None: what the hardware and TF_CONFIG call for); `logical_cpus` splits the
    CPU into that many devices first. `restart` discards an unfinished run instead of
    resuming it. `tensorboard`: a folder for TensorBoard logs. `download`: let TFDS fetch a
    missing dataset. `log` receives each progress line; `progress` also draws a bar of each
    epoch's steps on standard output (rate, ETA), for a terminal. `on_epoch(phase name, epoch
    number, metrics)` is called on the chief after each epoch is checkpointed (a tracker
    logs the figures; a sweep prunes a poor trial by raising). `track="mlflow"` logs the run
    to MLflow (zoo.tracking): in `track_uri`, else $MLFLOW_TRACKING_URI, else
    sqlite:///mlflow.db; `tags` are added to its run's tags (`zoo.command`: the command line).
    """
    if logical_cpus:
        split_logical_cpus(logical_cpus)
    spec = as_spec(spec, overrides)
    size_thread_pools(spec.train)
    distribution = choose_strategy(strategy)
    check_batch_splits(spec, distribution.num_replicas_in_sync)
    chief = is_chief(distribution)
    folders = contextlib.ExitStack()  # a run that fails leaves no empty export folders
    if chief:
        check_tracker(track, track_uri)
        folders.enter_context(removed_if_left_empty(output, spec.name))
    with folders:
        log = log if chief else (lambda *_: None)
        progress = progress and chief
        train_split = spec.data.get("train_split") or "train"
        labeled = load_splits(spec, train_split, download)
        info = labeled.info
        bind_classes(spec, info, log)
        checkpoints = os.path.join(output, spec.name, "checkpoint")
        check = model_checks(spec, info)
        precision = choose_precision(spec, labeled, distribution,
                                     None if restart else checkpoints, check, log)
        log(f"training {spec.name} on {info.name} ({labeled.train_size:,} train / "
            f"{labeled.eval_size:,} eval images) with {strategy_name(distribution)} over "
            f"{distribution.num_replicas_in_sync} replica(s), {precision.precision}"
            f"{', XLA' if choose_xla(spec.train.get('xla'), distribution) else ''}"
            f"{', ' + threads if (threads := describe_threads()) else ''}")
        if precision.how:
            log(f"precision auto: {precision.precision}, {precision.how}")
        if note := upscaling_note(labeled):
            log(note)
        if labeled.eval_split != eval_split_name(spec):
            log(f"{info.name} has no '{eval_split_name(spec)}' split: each epoch and the export "
                f"are evaluated on '{labeled.eval_split}'")
        if info.skipped:
            log(f"skipped {len(info.skipped)} file(s) of {info.name} that are not images by their "
                f"name (not {', '.join(IMAGE_SUFFIXES)}): {', '.join(info.skipped[:3])}"
                + (" ..." if len(info.skipped) > 3 else ""))
        unlabeled = labeled
        if spec.pretrain and (spec.pretrain.get("unlabeled") or train_split) != train_split:
            unlabeled = load_splits(spec, spec.pretrain["unlabeled"], download,
                                    spec.pretrain.where("unlabeled"))
        lock = one_run_at_a_time(checkpoints, log) if chief else contextlib.nullcontext()
        with lock, dtype_policy(precision.precision):
            if restart and chief:
                shutil.rmtree(checkpoints, ignore_errors=True)
            keras.utils.set_random_seed(spec.train.get("seed") or 0)  # initial weights follow it
            with distribution.scope():
                model = build_model(spec)
            check(model)  # outside the scope: it makes throwaway objects
            start_from = initial_weights(spec, model)
            with distribution.scope():
                if start_from:
                    start_from.apply(model)
                    log(start_from.report())
                steps = phases(spec, model, labeled, unlabeled)
            document = plain(spec.document)
            fingerprint = spec_fingerprint(document)
            if chief and (lowered := adopt_lowered_rate(checkpoints, document, fingerprint)):
                log(f"the last run of {spec.name} diverged: it resumes with {lowered} changed")
            for step in steps:  # a spec changed since an unfinished run fails before tracking
                RunState(os.path.join(checkpoints, step.name), fingerprint, chief)
            tracked = (MlflowRun(spec, [step.name for step in steps], checkpoints, info.name,
                                 fingerprint, uri=track_uri, tags=tags, log=log)
                       if track and chief else contextlib.nullcontext())
            with tracked as tracker:
                try:
                    with stop_between_steps_on_ctrl_c():
                        histories = run_phases(steps, model, distribution, checkpoints,
                                               fingerprint, chief, log, tensorboard, progress,
                                               [observer for observer in (
                                                   tracker and tracker.epoch, on_epoch)
                                                if observer])
                except Diverged as error:  # the same command with a lower rate may resume
                    if chief:
                        note_divergence(checkpoints, error.setting.fixed_key, document)
                    raise
                final = {key[4:]: value for key, value in final_figures(
                    steps[-1], histories[steps[-1].name]).items() if key.startswith("val_")}
                # `eval_split` is what `zoo evaluate` takes by default; the figures of every epoch
                # (and so the result recorded) are on `evaluated`, the validation split if any.
                dataset = {"name": info.name, "train_split": train_split,
                           "eval_split": split_of(info, spec.data.get("eval_split") or "test"),
                           "evaluated": labeled.eval_split}
                directory = None
                warning = chance_level(spec, info, final)
                if warning:
                    log(f"WARNING: {warning}")
                if chief:
                    directory = export(spec, model, info, output, history=histories,
                                       metrics=final, dataset=dataset,
                                       warnings=[warning] if warning else [])
                    log(f"exported {directory}")
                    shutil.rmtree(checkpoints, ignore_errors=True)
                    if converted := [kind for kind in spec.export["formats"]
                                     if kind != "saved_model"]:
                        convert(directory, converted, log)
                    if tracker:
                        tracker.finish(directory, final, histories)
        return TrainResult(spec, model, directory, final, dataset, histories)


def chance_level(spec: Spec, info: DataInfo, final: dict) -> str | None:
    """What to say of a classifier that learned nothing: accuracy within half of chance's."""
    chance = 1 / max(info.num_classes, 1)
    accuracy = final.get("accuracy")
    if spec.train.get("target") == "input" or accuracy is None or accuracy > 1.5 * chance:
        return None
    return (f"the accuracy reached, {accuracy:.4f}, is at chance level ({chance:.4f} for "
            f"{info.num_classes} classes): the network learned nothing. Look at the loss per "
            "epoch: a learning rate too large or too small, too few epochs, or preprocessing "
            "the export does not match are the usual causes")


def size_thread_pools(train) -> None:
    """Apply `train.threads` before anything starts TensorFlow's runtime."""
    try:
        use_threads(train.get("threads"))
    except RuntimeError:  # only a program that already ran TensorFlow, never train.py
        raise train.error("threads", "TensorFlow is already running in this process and its "
                                     "thread pools are fixed; train in a new process (train.py) "
                                     "or leave threads at auto") from None


def bind_classes(spec: Spec, info: DataInfo, log) -> None:
    """A classifier spec's `classes` variable follows the dataset's number of classes."""
    variables = spec.model.get("vars")
    if spec.train.get("target") == "input" or not variables or "classes" not in variables:
        return
    if variables["classes"] != info.num_classes:
        log(f"model.vars.classes = {info.num_classes} (dataset {info.name} has "
            f"{info.num_classes} classes; the spec said {variables['classes']})")
        variables["classes"] = info.num_classes


def model_checks(spec: Spec, info: DataInfo):
    """What a built model must pass before it trains. Every model a run builds (a precision
    probe's, then its own) comes from the same spec whatever its dtype policy, so the first
    one checked answers for all and the later calls return at once."""
    checked = False

    def check(model) -> None:
        nonlocal checked
        if not checked:
            check_model_fits_data(spec, model, info)
            check_before_training(spec, model)
            checked = True
    return check


def check_batch_splits(spec: Spec, replicas: int) -> None:
    """Each replica takes an equal share of a global batch, prepared by its worker alone."""
    batch = spec.train.get("batch_size") or 32
    if batch % replicas:
        raise spec.train.error("batch_size", f"a global batch of {batch} does not split "
                               f"evenly over {replicas} replicas: use a multiple of {replicas}, "
                               f"e.g. {batch // replicas * replicas or replicas}")


def check_model_fits_data(spec: Spec, model, info: DataInfo) -> None:
    """Fail before training when the data cannot feed the model or its labels cannot fit it."""
    check_model_takes_images(spec, model)  # one input of [height, width, channels]
    inputs = spec.model["inputs"]
    shape = [int(size) if size is not None else None for size in model.inputs[0].shape[1:]]
    if shape[-1] not in (1, 3, info.image_shape[-1]):
        raise inputs.error(next(iter(inputs)), f"dataset '{info.name}' yields images of shape "
                           f"{list(info.image_shape)}, which are resized and converted to the "
                           "model's input: it must be [height, width, channels] with 1 or 3 "
                           f"channels, received {shape}")
    if spec.train.get("target") == "input":
        return
    predicted = model.outputs[0].shape[-1]
    if predicted != info.num_classes:
        raise SpecError(spec.model.location, "model", f"the model predicts {predicted} classes "
                        f"but dataset '{info.name}' has {info.num_classes}; give the output layer "
                        f"units: \"${{classes}}\" with model.vars.classes, which follows the data")
