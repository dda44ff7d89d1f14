"""What `zoo summary` (and `train.py --dry-run`) prints: the layer table, parameter counts,
multiply-accumulates, and the check of the spec's `expect`."""

from __future__ import annotations

import math

import keras
import yaml

from zoo.macs import format_macs, layer_macs, model_macs
from zoo.source import plain
from zoo.spec import Spec


def count_params(weights) -> int:
    return sum(math.prod(weight.shape) for weight in weights)


def parameter_counts(model: keras.Model) -> dict:
    trainable = count_params(model.trainable_weights)
    total = count_params(model.weights)
    return {"total_params": total, "trainable_params": trainable,
            "non_trainable_params": total - trainable}


def output_shapes(model: keras.Model) -> list:
    """Each output's shape without the batch axis, as lists (as written in `expect`)."""
    return [list(output.shape[1:]) for output in model.outputs]


def check_expectations(spec: Spec, model: keras.Model) -> list[str]:
    """One line per mismatch between the spec's `expect` section and the built model.

    `output_shape` is the shape of the first output, without the batch axis.
    """
    actual = {**parameter_counts(model), "output_shape": output_shapes(model)[0]}
    problems = []
    for key, expected in spec.expect.items():
        if expected is None:
            continue
        wanted = list(expected) if key == "output_shape" else expected
        if actual[key] != wanted:
            location, path = spec.expect.where(key)
            problems.append(f"{location}: {path}: expected {_format(wanted)}, "
                            f"the model has {_format(actual[key])}")
    return problems


def _format(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _shape(tensor_or_tensors) -> str:
    if isinstance(tensor_or_tensors, (list, tuple)):
        return ", ".join(_shape(t) for t in tensor_or_tensors)
    return str(tuple(tensor_or_tensors.shape[1:]))


def layer_table(model: keras.Model) -> str:
    """Name, type, output shape (batch axis left out), parameters and multiply-accumulates of
    every layer, then the totals."""
    rows = [("Layer", "Type", "Output shape", "Params", "MACs")]
    for layer in model.layers:
        macs = layer_macs(layer)
        rows.append((layer.name, type(layer).__name__, _shape(layer.output),
                     f"{count_params(layer.weights):,}", "?" if macs is None else f"{macs:,}"))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = [f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {shape:<{widths[2]}}  "
             f"{params:>{widths[3]}}  {macs:>{widths[4]}}"
             for name, kind, shape, params, macs in rows]
    lines.insert(1, "-" * len(lines[0]))
    counts = parameter_counts(model)
    macs = model_macs(model)
    lines.append("-" * len(lines[0]))
    lines.append(f"Total params: {counts['total_params']:,}   "
                 f"Trainable: {counts['trainable_params']:,}   "
                 f"Non-trainable: {counts['non_trainable_params']:,}")
    lines.append("Multiply-accumulates per example: " + (
        "n/a (an input size is not fixed)" if macs is None else
        f"{macs:,} ({format_macs(macs)}; convolutions, dense and recurrent layers)"))
    return "\n".join(lines)


def settings(spec: Spec) -> str:
    """The data, training, pretraining and export settings the run will use, the defaults
    filled in (a key the spec leaves out shows its default)."""
    lines = []
    for section in ("data", "train", "pretrain", "init", "export"):
        values = plain(getattr(spec, section))
        if values:
            lines.append(f"{section}: " + ", ".join(f"{key} {_flow(value)}"
                                                    for key, value in values.items()
                                                    if value is not None))
    return "\n".join(lines)


def _flow(value) -> str:
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return str(value).lower() if isinstance(value, bool) else str(value)
