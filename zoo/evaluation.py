"""Metrics of an export, computed from its SavedModel alone (no zoo model code).

The dataset comes through `zoo.data` as raw uint8 images, exactly what the
export's `serving_default` signature takes; the model, its preprocessing and
its class names all come from the export directory.
"""

from __future__ import annotations

import json
import os

import numpy as np
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from zoo.data import load_split
from zoo.export import TEN_CROP, existing_versions
from zoo.runtimes import bad_export, load_saved_model, open_model
from zoo.source import SpecError

BATCH_SIZE = 256
PER_CLASS_COLUMNS = (("accuracy/recall", 15), ("precision", 11), ("f1", 8), ("support", 9))


def load_metadata(directory: str) -> dict:
    """The metadata.json of an export directory, checked."""
    try:
        with open(os.path.join(directory, "metadata.json")) as handle:
            metadata = json.load(handle)
    except (OSError, ValueError) as exc:
        raise bad_export(directory, f"metadata.json is missing or damaged ({exc}); was this "
                                     "written by train.py?") from None
    _check_metadata(directory, metadata)
    return metadata


# The metadata.json entries evaluation reads, with the keys each must hold.
METADATA_KEYS = {"input": ("name", "shape"), "outputs": (), "class_names": (),
                 "dataset": ("name", "eval_split")}


def _check_metadata(directory: str, metadata) -> None:
    for key, inner in METADATA_KEYS.items():
        value = metadata.get(key) if isinstance(metadata, dict) else None
        if not isinstance(value, (dict, list)) or not all(k in value for k in inner):
            holding = f" holding {', '.join(inner)}" if inner else ""
            raise bad_export(directory, f"metadata.json has no '{key}' entry{holding}; was this "
                                         "written by train.py?")


def newest_version(directory: str) -> str:
    """A spec's export folder stands for its newest version (what TensorFlow Serving serves)."""
    if os.path.isdir(directory) and not os.path.exists(os.path.join(directory, "saved_model.pb")):
        versions = existing_versions(directory)
        if versions:
            return os.path.join(directory, str(versions[-1]))
    return directory


def evaluate_export(path: str, dataset: str | None = None, split: str | None = None,
                    download: bool = False, crops: int = 1) -> dict:
    """Metrics of an export on a split: of a version folder's SavedModel, or of a `.onnx` or
    `.tflite` file converted in one (then with the SavedModel's accuracy beside it, and the
    change). `crops=10` averages the outputs over AlexNet's ten crops (the SavedModel's
    `ten_crop` signature, there when its preprocessing crops the center)."""
    serve = _signature(path, crops)
    metadata = load_metadata(serve.directory)
    dataset = dataset or metadata["dataset"]["name"]
    split = split or metadata["dataset"]["eval_split"]
    raw, info = load_split(dataset, split, download=download, where=(None, "--dataset"))
    expected = tuple(metadata["input"]["shape"][1:])
    if not all(e is None or e == h for e, h in zip(expected, info.image_shape)) \
            or len(expected) != len(info.image_shape):
        raise SpecError(None, "--dataset", f"dataset '{dataset}' yields images of shape "
                                           f"{list(info.image_shape)} but the export takes "
                                           f"{list(expected)}")
    if metadata.get("target") == "input":
        return _reconstruction_metrics(serve, open_model(serve.directory, "preprocess"), raw,
                                       info, dataset, split)
    classes = metadata["class_names"]
    if info.num_classes != len(classes):
        raise SpecError(None, "--dataset", f"dataset '{dataset}' has {info.num_classes} classes, "
                                           f"the export predicts {len(classes)}")
    output_name = next(iter(metadata["outputs"]))
    labels, probabilities = [], []
    for images, batch_labels in raw.batch(_batch_size(info.image_shape)):
        probabilities.append(serve(images.numpy())[output_name])
        labels.append(batch_labels.numpy())
    metrics = {**classification_metrics(np.concatenate(labels), np.concatenate(probabilities),
                                        classes, dataset, split),
               "crops": crops, "format": serve.format}
    if serve.format != "saved_model":  # a converted file: how far conversion moved it
        reference = evaluate_export(serve.directory, dataset, split, download)["accuracy"]
        metrics.update(saved_model_accuracy=reference,
                       accuracy_change=metrics["accuracy"] - reference)
    return metrics


def _signature(path: str, crops: int):
    if crops == 1:
        return open_model(path)
    if not os.path.isdir(path):
        raise SpecError(None, "--crops", f"{path}: ten-crop evaluation runs the SavedModel's "
                                         "ten_crop signature; give the export folder")
    if TEN_CROP not in load_saved_model(path).signatures:
        raise SpecError(None, "--crops", f"{path} takes no crops: ten-crop evaluation crops "
                                         "around the center of images its spec's "
                                         "data.preprocess resizes and center_crops")
    return open_model(path, TEN_CROP)


