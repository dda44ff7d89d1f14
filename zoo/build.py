"""Spec -> keras.Model (functional API). Keras's own errors come back located."""

from __future__ import annotations

import sys

import keras

from zoo.graph import Graph, LayerNode, expand
from zoo.names import (Refused, argument_object, check_arguments, check_dtype, first_lines,
                       missing_arguments)
from zoo.source import SpecError
from zoo.spec import as_spec

FRAMES_PER_LAYER = 2  # Python frames Keras's recursive graph walks take per layer (allow_depth)


def build_model(spec, overrides=()) -> keras.Model:
    """A Keras functional model from a spec file's path, YAML text or a loaded Spec."""
    spec = as_spec(spec, overrides)
    return model_from_graph(expand(spec), spec.name)


def model_from_graph(graph: Graph, name: str) -> keras.Model:
    allow_depth(len(graph.layers))
    tensors = {node.name: keras.Input(shape=node.shape, dtype=node.dtype, name=node.name)
               for node in graph.inputs}
    inputs = list(tensors.values())
    # Under a mixed precision policy the layers that produce the model's outputs compute in
    # float32, as Keras's mixed precision guide advises: a softmax in bfloat16 keeps about
    # 3 significant digits, too few for the losses and gradients of confident predictions.
    mixed = keras.mixed_precision.global_policy().name.startswith("mixed_")
    for node in graph.layers:
        layer = _construct(node, float32=mixed and node.name in graph.outputs)
        arguments = [tensors[name] for name in node.inputs]
        try:
            tensors[node.name] = layer(arguments[0] if len(arguments) == 1 else arguments)
        except Exception as exc:  # any failure here is caused by this node's arguments or inputs
            shapes = ", ".join(str(tuple(tensors[n].shape)) for n in node.inputs)
            raise _located(node, f"Keras could not apply it to its input(s) of shape {shapes}: "
                                 f"{first_lines(exc)}") from None
    outputs = [tensors[output] for output in graph.outputs]
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs,
                       outputs[0] if len(outputs) == 1 else outputs, name=name)


def allow_depth(layers: int) -> None:
    """Let Python recurse as deep as Keras needs for a graph of `layers` layers.

    Keras maps a functional graph recursively (keras/src/ops/function.py, `_build_map_helper`:
    a Python frame per layer along the longest path), so a chain of 1,000 layers, or ResNet-1202
    (4,000 layers), passed Python's default limit of 1,000 frames. Since Python 3.11 such calls
    do not use the C stack, so a higher limit is safe. It stays raised: saving and exporting
    the model walk the same graph later."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), FRAMES_PER_LAYER * layers + 1_000))


def _construct(node: LayerNode, float32: bool = False) -> keras.layers.Layer:
    """The node's layer; `float32`: computing in float32 unless the spec names a dtype."""
    try:
        check_arguments(node.layer_class, node.kwargs)
        missing = missing_arguments(node.layer_class, node.kwargs)
        if missing:
            raise Refused(f"{node.layer_class.__name__} needs the argument '{missing[0]}'")
        if "dtype" in node.kwargs:
            check_dtype(node.kwargs["dtype"], policies=True)
        kwargs = {key: argument_object(key, value) for key, value in node.kwargs.items()}
    except Refused as refused:
        raise _located(node, str(refused), refused.argument) from None
    if float32:
        kwargs.setdefault("dtype", "float32")
    try:
        return node.layer_class(**kwargs, name=node.name)
    except Exception as exc:  # Keras validates arguments with TypeError, ValueError and more
        message = first_lines(exc)
        named = [key for key in node.kwargs if f"`{key}`" in message or f"{key}=" in message]
        raise _located(node, f"Keras refused the arguments of {node.layer_class.__name__}: "
                             f"{message}", named[0] if len(named) == 1 else None) from None


def _located(node: LayerNode, message: str, argument: str | None = None) -> SpecError:
    """An error about a layer node, or about one of its arguments."""
    location, path = node.argument_locations.get(argument, (node.location, node.path))
    return SpecError(location, path, f"layer '{node.name}': {message}")
