"""Spec -> keras.Model (functional API). Keras's own errors come back located."""

from __future__ import annotations

import inspect

import keras

from zoo.graph import Graph, LayerNode, expand
from zoo.source import SpecError, suggest
from zoo.spec import Spec, load_spec

# Keyword arguments every layer takes through **kwargs (keras.layers.Layer.__init__).
_BASE_LAYER_ARGS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights"}
_ACTIVATIONS = sorted(name for name in dir(keras.activations) if not name.startswith("_")
                      and name not in ("get", "serialize", "deserialize"))
# Arguments that take a Keras object, written in a spec like optimizers are:
# `kernel_initializer: {variance_scaling: {scale: 16.0}}`.
_OBJECT_ARGUMENTS = {"_initializer": keras.initializers, "_regularizer": keras.regularizers,
                     "_constraint": keras.constraints}


def build_model(spec_or_path, overrides=()) -> keras.Model:
    """A Keras functional model from a Spec or a spec file path."""
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load_spec(spec_or_path, overrides)
    return model_from_graph(expand(spec), spec.name)


def model_from_graph(graph: Graph, name: str) -> keras.Model:
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
                                 f"{_first_lines(exc)}") from None
    outputs = [tensors[output] for output in graph.outputs]
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs,
                       outputs[0] if len(outputs) == 1 else outputs, name=name)


def _construct(node: LayerNode, float32: bool = False) -> keras.layers.Layer:
    """The node's layer; `float32`: computing in float32 unless the spec names a dtype."""
    accepted = _accepted_args(node.layer_class)
    for key, value in node.kwargs.items():
        if accepted is not None and key not in accepted:
            raise _located(node, f"{node.layer_class.__name__} has no argument '{key}'"
                                 f"{suggest(key, accepted)}", key)
        if key.endswith("activation") and isinstance(value, str) and value not in _ACTIVATIONS:
            raise _located(node, f"unknown activation '{value}'{suggest(value, _ACTIVATIONS)}",
                           key)
    kwargs = {key: _keras_object(node, key, value) for key, value in node.kwargs.items()}
    if float32:
        kwargs.setdefault("dtype", "float32")
    try:
        return node.layer_class(**kwargs, name=node.name)
    except Exception as exc:  # Keras validates arguments with TypeError, ValueError and more
        message = _first_lines(exc)
        named = [key for key in node.kwargs if f"`{key}`" in message or f"{key}=" in message]
        raise _located(node, f"Keras refused the arguments of {node.layer_class.__name__}: "
                             f"{message}", named[0] if len(named) == 1 else None) from None


def _keras_object(node: LayerNode, key: str, value):
    """`{name: {options}}` for an initializer, regularizer or constraint -> that object."""
    suffix = next((suffix for suffix in _OBJECT_ARGUMENTS if key.endswith(suffix)), None)
    if suffix is None or not isinstance(value, dict) or len(value) != 1 or "class_name" in value:
        return value  # a name, a number or Keras's own {class_name, config} form
    [(name, options)] = value.items()
    module = _OBJECT_ARGUMENTS[suffix]
    names = [known for known in dir(module) if known[0].islower() and
             known not in ("get", "serialize", "deserialize")]
    if name not in names:
        raise _located(node, f"unknown {suffix[1:]} '{name}'{suggest(name, names)}", key)
    try:
        return getattr(module, name)(**(options or {}))
    except Exception as exc:  # Keras checks the options with TypeError and ValueError
        raise _located(node, _first_lines(exc), key) from None


def _accepted_args(cls: type) -> set | None:
    """Keyword arguments the layer's constructors name, or None if it takes any."""
    accepted = set(_BASE_LAYER_ARGS)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                accepted.add(parameter.name)
        if klass is keras.layers.Layer:
            return accepted - {"self"}
    return None


def _located(node: LayerNode, message: str, argument: str | None = None) -> SpecError:
    """An error about a layer node, or about one of its arguments."""
    location, path = node.argument_locations.get(argument, (node.location, node.path))
    return SpecError(location, path, f"layer '{node.name}': {message}")


def _first_lines(exc: Exception, limit: int = 3) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:limit]) or type(exc).__name__
