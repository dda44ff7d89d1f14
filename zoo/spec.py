"""A spec file -> a validated `Spec`: `extends` resolved, `--set` applied, every key checked.

Every section is checked against its table (zoo/sections.py), which also fills in the
defaults: a key left out or null reads as its default afterwards. The model section is only
checked for shape here (its graph is checked while it is expanded, in `graph.py`); names that
depend on the built model (monitors, export outputs, pretrained layers) are checked by
`zoo.preflight`. A typo in a hyper-parameter fails before any work starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from zoo.sections import MAX_EXTENDS_DEPTH, TOP, PretrainMethod, Schedule
from zoo.tables import Section, Table, check_table
from zoo.source import (Location, Mapping, Sequence, SpecError, describe, dotted_parts,
                        load_yaml_file, parse_yaml, repath, suggest)
from zoo.values import KerasObject, Text



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
    init: Mapping = field(default_factory=Mapping)  # the weights training starts from
    expect: Mapping = field(default_factory=Mapping)
    description: str = ""
    family: str = ""  # what `zoo list` groups it under, e.g. ResNet
    document: Mapping = field(default_factory=Mapping)  # the whole merged spec, for the export
    overrides: tuple = ()  # the --set assignments applied, as given

    @property
    def model_changed(self) -> bool:
        """Whether --set changed the model the files describe (their `expect` is then moot)."""
        return any(assignment.startswith("model") for assignment in self.overrides)


# --- loading ----------------------------------------------------------------------------------


def merge(base, override, table: Table | None = TOP):
    """Deep-merge two located documents: mappings merge key by key, anything else replaces.

    A Keras object (or pretraining method) written `{name: arguments}` is replaced whole when
    the override names another object: a spec that extends an SGD recipe with
    `optimizer: {adam: {...}}` means Adam, not both. `table` says what the mappings are
    (None: free-form, as in `model`). A list of layers (the model's or a block's) overridden
    by a mapping is edited by layer name (`edit_layers`)."""
    if isinstance(base, Sequence) and isinstance(override, Mapping) and is_layer_list(override):
        return edit_layers(base, override)
    if not (isinstance(base, Mapping) and isinstance(override, Mapping)):
        return override
    if table is NAMED_OBJECT and set(base) != set(override):
        return override
    merged = Mapping(base, location=override.location, path=override.path)
    merged.key_locations = dict(base.key_locations)
    merged.value_locations = dict(base.value_locations)
    for key, value in override.items():
        merged.set(key, merge(base.get(key), value, _inner_table(table, key)),
                   override.value_locations[key], override.key_locations[key])
    return merged


NAMED_OBJECT = Table("a Keras object", ())  # what merge() calls a `{name: arguments}` value


def _inner_table(table: Table | None, key) -> Table | None:
    if table is None or table is NAMED_OBJECT or key not in table.names:
        return None
    kind = table.key(key).kind
    if isinstance(kind, Section):
        return kind.table
    return NAMED_OBJECT if isinstance(kind, (KerasObject, Schedule, PretrainMethod)) else None


# --- editing a base's layers by name --------------------------------------------------------

_LAYER_LIST = re.compile(r"^model\.(blocks\.[^.]+\.)?layers$")


def is_layer_list(value) -> bool:
    """Whether `value` sits where a list of layers goes: model.layers, model.blocks.X.layers."""
    return bool(_LAYER_LIST.match(value.path))


def node_name(node):
    """The literal `name` a node of a layer list gives itself (a layer, block or repeat), or
    None."""
    if isinstance(node, Mapping) and len(node) == 1:
        args = next(iter(node.values()))
        if isinstance(args, Mapping) and isinstance(args.get("name"), str):
            return args["name"]
    return None


def edit_layers(base: Sequence, edits: Mapping) -> Sequence:
    """The base's list of layers with the named ones changed: `name: null` drops the layer (the
    one below it then takes the one above, as any unnamed input does); `name: {type: args}`
    merges into it as a mapping does (the same type: its arguments key by key; another type:
    replaced, keeping the name)."""
    named = [name for name in map(node_name, base) if name is not None]
    for name in edits:
        if name not in named:
            raise edits.key_error(name, f"the base's layers have no layer named '{name}'"
                                        f"{suggest(name, named)}; named layers there: "
                                        f"{', '.join(named) or 'none'}")
    result = Sequence(location=edits.location, path=base.path)
    for index, node in enumerate(base):
        name = node_name(node)
        if name not in edits:
            result.append_located(node, base.item_locations[index])
        elif edits[name] is not None:  # null: dropped
            result.append_located(_edited_node(node, edits, name), edits.where(name)[0])
    _check_no_input_dropped(result, edits)
    return result


def _edited_node(node: Mapping, edits: Mapping, name: str) -> Mapping:
    edit = edits[name]
    if isinstance(edit, str):  # a layer type alone
        edit = Mapping({edit: None}, location=edits.where(name)[0], path=edits.child_path(name))
        edit.key_locations[next(iter(edit))] = edit.location
    if not (isinstance(edit, Mapping) and len(edit) == 1):
        raise edits.error(name, f"expected a layer to merge into '{name}', such as "
                                f"{{{next(iter(node))}: {{...}}}}, or null to drop it, received "
                                f"{describe(edit)}")
    (kind, args), = edit.items()
    if args is None:
        args = Mapping(location=edit.key_locations[kind], path=edit.child_path(kind))
        edit.set(kind, args, args.location, edit.key_locations[kind])
    if not isinstance(args, Mapping):
        raise edit.error(kind, f"expected the arguments of '{kind}' as a mapping, received "
                               f"{describe(args)}")
    merged = merge(node, edit, NAMED_OBJECT)
    merged_args = merged[kind]
    if "name" not in merged_args:  # another type: the layer keeps its name
        merged_args.set("name", name, edits.key_locations[name])
    return merged


def _check_no_input_dropped(nodes: Sequence, edits: Mapping) -> None:
    """A dropped layer that a remaining one names as input: said at the drop, not as an
    undefined name in the base file."""
    dropped = [name for name, edit in edits.items() if edit is None]
    for node in nodes:
        args = next(iter(node.values())) if isinstance(node, Mapping) and len(node) == 1 \
            else None
        wanted = args.get("inputs") if isinstance(args, Mapping) else None
        for name in [wanted] if isinstance(wanted, str) else wanted or ():
            if name in dropped:
                user = node_name(node) or "a layer"
                where = args.where("inputs")[0]
                raise edits.error(name, f"layer '{name}' is dropped, but '{user}' ({where}) "
                                        f"takes it as input; change '{user}' too, e.g. "
                                        f"{user}: {{{next(iter(node))}: {{inputs: ...}}}}, or "
                                        "drop it")


def _check_layer_edits_found_a_base(document: Mapping) -> None:
    """A mapping left where a list of layers goes had no base list to edit."""
    model = document.get("model")
    if not isinstance(model, Mapping):
        return
    blocks = model.get("blocks") if isinstance(model.get("blocks"), Mapping) else {}
    for owner in (model, *blocks.values()):
        layers = owner.get("layers") if isinstance(owner, Mapping) else None
        if isinstance(layers, Mapping):
            raise SpecError(layers.location, layers.path, "a mapping of layer names edits the "
                            "list of layers of a spec this one extends, and no base spec has "
                            f"{layers.path} to edit; write the layers as a list")


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
    base_file = os.path.normpath(os.path.join(os.path.dirname(file), Text().check(
        base_name, document, "extends")))
    if base_file in chain or base_file == file:
        cycle = " -> ".join((*chain, file, base_file))
        raise document.error("extends", f"specs extend each other in a cycle: {cycle}")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise document.error("extends", f"more than {MAX_EXTENDS_DEPTH} bases, one over "
                                        f"another: {' -> '.join((*chain, file, base_file))}")
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
    if dotted == "extends":
        raise SpecError(Location(origin, 1, 1), "extends", "a base spec is merged when the file "
                        "is read, before --set applies, so --set cannot change it; write a "
                        "spec that extends the base you want (a variant is a few lines)")
    value = parse_yaml(text, origin, dotted)
    keys = dotted_parts(dotted)
    container = document
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(key, int):
            if not isinstance(container, Sequence) or key >= len(container):
                raise SpecError(Location(origin, 1, 1), "", f"'{dotted}': there is no item "
                                                            f"{key} to set")
        elif not isinstance(container, Mapping):
            raise SpecError(Location(origin, 1, 1), "", f"'{dotted}': '{key}' is inside "
                                                        f"{describe(container)}, not a mapping")
        child_path = container.child_path(key)
        if last and child_path.startswith("model.vars.") and key not in container:
            raise SpecError(Location(origin, 1, 1), child_path, f"the spec has no variable "
                            f"'{key}'{suggest(key, container)}; --set changes the spec's "
                            f"variables ({', '.join(container) or 'none'}), it cannot add one "
                            "that nothing reads")
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


def as_spec(spec, overrides=()) -> Spec:
    """A Spec from what the API's functions take: a spec file's path, YAML text (a string of
    several lines), or a loaded Spec (final: no overrides)."""
    if isinstance(spec, Spec):
        if overrides:
            raise TypeError("overrides go with a spec file or text; a loaded Spec is final")
        return spec
    if isinstance(spec, str) and "\n" in spec:
        return spec_from_text(spec, overrides)
    return load_spec(spec, overrides)


def _validated(document: Mapping, file: str, name: str, overrides) -> Spec:
    """A loaded document with the --set overrides applied, every section checked."""
    _check_layer_edits_found_a_base(document)
    for assignment in overrides:
        apply_override(document, assignment)
    check_table(document, TOP)
    sections = {key: document.get(key) or Mapping(location=document.location, path=key)
                for key in ("model", "data", "train", "export", "pretrain", "init", "expect")}
    return Spec(name=name, file=file, document=document, overrides=tuple(overrides),
                description=document.get("description") or "",
                family=document.get("family") or "", **sections)
