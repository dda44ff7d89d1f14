"""The weights a spec starts from (`init`): an export of the zoo, a `.keras` file, a Keras
weights file (`.weights.h5`) or the legacy `.h5` layout keras.applications ships.

Weights go to the layers of the same name (or the name `init.rename` gives), each only if
its shapes match: a new head, whose shape differs, starts fresh. A Keras 3 weights file
does not record layer names, only each layer's type and position (`dense`, `dense_1`, ...),
so its layers are matched by type and position among the layers of that type. The plan
says what will be loaded, skipped and missing before anything is changed; `strict` turns
any mismatch into an error.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import keras
import numpy as np

from zoo.export import existing_versions
from zoo.names import first_lines, snake
from zoo.source import suggest
from zoo.spec import Spec
from zoo.training import layers_matching

MAX_NAMED = 8  # layer names a report line lists


@dataclass
class InitPlan:
    """What `init` loads into which layer; computed before any weight changes."""

    source: str  # the file read
    by_position: bool  # a Keras 3 weights file: matched by type and position
    loaded: dict = field(default_factory=dict)  # this model's layer -> the source's arrays
    skipped: list = field(default_factory=list)  # (layer, source shapes, this model's shapes)
    missing: list = field(default_factory=list)  # this model's layers the source lacks
    unused: list = field(default_factory=list)  # the source's layers nothing took

    def apply(self, model: keras.Model) -> None:
        for name, arrays in self.loaded.items():
            model.get_layer(name).set_weights(arrays)

    def report(self) -> str:
        matched = " (matched by type and position: a Keras 3 weights file has no layer " \
                  "names)" if self.by_position else ""
        lines = [f"init: weights from {self.source}{matched}: {_named(list(self.loaded))} "
                 "loaded"]
        if self.skipped:
            lines.append("  started fresh, their shapes differ: " + "; ".join(
                f"{name} (source {_shapes(theirs)}, here {_shapes(ours)})"
                for name, theirs, ours in self.skipped[:MAX_NAMED]))
        if self.missing:
            lines.append(f"  started fresh, not in the source: {_named(self.missing)}")
        if self.unused:
            lines.append(f"  of the source, not used: {_named(self.unused)}")
        return "\n".join(lines)


def _named(names: list) -> str:
    shown = ", ".join(names[:MAX_NAMED]) + (" ..." if len(names) > MAX_NAMED else "")
    return f"{len(names)} layer{'s' if len(names) != 1 else ''}" + (f" ({shown})" if names
                                                                   else "")


def _shapes(arrays_or_shapes) -> str:
    return ", ".join(str(tuple(np.shape(item))) if not isinstance(item, tuple) else str(item)
                     for item in arrays_or_shapes)


def initial_weights(spec: Spec, model: keras.Model) -> InitPlan | None:
    """The plan of the spec's `init` section for this model, or None without one. Raises a
    located SpecError for a source that cannot be read, a rename naming no layer of the
    source, and, with `strict`, any layer not loaded."""
    init = spec.document.get("init")
    if not init:
        return None
    path, by_position, weights = read_source(init["from"], init)
    keys = _structural_names(model) if by_position else {layer.name: layer.name
                                                         for layer in model.layers}
    renamed = {spec_name: source for source, spec_name in (init.get("rename") or {}).items()}
    for source in init.get("rename") or {}:
        if source not in weights:
            raise init["rename"].key_error(source, f"{path} has no layer '{source}'"
                                                   f"{suggest(source, weights)}")
    chosen = layers_matching(model, init["layers"]) if init.get("layers") \
        else {layer.name for layer in model.layers}
    plan = InitPlan(path, by_position)
    used = set()
    for layer in model.layers:
        if not layer.weights or layer.name not in chosen:
            continue
        key = renamed.get(layer.name, keys[layer.name])
        if key not in weights:
            plan.missing.append(layer.name)
            continue
        used.add(key)
        ours = [tuple(weight.shape) for weight in layer.weights]
        theirs = [tuple(array.shape) for array in weights[key]]
        if ours != theirs:
            plan.skipped.append((layer.name, theirs, ours))
        else:
            plan.loaded[layer.name] = weights[key]
    plan.unused = [key for key in weights if key not in used]
    if init["strict"] and (plan.skipped or plan.missing or plan.unused):
        raise init.error("strict", "with strict: true every layer must load from the source "
                                   "and every layer of the source must be used:\n"
                                   + plan.report())
    return plan


def read_source(given: str, init) -> tuple[str, bool, dict]:
    """(the file read, matched by position?, {layer key: its arrays in the layer's order})
    of an export folder, a .keras file, a .weights.h5 or a legacy .h5 file."""
    path = os.path.expanduser(given)
    if os.path.isdir(path):
        path = _export_model(path, init)
    if not os.path.exists(path):
        raise init.error("from", f"no such file or folder: {given} (paths are relative to "
                                 "the working folder)")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise init.error("from", f"cannot read weights from {path}: a .keras file is a zip "
                                 "archive and this is none (damaged, or cut short?)")
    try:
        if path.endswith(".keras"):
            model = keras.saving.load_model(path, compile=False)
            return path, False, {layer.name: [np.asarray(w) for w in layer.weights]
                                 for layer in model.layers if layer.weights}
        if path.endswith(".weights.h5"):
            return path, True, _keras3_weights(path)
        if path.endswith(".h5"):
            return path, False, _legacy_weights(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # what h5py and Keras raise
        raise init.error("from", f"cannot read weights from {path}, the file is damaged or "
                                 f"of another kind: {first_lines(exc)}") from None
    raise init.error("from", f"expected an export folder, a .keras file, a Keras weights file "
                             f"(.weights.h5) or a legacy .h5 weights file, received {given}")


def _export_model(folder: str, init) -> str:
    """An export version's model.keras; a spec's export folder means its newest version."""
    if not os.path.exists(os.path.join(folder, "model.keras")) and existing_versions(folder):
        folder = os.path.join(folder, str(existing_versions(folder)[-1]))
    path = os.path.join(folder, "model.keras")
    if not os.path.exists(path):
        raise init.error("from", f"{folder} is not an export of the zoo (no model.keras)")
    return path


def _keras3_weights(path: str) -> dict:
    import h5py

    with h5py.File(path, "r") as file:
        layers = file["layers"]
        return {key: [np.asarray(layers[key]["vars"][str(index)])
                      for index in range(len(layers[key]["vars"]))]
                for key in layers if "vars" in layers[key] and len(layers[key]["vars"])}


def _legacy_weights(path: str) -> dict:
    """Keras 2's layout: the layer names in an attribute, each layer's weight names in
    another, as keras.applications' downloaded weights have them."""
    import h5py

    with h5py.File(path, "r") as file:
        group = file["model_weights"] if "model_weights" in file else file
        weights = {}
        for name in _text_list(group.attrs["layer_names"]):
            weight_names = _text_list(group[name].attrs["weight_names"])
            if weight_names:
                weights[name] = [np.asarray(group[name][weight]) for weight in weight_names]
        return weights


def _text_list(values) -> list:
    return [value.decode() if isinstance(value, bytes) else str(value) for value in values]


def _structural_names(model: keras.Model) -> dict:
    """Layer name -> the name Keras 3 gives it in a weights file: its type in snake case,
    numbered among the layers of its type (keras/src/saving/saving_lib.py)."""
    counts, names = {}, {}
    for layer in model.layers:
        base = snake(type(layer).__name__)
        names[layer.name] = base if base not in counts else f"{base}_{counts[base] + 1}"
        counts[base] = counts.get(base, -1) + 1
    return names
