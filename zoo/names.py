"""One resolver for every Keras name a spec writes, and the check of its arguments.

A spec names layers, optimizers, losses, learning-rate schedules, initializers,
regularizers, constraints and activations in any spelling (`conv2d`, `Conv2D`,
`conv_2d`; `sgd`, `SGD`). Each kind is looked up here, the same way, with the
closest names when a name is unknown; the keyword arguments given are checked
against the constructor's signature (unknown names, and values of the wrong type
where the signature's default or a well-known argument says what the type is),
so a typo fails at `--dry-run` instead of in the middle of a run.

Problems are raised as `Refused` (a message, and the argument at fault); the
caller knows where the name was written and adds the location.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass

import keras

from zoo.layers import FASTER, ZOO_LAYERS
from zoo.source import describe, normalize_name, suggest


class Refused(ValueError):
    """What is wrong with a Keras name or its arguments; `argument` is the keyword argument at
    fault (None: the name itself), `unknown` whether that argument is one the object does not
    take. The caller adds the location."""

    def __init__(self, message: str, argument: str | None = None, unknown: bool = False):
        super().__init__(message)
        self.argument, self.unknown = argument, unknown


@dataclass(frozen=True)
class Kind:
    word: str  # how messages name one: "optimizer"
    module: str  # the attribute path under keras: "optimizers.schedules"
    base: str  # the class every one derives from; its own arguments end the signature walk
    refused: tuple = ()  # names in the module that are no usable object of this kind


KINDS = {
    "optimizer": Kind("optimizer", "optimizers", "BaseOptimizer",
                      ("Optimizer", "LossScaleOptimizer", "MultiOptimizer", "OptimizerMap")),
    "loss": Kind("loss", "losses", "Loss", ("Loss",)),
    "schedule": Kind("learning-rate schedule", "optimizers.schedules", "LearningRateSchedule",
                     ("LearningRateSchedule",)),
    "initializer": Kind("initializer", "initializers", "Initializer", ("Initializer",)),
    "regularizer": Kind("regularizer", "regularizers", "Regularizer", ("Regularizer",)),
    "constraint": Kind("constraint", "constraints", "Constraint", ("Constraint",)),
}
# Arguments that take a Keras object, by the end of their name: `kernel_initializer: he_normal`
# or `kernel_initializer: {variance_scaling: {scale: 2.0}}`; the wrappers' inner layer the same
# way: `bidirectional: {layer: {lstm: {units: 64}}}`, `backward_layer: ...`.
OBJECT_ARGUMENTS = {"_initializer": "initializer", "_regularizer": "regularizer",
                    "_constraint": "constraint", "layer": "layer"}
# Layers a spec cannot name: Lambda and the wrappers of foreign code would run code chosen by
# the file; the rest need Python objects (cells, a list of layers) as arguments.
NOT_NAMEABLE = {"Lambda", "TFSMLayer", "FlaxLayer", "JaxLayer", "TorchModuleWrapper", "Layer",
                "InputLayer", "Wrapper", "RNN", "StackedRNNCells", "Pipeline"}
# Keyword arguments every layer takes through **kwargs (keras.layers.Layer.__init__).
BASE_LAYER_ARGUMENTS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights"}


@dataclass(frozen=True)
class Registry:
    """The objects of one kind: each under its normalized name, and how users spell it."""

    objects: dict  # normalized name -> object
    spelled: dict  # normalized name -> the spelling shown in suggestions

    def find(self, name: str):
        return self.objects.get(normalize_name(name))

    def suggestions(self, name: str) -> str:
        close = suggest(normalize_name(name), self.spelled)
        for normalized, spelled in self.spelled.items():
            close = close.replace(f"'{normalized}'", f"'{spelled}'")
        return close

    @property
    def names(self) -> list:
        return sorted(self.spelled.values())


def snake(name: str) -> str:
    """Conv2D -> conv2d, BatchNormalization -> batch_normalization: Keras's own layer names."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@functools.cache
def registry(kind: str) -> Registry:
    if kind == "layer":
        return _layer_registry()
    if kind == "activation":
        names = [name for name in dir(keras.activations) if not name.startswith("_")
                 and name not in ("get", "serialize", "deserialize")]
        return Registry({normalize_name(n): getattr(keras.activations, n) for n in names},
                        {normalize_name(n): n for n in names})
    spec = KINDS[kind]
    module = keras
    for part in spec.module.split("."):
        module = getattr(module, part)
    objects, spelled = {}, {}
    for name in dir(module):
        value = getattr(module, name)
        if name[0].isupper() and isinstance(value, type) and name not in spec.refused:
            objects[normalize_name(name)] = value
            spelled.setdefault(normalize_name(name), name)
    for name in dir(module):  # the lowercase aliases (he_normal, mean_squared_error) read best
        if name[0].islower() and normalize_name(name) in objects:
            spelled[normalize_name(name)] = name
    return Registry(objects, spelled)


