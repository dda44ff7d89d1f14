"""What a run would refuse, checked once the model is built and before a second of training.

Loading a spec checks each value on its own (zoo.sections); some names only mean something
against the built model and the run it will have: the figures a monitor watches, the layers
`export.outputs` and `pretrain.layers` name, and whether Keras can make each optimizer, loss
and schedule with the values given. `zoo summary` (--dry-run) and `zoo train` both run these
checks, so a mistake never waits for the end of an epoch, or of the whole run, to show.
"""

from __future__ import annotations

import keras
import numpy as np

from zoo import names
from zoo.conversion import missing_packages
from zoo.data import check_dataset_name
from zoo.pretrain import pretrained_layers
from zoo.sections import TOP, walk
from zoo.source import SpecError, suggest
from zoo.spec import Spec
from zoo.optimization import call_parts, make_loss
from zoo.training import layers_matching
from zoo.values import KerasObject, LayerName, LayerPatterns, Monitor, refused_error


def check_before_training(spec: Spec, model: keras.Model) -> None:
    """Raise a located SpecError for the first name the run would not find."""
    if spec.data.get("dataset"):
        check_dataset_name(spec.data["dataset"], spec.data.where("dataset"))
    figures = logged_figures(spec, model)
    layers = [layer.name for layer in model.layers]
    for container, key, kind in walk(spec.document, TOP):
        value = container[key]
        if isinstance(kind, Monitor) and value not in figures:
            raise container.error(key, f"the run never logs '{value}'{suggest(value, figures)}; "
                                       f"each epoch it logs {', '.join(figures)}")
        if isinstance(kind, LayerName) and value not in layers:
            raise container.error(key, f"no layer named '{value}' in the model"
                                       f"{suggest(value, layers)}")
        if isinstance(kind, KerasObject):
            _check_constructible(kind, value, container, key)
        if isinstance(kind, LayerPatterns):
            layers_matching(model, value)
    if spec.pretrain:
        pretrained_layers(spec, model)
    _check_mixing(spec)
    _check_export_formats(spec)
    if spec.data.get("dataset"):  # a spec that names no data is a model to look at, not a run
        check_model_takes_images(spec, model)
        _check_loss_fits(spec, model)


def logged_figures(spec: Spec, model: keras.Model) -> list[str]:
    """The figures each epoch logs, on the training and the validation data (val_)."""
    if spec.train["target"] != "label":
        if spec.train.get("metrics"):
            raise spec.train.error("metrics", "accuracy and top5 compare predicted classes with "
                                              "labels; with target: input the run measures the "
                                              "loss alone, so leave metrics out")
        measured = ["loss"]
    else:
        classes = model.outputs[0].shape[-1] or 0
        default = ["accuracy", "top5"] if classes > 5 else ["accuracy"]
        measured = ["loss", *(spec.train.get("metrics") or default)]
    return measured + [f"val_{name}" for name in measured]


def _check_constructible(kind: KerasObject, value, container, key) -> None:
    """Let Keras make the object from the spec's values (an optimizer's momentum of 2, a
    schedule's negative decay): here, not at the start of training."""
    name, kwargs = call_parts(value)
    supplied = {argument: 0.1 for argument in kind.supplied if argument not in kwargs}
    try:
        names.construct(kind.kind, name, kwargs, supplied)
    except names.Refused as refused:
        arguments = next(iter(value.values())) if isinstance(value, dict) else {}
        raise refused_error(refused, value, container, key, arguments or {}) from None


def _check_loss_fits(spec: Spec, model: keras.Model) -> None:
    """Apply the loss to what the run will give it, a batch of two: integer labels (or, with
    `target: input`, the input itself) against the model's output. A loss that wants one-hot
    labels (categorical_crossentropy) fails here, not at the first training step."""
    def batch(tensor, dtype):
        return np.zeros([2, *(size or 1 for size in tensor.shape[1:])], dtype)

    predictions = batch(model.outputs[0], "float32")
    targets = (batch(model.inputs[0], "float32") if spec.train["target"] == "input"
               else np.zeros([2], "int64"))
    try:
        make_loss(spec.train)(targets, predictions)
    except Exception as exc:  # Keras reports mismatched shapes with several exception types
        what = ("the model's input" if spec.train["target"] == "input"
                else "integer labels, one class per image")
        raise spec.train.error("loss", f"the loss cannot compare {what} (shape "
                               f"{list(targets.shape[1:])}) with the model's output (shape "
                               f"{list(predictions.shape[1:])}): {names.first_lines(exc)}"
                               + ("; for integer labels use sparse_categorical_crossentropy"
                                  if spec.train["target"] == "label" else "")) from None


def _check_mixing(spec: Spec) -> None:
    """MixUp and CutMix mix labels into rows of class weights, which only a classifier
    trained with sparse_categorical_crossentropy takes."""
    augment = spec.data.get("augment") or {}
    mixing = [key for key in ("mixup", "cutmix") if augment.get(key)]
    if not mixing:
        return
    loss = spec.train["loss"]
    name = loss if isinstance(loss, str) else next(iter(loss))
    if spec.train["target"] != "label" or names.normalize_name(name) != \
            "sparsecategoricalcrossentropy":
        raise augment.error(mixing[0], f"{mixing[0]} mixes the labels of two images, so it "
                                       "needs target: label and the loss "
                                       "sparse_categorical_crossentropy")


def _check_export_formats(spec: Spec) -> None:
    """Each format's converter and runtime must be installed before a run trains for it."""
    formats = spec.export.get("formats") or []
    for index, kind in enumerate(formats):
        if problems := missing_packages([kind]):
            raise formats.error(index, problems[0].message)


def check_model_takes_images(spec: Spec, model: keras.Model) -> None:
    """Training feeds one image per example, resized and converted to the model's input; the
    dataset's channels are checked once the data is loaded (zoo.run)."""
    inputs = spec.model["inputs"]
    if len(model.inputs) != 1:
        raise SpecError(inputs.location, inputs.path, f"training feeds one image per example, "
                        f"but the model takes {len(model.inputs)} inputs")
    shape = [int(size) if size is not None else None for size in model.inputs[0].shape[1:]]
    if len(shape) != 3:
        raise inputs.error(next(iter(inputs)), "training feeds images, resized and converted to "
                           "the model's input: it must be [height, width, channels], received "
                           f"{shape} (a dense network starts with flatten)")
