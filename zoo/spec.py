"""A spec file -> a validated `Spec`: `extends` resolved, `--set` applied, every key checked.

The model section is only checked for shape here (its graph is checked while
it is expanded, in `graph.py`); the data and train sections are checked
completely, so a typo in a hyper-parameter fails before any work starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from zoo.source import (Location, Mapping, Sequence, SpecError, describe, load_yaml_file,
                        normalize_name, parse_yaml, repath, suggest)

MAX_EXTENDS_DEPTH = 16


@dataclass
class Spec:
    """A loaded spec. Sections are located mappings (see `zoo.source`)."""

    name: str
    file: str
    model: Mapping
    data: Mapping = field(default_factory=Mapping)
    train: Mapping = field(default_factory=Mapping)
    export: Mapping = field(default_factory=Mapping)
    pretrain: Mapping = field(default_factory=Mapping)
    expect: Mapping = field(default_factory=Mapping)
    description: str = ""
    family: str = ""  # what `zoo list` groups it under, e.g. ResNet
    document: Mapping = field(default_factory=Mapping)  # the whole merged spec, for the export


# --- value checks: each returns the value or raises a located SpecError ------------------


def check_mapping(value, container, key, what="a mapping") -> Mapping:
    if not isinstance(value, Mapping):
        raise container.error(key, f"expected {what}, received {describe(value)}")
    return value


def check_positive_int(value, container, key, limit=None):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise container.error(key, f"expected a positive integer, received {describe(value)}")
    if limit is not None and value > limit:
        raise container.error(key, f"expected at most {limit:,}, received {value:,}")
    return value


def check_int(value, container, key):
    if isinstance(value, bool) or not isinstance(value, int):
        raise container.error(key, f"expected an integer, received {describe(value)}")
    return value


def check_non_negative_number(value, container, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise container.error(key, f"expected a number >= 0, received {describe(value)}")
    return value


def check_string(value, container, key):
    if not isinstance(value, str) or not value:
        raise container.error(key, f"expected a non-empty string, received {describe(value)}")
    return value


def check_string_list(value, container, key):
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise container.error(key, f"expected a list of names, received {describe(value)}")
    return value


def check_keys(mapping: Mapping, allowed, required=()):
    """Unknown keys are errors (with the closest valid ones); required keys must be there."""
    for key in mapping:
        if key not in allowed:
            raise mapping.key_error(key, f"unknown key '{key}'{suggest(key, allowed)}; "
                                         f"valid keys here: {', '.join(allowed)}")
    for key in required:
        if mapping.get(key) is None:
            what = "this mapping" if mapping.path else "a spec"
            raise SpecError(mapping.location, mapping.path, f"{what} needs a '{key}' entry")


def split_call(value, container, key, what: str):
    """`name` or `{name: {kwargs}}` -> (name, kwargs Mapping): how Keras objects are named."""
    if isinstance(value, str) and value:
        return value, Mapping(location=container.where(key)[0], path=container.child_path(key))
    if isinstance(value, Mapping) and len(value) == 1:
        (name, kwargs), = value.items()
        if kwargs is None:
            kwargs = Mapping(location=value.location, path=value.child_path(name))
        check_mapping(kwargs, value, name, f"the keyword arguments of '{name}' as a mapping")
        return name, kwargs
    raise container.error(key, f"expected {what}: a name, or a mapping of one name to its "
                               f"keyword arguments, received {describe(value)}")


# --- sections ---------------------------------------------------------------------------------

TOP_LEVEL_KEYS = ("extends", "description", "family", "model", "data", "pretrain", "train",
                  "export", "expect")
MODEL_KEYS = ("inputs", "layers", "outputs", "blocks", "vars", "defaults")
DATA_KEYS = ("dataset", "train_split", "eval_split", "validation_split", "preprocess",
             "augment", "shuffle_buffer")
PREPROCESS_KEYS = ("rescale", "mean", "std", "resize")
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area")
AUGMENT_KEYS = ("flip", "pad_crop")
FLIPS = ("horizontal", "vertical", "both")
TRAIN_KEYS = ("batch_size", "epochs", "steps_per_epoch", "optimizer", "schedule", "loss",
              "metrics", "weight_decay", "seed", "early_stopping", "target", "precision",
              "xla", "threads")
# auto: the device's fastest (zoo/devices.py); the others are Keras dtype policies.
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
METRICS = ("accuracy", "top5")
TARGETS = ("label", "input")  # input: the model learns to reproduce its input (autoencoders)
EXPORT_KEYS = ("outputs",)
PRETRAIN_KEYS = ("layers", "epochs", "batch_size", "optimizer", "loss", "noise", "tied",
                 "freeze_lower", "unlabeled", "decoder_activation", "seed", "head")
NOISE_KEYS = ("masking", "gaussian")
HEAD_KEYS = ("epochs", "batch_size", "optimizer", "schedule")
EARLY_STOPPING_KEYS = ("monitor", "patience")
EXPECT_KEYS = ("total_params", "trainable_params", "output_shape")
# Learning-rate schedules expressed in epochs, which Keras lacks; Keras's own
# LearningRateSchedule classes (in steps) are accepted by name as well.
EPOCH_SCHEDULES = ("step", "plateau")
# The model graph's own keys (checked while it is expanded, in graph.py).
RESERVED_ARGS = ("name", "inputs", "when")  # arguments of any node that belong to the zoo
REPEAT_KEYS = ("block", "times", "name", "start", "with", "each", "at") + RESERVED_ARGS
BLOCK_KEYS = ("params", "inputs", "layers", "output", "description")
INPUT_KEYS = ("shape", "dtype")


def check_choice(value, container, key, choices):
    if value not in choices:
        spelled = [str(choice).lower() if isinstance(choice, bool) else choice
                   for choice in choices]  # as YAML writes them
        raise container.error(key, f"expected one of {', '.join(spelled)}, received "
                                   f"{describe(value)}{suggest(value, spelled)}")
    return value


def check_number_list(value, container, key):
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise container.error(key, f"expected a list of numbers (one per channel), received "
                                   f"{describe(value)}")
    return value


def check_bool(value, container, key):
    if not isinstance(value, bool):
        raise container.error(key, f"expected true or false, received {describe(value)}")
    return value


def check_pad(value, container, key):
    return check_positive_int(value, container, key, limit=MAX_PAD)


def check_threads(value, container, key):
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                           and 1 <= value <= MAX_THREADS):
        return value
    raise container.error(key, f"expected auto or a number of threads from 1 to {MAX_THREADS:,}, "
                               f"received {describe(value)}")


MAX_PAD = 1000
MAX_THREADS = 1024
# How each plain value is checked, section by section (null always means "the default").
# `zoo schema` turns these tables into the JSON Schema, so a key added here is in both.
VALUE_CHECKS = {
    "data": {"dataset": check_string, "train_split": check_string, "eval_split": check_string,
             "validation_split": check_string, "shuffle_buffer": check_positive_int},
    "data.preprocess": {"rescale": check_non_negative_number, "mean": check_number_list,
                        "std": check_number_list},
    "data.augment": {"pad_crop": check_pad},
    "train": {"batch_size": check_positive_int, "epochs": check_positive_int,
              "steps_per_epoch": check_positive_int, "weight_decay": check_non_negative_number,
              "seed": check_int, "metrics": check_string_list, "threads": check_threads},
    "train.early_stopping": {"patience": check_positive_int, "monitor": check_string},
    "pretrain": {"layers": check_string_list, "epochs": check_positive_int,
                 "batch_size": check_positive_int, "tied": check_bool,
                 "freeze_lower": check_bool, "unlabeled": check_string,
                 "decoder_activation": check_string, "seed": check_int},
    "pretrain.noise": {"masking": check_non_negative_number,
                       "gaussian": check_non_negative_number},
    "expect": {"total_params": check_positive_int, "trainable_params": check_positive_int},
}
# Values that must be one of a few names.
CHOICES = {"data.preprocess": {"resize": RESIZE_METHODS}, "data.augment": {"flip": FLIPS},
           "train": {"target": TARGETS, "precision": PRECISIONS, "xla": ("auto", True, False)}}


def check_values(section: Mapping, table: str) -> None:
    """Check the plain values of a section by its entries in VALUE_CHECKS and CHOICES."""
    for key, check in VALUE_CHECKS.get(table, {}).items():
        if section.get(key) is not None:
            check(section[key], section, key)
    for key, choices in CHOICES.get(table, {}).items():
        if section.get(key) is not None:
            check_choice(section[key], section, key, choices)


def _check_data(data: Mapping):
    check_keys(data, DATA_KEYS)
    check_values(data, "data")
    for key, keys in (("preprocess", PREPROCESS_KEYS), ("augment", AUGMENT_KEYS)):
        if data.get(key) is not None:
            check_keys(check_mapping(data[key], data, key), keys)
            check_values(data[key], f"data.{key}")


def _check_pretrain(pretrain: Mapping):
    if not pretrain:
        return
    check_keys(pretrain, PRETRAIN_KEYS, required=("layers",))
    check_values(pretrain, "pretrain")
    if not pretrain["layers"]:
        raise pretrain.error("layers", "expected at least one layer to pretrain")
    if pretrain.get("noise") is not None:
        noise = check_mapping(pretrain["noise"], pretrain, "noise",
                              "a mapping such as {masking: 0.2} or {gaussian: 0.1}")
        check_keys(noise, NOISE_KEYS)
        for key in noise:
            if noise[key] is None:  # `noise: {masking: }` is a mistake, not a default
                check_non_negative_number(noise[key], noise, key)
        check_values(noise, "pretrain.noise")
    if pretrain.get("head") is not None:
        check_keys(check_mapping(pretrain["head"], pretrain, "head"), HEAD_KEYS)
        _check_train(pretrain["head"])
    _check_train(Mapping({k: pretrain[k] for k in ("optimizer", "loss") if k in pretrain},
                         location=pretrain.location, path=pretrain.path))


def _check_export(export: Mapping):
    check_keys(export, EXPORT_KEYS)
    if export.get("outputs") is not None:
        outputs = check_mapping(export["outputs"], export, "outputs",
                                "a mapping of output names to node names")
        for key, node in outputs.items():
            check_string(node, outputs, key)


def _check_named(value, container, key, what, known):
    """A `name` / `{name: kwargs}` value whose name must be one of `known` (any case)."""
    name, _ = split_call(value, container, key, what)
    by_normalized = {normalize_name(k): k for k in known}
    if normalize_name(name) not in by_normalized:
        location, path = container.where(key)
        if isinstance(value, Mapping):
            location = value.key_locations[name]
        close = suggest(normalize_name(name), by_normalized)
        for normalized, spelled in by_normalized.items():
            close = close.replace(f"'{normalized}'", f"'{spelled}'")
        raise SpecError(location, path, f"unknown {what} '{name}'{close}")


def _check_train(train: Mapping):
    import keras  # deferred: importing keras takes seconds and only this check needs it here

    check_keys(train, TRAIN_KEYS)
    check_values(train, "train")
    for index, metric in enumerate(train.get("metrics") or ()):
        check_choice(metric, train["metrics"], index, METRICS)
    if train.get("optimizer") is not None:
        _check_named(train["optimizer"], train, "optimizer", "optimizer",
                     [n for n in dir(keras.optimizers) if n[0].isupper()
                      and n not in ("Optimizer", "LossScaleOptimizer", "MultiOptimizer")])
    if train.get("loss") is not None:
        _check_named(train["loss"], train, "loss", "loss",
                     [n for n in dir(keras.losses) if not n.startswith("_")
                      and n not in ("Loss", "get", "serialize", "deserialize")])
    if train.get("schedule") is not None:
        _check_named(train["schedule"], train, "schedule", "learning-rate schedule",
                     EPOCH_SCHEDULES + tuple(n for n in dir(keras.optimizers.schedules)
                                             if n[0].isupper() and n != "LearningRateSchedule"))
    if train.get("early_stopping") is not None:
        stopping = check_mapping(train["early_stopping"], train, "early_stopping")
        check_keys(stopping, EARLY_STOPPING_KEYS)
        check_values(stopping, "train.early_stopping")


def _check_expect(expect: Mapping):
    check_keys(expect, EXPECT_KEYS)
    check_values(expect, "expect")
    if expect.get("output_shape") is not None:
        shape = expect["output_shape"]
        if not isinstance(shape, Sequence):
            raise expect.error("output_shape", f"expected a list such as [1000], received "
                                               f"{describe(shape)}")


def _check_model(model: Mapping):
    check_keys(model, MODEL_KEYS, required=("inputs", "layers"))
    check_mapping(model["inputs"], model, "inputs", "a mapping of input names to shapes")
    if not isinstance(model["layers"], Sequence) or not model["layers"]:
        raise model.error("layers", f"expected a non-empty list of layers, received "
                                    f"{describe(model['layers'])}")
    for key in ("blocks", "vars", "defaults"):
        if model.get(key) is not None:
            check_mapping(model[key], model, key)


# --- loading ----------------------------------------------------------------------------------


def merge(base, override):
    """Deep-merge two located documents: mappings merge key by key, anything else replaces."""
    if not (isinstance(base, Mapping) and isinstance(override, Mapping)):
        return override
    merged = Mapping(base, location=override.location, path=override.path)
    merged.key_locations = dict(base.key_locations)
    merged.value_locations = dict(base.value_locations)
    for key, value in override.items():
        merged.set(key, merge(base.get(key), value),
                   override.value_locations[key], override.key_locations[key])
    return merged


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except OSError:  # e.g. a name longer than the file system allows
        return False


def _load_document(file: str, chain: tuple = (), text: str | None = None) -> Mapping:
    """One file (or `text` shown as `file`) with everything it extends merged beneath it."""
    document = load_yaml_file(file, display=file) if text is None else parse_yaml(text, file)
    if document is None:
        raise SpecError(Location(file, 1, 1), "", "the file is empty; a spec is a YAML mapping "
                                                  "with at least a 'model' section")
    if not isinstance(document, Mapping):
        raise SpecError(Location(file, 1, 1), "",
                        f"a spec is a YAML mapping (keys such as 'model:'), received "
                        f"{describe(document)}")
    base_name = document.pop("extends", None)
    if base_name is None:
        return document
    base_file = os.path.normpath(os.path.join(os.path.dirname(file), check_string(
        base_name, document, "extends")))
    if base_file in chain or base_file == file or len(chain) >= MAX_EXTENDS_DEPTH:
        cycle = " -> ".join((*chain, file, base_file))
        raise document.error("extends", f"specs extend each other in a cycle: {cycle}")
    if not _is_file(base_file):
        shown = base_file if len(base_file) <= 80 else base_file[:77] + "..."
        raise document.error("extends", f"the base spec '{shown}' does not exist "
                                        f"(paths are relative to {file})")
    return merge(_load_document(base_file, (*chain, file)), document)


_OVERRIDE = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w-]+|\[\d+\])*)=(.*)$", re.DOTALL)


def apply_override(document: Mapping, assignment: str) -> None:
    """Apply one `--set dotted.key=value` (value in YAML) to a loaded document, in place."""
    match = _OVERRIDE.match(assignment)
    if not match:
        raise SpecError(Location("--set", 1, 1), "",
                        f"expected dotted.key=value (e.g. train.epochs=3), received '{assignment}'")
    dotted, text = match.groups()
    origin = f"--set {dotted}"
    value = parse_yaml(text, origin)
    parts = re.findall(r"[\w-]+|\[\d+\]", dotted)
    container = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        key = int(part[1:-1]) if part.startswith("[") else part
        if isinstance(key, int):
            if not isinstance(container, Sequence) or key >= len(container):
                raise SpecError(Location(origin, 1, 1), "", f"'{dotted}': there is no item "
                                                            f"{key} to set")
        elif not isinstance(container, Mapping):
            raise SpecError(Location(origin, 1, 1), "", f"'{dotted}': '{key}' is inside "
                                                        f"{describe(container)}, not a mapping")
        child_path = container.child_path(key)
        if last:
            value = repath(value, child_path)
            if isinstance(key, int):
                container[key] = value
                container.item_locations[key] = Location(origin, 1, 1)
            else:
                container.set(key, value, Location(origin, 1, 1))
        elif isinstance(key, str) and container.get(key) is None:
            container.set(key, Mapping(location=Location(origin, 1, 1), path=child_path),
                          Location(origin, 1, 1))
        container = container[key]


def load_spec(path, overrides=()) -> Spec:
    """Load, merge and validate a spec file. Raises SpecError, located, for any problem."""
    file = os.path.normpath(str(path))
    return _validated(_load_document(file), file, Path(file).stem, overrides)


def spec_from_text(text: str, overrides=(), name: str = "spec") -> Spec:
    """A spec written in a string (a notebook cell, a script), named `name`; errors locate
    it as `<name>:line:col`, and `extends` paths are relative to the working folder."""
    file = f"<{name}>"
    return _validated(_load_document(file, text=text), file, name, overrides)


def _validated(document: Mapping, file: str, name: str, overrides) -> Spec:
    """A loaded document with the --set overrides applied, every section checked."""
    for assignment in overrides:
        apply_override(document, assignment)
    check_keys(document, TOP_LEVEL_KEYS, required=("model",))
    sections = {}
    for key, check in (("model", _check_model), ("data", _check_data),
                       ("pretrain", _check_pretrain), ("train", _check_train),
                       ("export", _check_export), ("expect", _check_expect)):
        section = document.get(key)
        if section is None:
            section = Mapping(location=document.location, path=key)
        check(check_mapping(section, document, key))
        sections[key] = section
    texts = {}
    for key in ("description", "family"):
        texts[key] = document.get(key) or ""
        if not isinstance(texts[key], str):
            raise document.error(key, f"expected text, received {describe(texts[key])}")
    return Spec(name=name, file=file, document=document, **texts, **sections)