def _layer_registry() -> Registry:
    objects, spelled = {}, {}
    for attribute in dir(keras.layers):
        cls = getattr(keras.layers, attribute)
        if isinstance(cls, type) and issubclass(cls, keras.layers.Layer) \
                and attribute not in NOT_NAMEABLE:
            objects[normalize_name(attribute)] = FASTER.get(cls, cls)  # aliases: Convolution2D
    for cls in ZOO_LAYERS:
        objects[normalize_name(cls.__name__)] = cls
    for normalized, cls in objects.items():
        spelled[normalized] = snake(cls.__name__)
    return Registry(objects, spelled)


def resolve(kind: str, name: str):
    """The Keras object of `kind` a spec names, in any spelling; Refused if there is none."""
    found = registry(kind).find(name) if isinstance(name, str) else None
    if found is None:
        reason = refused_layer_reason(name) if kind == "layer" else None
        raise Refused(reason or f"unknown {word(kind)} '{name}'"
                                f"{registry(kind).suggestions(str(name))}")
    return found


def word(kind: str) -> str:
    """How messages name one object of a kind: 'optimizer', 'learning-rate schedule'."""
    return KINDS[kind].word if kind in KINDS else kind


def refused_layer_reason(name: str) -> str | None:
    """Why a real Keras layer cannot be named in a spec, or None."""
    for refused in NOT_NAMEABLE:
        if normalize_name(refused) == normalize_name(str(name)):
            if refused == "Lambda":
                return ("Lambda layers are refused: they would run code written in the file, "
                        "and a spec never executes anything")
            return (f"'{refused}' cannot be declared in a spec: it wraps code or takes Python "
                    "objects as arguments")
    return None


# --- arguments -------------------------------------------------------------------------------


@functools.cache
def signature(cls: type) -> dict | None:
    """Keyword argument -> its default (inspect.Parameter.empty when required) that the
    class's constructors take, walking up to the class that ends the walk; None when a
    constructor passes unknown arguments on to something this cannot see. Only the class's
    own constructor makes an argument required: a parent's required ones (Conv2D's parent
    needs `rank`) are given by the class itself."""
    bases = {keras.layers.Layer} | {_base_class(kind) for kind in KINDS}
    accepted = {name: None for name in BASE_LAYER_ARGUMENTS} \
        if issubclass(cls, keras.layers.Layer) else {}
    own = True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY) \
                    and parameter.name != "self":
                required = parameter.default is inspect.Parameter.empty
                accepted.setdefault(parameter.name, None if required and not own
                                    else parameter.default)
        own = False
        takes_more = any(p.kind == p.VAR_KEYWORD for p in parameters)
        if klass in bases or not takes_more:
            return accepted
    return None


@functools.cache
def _base_class(kind: str) -> type:
    import keras.src.optimizers.base_optimizer as base_optimizer

    if kind == "optimizer":
        return base_optimizer.BaseOptimizer
    module = keras
    for part in KINDS[kind].module.split("."):
        module = getattr(module, part)
    return getattr(module, KINDS[kind].base)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _sizes(value) -> bool:
    """A size per axis: one positive integer for all, or a list of them."""
    return _positive_integer(value) or (isinstance(value, list) and bool(value)
                                        and all(map(_positive_integer, value)))


# Required arguments with no default to read their type from: what each must be.
WELL_KNOWN = {"filters": (_positive_integer, "a positive integer"),
              "units": (_positive_integer, "a positive integer"),
              "kernel_size": (_sizes, "a positive integer or a list of them, one per axis"),
              "rate": (lambda v: _is_number(v) and 0 <= v < 1, "a number from 0 to below 1")}


# Arguments Keras 2 took under another name, which tutorials still use.
RENAMED = {"lr": "learning_rate", "decay": "weight_decay", "init": "kernel_initializer",
           "nb_filter": "filters", "output_dim": "units", "W_regularizer": "kernel_regularizer"}


def _expected_type(name: str, default):
    """(test, words) for the values an argument takes, or None when nothing says."""
    if name in WELL_KNOWN:
        return WELL_KNOWN[name]
    if isinstance(default, bool):
        return (lambda value: isinstance(value, bool)), "true or false"
    if _is_number(default):
        return _is_number, "a number"
    return None


def check_arguments(cls: type, kwargs: dict) -> None:
    """Refused for the first keyword argument `cls` does not take, or takes of another type,
    and for a required argument that is missing."""
    accepted = signature(cls)
    if accepted is None:
        return
    for name, value in kwargs.items():
        if name not in accepted:
            close = (f" (Keras 3 calls it '{RENAMED[name]}')" if RENAMED.get(name) in accepted
                     else suggest(name, accepted))
            raise Refused(f"{cls.__name__} has no argument '{name}'{close}", name, unknown=True)
        expected = _expected_type(name, accepted[name])
        if expected and not expected[0](value):
            raise Refused(f"{cls.__name__}'s argument '{name}' takes {expected[1]}, received "
                          f"{describe(value)}", name)