def classification_metrics(labels, probabilities, classes, dataset, split) -> dict:
    """Accuracy, loss, top-5, per-class recall (the class's accuracy), precision, F1 and support,
    their macro averages, ROC-AUC of two classes, and the confusion matrix."""
    predicted = probabilities.argmax(axis=1)
    count = len(labels)
    chosen = probabilities[np.arange(count), labels]
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    metrics = {"dataset": dataset, "split": split, "examples": int(count),
               "accuracy": float((predicted == labels).mean()),
               "loss": float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean())}
    if len(classes) > 5:
        top5 = np.argsort(-probabilities, axis=1)[:, :5]
        metrics["top5_accuracy"] = float((top5 == labels[:, None]).any(axis=1).mean())
    metrics.update(per_class_metrics(labels, predicted, classes))
    if len(classes) == 2:  # from the second class's probability; undefined with one class
        metrics["roc_auc"] = (float(roc_auc_score(labels, probabilities[:, 1]))
                              if len(set(labels.tolist())) == 2 else None)
    metrics["confusion_matrix"] = {"labels": list(classes), "rows_true_columns_predicted":
                                   confusion.tolist()}
    return metrics


def per_class_metrics(labels, predicted, classes) -> dict:
    """Precision, recall and F1 of each class the split holds, and their macro averages.

    A class never predicted has precision 0 (scikit-learn's zero_division=0), so it counts
    against the averages; a class with no example in the split has no figures (None) and
    stays out of them.
    """
    present = sorted(set(labels.tolist()))
    figures = precision_recall_fscore_support(labels, predicted, labels=present,
                                              zero_division=0)
    by_class = dict(zip(present, zip(*figures)))
    per_class = {}
    for index, name in enumerate(classes):
        precision, recall, f1, support = by_class.get(index, (None, None, None, 0))
        per_class[name] = {"recall": _number(recall), "precision": _number(precision),
                           "f1": _number(f1), "support": int(support)}
    macro = precision_recall_fscore_support(labels, predicted, labels=present,
                                            average="macro", zero_division=0)
    return {"macro_precision": float(macro[0]), "macro_recall": float(macro[1]),
            "macro_f1": float(macro[2]), "per_class": per_class}


def _number(value):
    return None if value is None else float(value)


def _batch_size(image_shape) -> int:
    """Images of varying sizes (a folder of photos) cannot share a batch."""
    return BATCH_SIZE if None not in image_shape else 1


def _reconstruction_metrics(serve, preprocess, raw, info, dataset, split) -> dict:
    squared, crossentropy, count = 0.0, 0.0, 0
    for images, _ in raw.batch(_batch_size(info.image_shape)):
        target = preprocess(images.numpy())["input"]
        output = serve(images.numpy())["reconstruction"]
        clipped = np.clip(output, 1e-7, 1 - 1e-7)
        squared += float(((output - target) ** 2).mean(axis=tuple(range(1, target.ndim))).sum())
        crossentropy += float(-(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))
                              .mean(axis=tuple(range(1, target.ndim))).sum())
        count += len(images)
    return {"dataset": dataset, "split": split, "examples": count,
            "mean_squared_error": squared / count, "binary_crossentropy": crossentropy / count}


def report(metrics: dict) -> str:
    """The metrics as text: headline numbers, the per-class table and the confusion matrix."""
    crops = " (ten crops each, outputs averaged)" if metrics.get("crops") == 10 else ""
    lines = [f"{metrics['dataset']} / {metrics['split']}: {metrics['examples']:,} examples"
             f"{crops}"]
    if metrics.get("format", "saved_model") != "saved_model":
        lines.append(f"{'format':<20} {metrics['format']}")
    for key in ("accuracy", "saved_model_accuracy", "accuracy_change", "top5_accuracy", "loss",
                "macro_precision", "macro_recall", "macro_f1", "roc_auc", "mean_squared_error",
                "binary_crossentropy"):
        if key in metrics:
            value = metrics[key]
            lines.append(f"{key:<20} " + ("n/a" if value is None else f"{value:.4f}"))
    if "per_class" in metrics:
        per_class = metrics["per_class"]
        label_width = max(18, *(len(name) for name in per_class)) + 3
        lines.append(f"{'per class:':<{label_width}}" + "".join(
            f"{heading:>{width}}" for heading, width in PER_CLASS_COLUMNS))
        for name, row in per_class.items():
            shown = ["n/a" if row[key] is None else f"{row[key]:.4f}"
                     for key in ("recall", "precision", "f1")] + [f"{row['support']:,}"]
            lines.append(f"  {name:<{label_width - 2}}" + "".join(
                f"{value:>{width}}" for value, (_, width) in zip(shown, PER_CLASS_COLUMNS)))
        confusion = metrics["confusion_matrix"]
        names = confusion["labels"]
        width = max(5, *(len(str(v)) for row in confusion["rows_true_columns_predicted"]
                         for v in row)) + 1
        label_width = max(len(n) for n in names) + 2
        lines.append("confusion matrix (rows: true class, columns: predicted):")
        lines.append(" " * label_width + "".join(f"{n[:width - 1]:>{width}}" for n in names))
        for name, row in zip(names, confusion["rows_true_columns_predicted"]):
            lines.append(f"{name:<{label_width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