def missing_arguments(cls: type, kwargs: dict, supplied=()) -> list:
    """The required arguments of `cls` that neither `kwargs` nor `supplied` give."""
    accepted = signature(cls) or {}
    return [name for name, default in accepted.items() if default is inspect.Parameter.empty
            and name not in kwargs and name not in supplied]


def object_kind(argument: str) -> str | None:
    """The kind of Keras object an argument takes by its name (kernel_initializer:
    initializer, activation: activation), or None."""
    if argument.endswith("activation"):
        return "activation"
    return next((kind for suffix, kind in OBJECT_ARGUMENTS.items()
                 if argument.endswith(suffix)), None)


def argument_object(argument: str, value):
    """A layer argument's value as Keras takes it: a name or `{name: {options}}` of an
    initializer, regularizer, constraint, activation or (a wrapper's) layer is looked up (and
    built, its own arguments checked); any other value is returned as it is."""
    kind = object_kind(argument)
    if kind is None or value is None:
        return value
    try:
        if isinstance(value, str):
            return resolve(kind, value) if kind == "activation" else construct(kind, value, {})
        if isinstance(value, dict) and len(value) == 1 and "class_name" not in value:
            (name, options), = value.items()
            return construct(kind, name, dict(options or {}))
    except Refused as refused:
        raise Refused(str(refused), argument) from None  # located at the layer's argument
    return value  # a number (an l2 factor) or Keras's own {class_name, config}


def checked_class(kind: str, name: str, kwargs: dict, supplied=()) -> type:
    """The class `{name: kwargs}` names, after checking the arguments it is given: none
    unknown, none of the wrong type, none required missing. `supplied`: arguments the zoo
    gives itself (a schedule's initial rate), not required of the spec."""
    cls = resolve(kind, name)
    check_arguments(cls, kwargs)
    missing = missing_arguments(cls, kwargs, supplied)
    if missing:
        raise Refused(f"{cls.__name__} needs the argument '{missing[0]}'")
    return cls


def construct(kind: str, name: str, kwargs: dict, supplied: dict | None = None):
    """The object `{name: kwargs}` names, its arguments checked first; Refused, naming the
    argument where Keras says which, if the object cannot be made. `supplied`: arguments the
    zoo gives itself (a schedule's initial rate)."""
    cls = checked_class(kind, name, kwargs, supplied or {})
    try:
        return cls(**kwargs, **(supplied or {}))
    except Exception as exc:  # Keras checks values with TypeError, ValueError and more
        message = first_lines(exc)
        named = [key for key in kwargs if f"`{key}`" in message or f"{key}=" in message
                 or f"'{key}'" in message]
        raise Refused(message, named[0] if len(named) == 1 else None) from None


def check_dtype(value, policies: bool = False) -> None:
    """Refused unless `value` names a Keras dtype (float32, uint8, ...) or, with `policies`,
    a dtype policy (mixed_bfloat16)."""
    from keras.src.backend.common.dtypes import ALLOWED_DTYPES

    known = list(ALLOWED_DTYPES) + (["mixed_float16", "mixed_bfloat16"] if policies else [])
    if value not in known:
        shown = f"'{value}'" if isinstance(value, str) else describe(value)
        raise Refused(f"unknown dtype {shown}{suggest(value, known)}; the dtypes: "
                      f"{', '.join(known)}", "dtype")


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# What Keras and TensorFlow wrap around the reason: the call, the arguments, the kernel
_WRAPPING = (re.compile(r"\{\{function_node [^}]*\}\}\s*"), re.compile(r"\s*\[Op:\w+\].*"),
             re.compile(r"Exception encountered when calling [\w.]+\(\)\.\s*"))


def first_lines(exc: Exception, limit: int = 3) -> str:
    """A Keras error's first lines as one line: the reason, without the terminal's colour
    codes and without what Keras and TensorFlow wrap around it."""
    text = _TERMINAL_CODES.sub("", str(exc))
    for wrapping in _WRAPPING:
        text = wrapping.sub("", text)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()
             and not line.strip().startswith(("Arguments received by", "•"))]
    return " ".join(lines[:limit]) or type(exc).__name__


def layer_class(name: str) -> type | None:
    """The layer class a spec names: `conv2d`, `Conv2D` and `conv_2d` all mean Conv2D."""
    return registry("layer").find(name) if isinstance(name, str) else None


def default_layer_name(cls: type) -> str:
    """Keras's own default name for a layer class: Conv2D -> conv2d."""
    return snake(cls.__name__)
