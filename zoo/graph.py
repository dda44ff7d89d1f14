"""The model section -> a flat, checked graph of layers: blocks and repeats expanded.

Each node of `model.layers` (and of a block's `layers`) is one of:

    - flatten                                   # a layer type alone
    - dense: {units: 10, activation: softmax}   # a layer type and its arguments
    - bottleneck: {filters: 64}                 # a block defined under model.blocks
    - repeat: {block: bottleneck, times: 3}     # a block stacked several times

Three argument names belong to the zoo, not to Keras: `name` (the node's local
name), `inputs` (local names it takes; by default the node above it) and
`when` (an expression; a node whose `when` is false is left out and its name
then stands for its input). Layer names are hierarchical: a layer `1_conv` in
the second repetition (`block2`) of a block used as `conv3` is `conv3_block2_1_conv`.
References only point upwards, so a graph can never contain a cycle.

A block returns its last node, or the node its `output` names; a block with `outputs:
[down, skip]` returns several: its instance name (and the next node's default input) stands
for the first, and `encoder1.skip` names each (U-Net's skip connections). A block with
`inputs: [x, skip]` is called with as many: `inputs: [bottom, encoder1.skip]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial

from zoo.expressions import substitute, variables_in_order
from zoo.names import (Refused, check_dtype, default_layer_name, layer_class, refused_layer_reason,
                       registry, resolve)
from zoo.sections import MAX_BLOCK_NESTING, MAX_LAYERS, MAX_REPEAT
from zoo.tables import check_keys, check_mapping
from zoo.source import Location, Mapping, Sequence, SpecError, describe, plain, suggest
from zoo.spec import Spec, node_name
from zoo.values import Integer

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_INPUT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # a TensorFlow signature argument's name
# The keys of the graph language.
RESERVED_ARGS = ("name", "inputs", "when")  # arguments of any node that belong to the zoo
REPEAT_KEYS = ("block", "times", "name", "start", "with", "each", "at") + RESERVED_ARGS
BLOCK_KEYS = ("params", "inputs", "layers", "output", "outputs", "description")
INPUT_KEYS = ("shape", "dtype")


@dataclass
class InputNode:
    name: str
    shape: tuple
    dtype: str
    location: Location | None


@dataclass
class LayerNode:
    name: str  # full hierarchical name, unique in the model
    layer_class: type
    kwargs: dict  # plain Python values for the Keras constructor
    inputs: list[str]  # full names of the nodes (or model inputs) it takes
    location: Location | None
    path: str  # dotted path of the node in the spec
    blocks: tuple[str, ...] = ()  # the block instances it sits in, outermost first
    argument_locations: dict = field(default_factory=dict)  # kwarg -> (Location, dotted path)


@dataclass
class Graph:
    inputs: list[InputNode]
    layers: list[LayerNode]
    outputs: list[str]
    names: dict = field(default_factory=dict)  # full name -> where it was defined
    block_kinds: dict = field(default_factory=dict)  # block instance name -> its block's name


@dataclass
class _Scope:
    """Names visible inside one list of nodes (the model's, or one block instance's)."""

    prefix: str  # prepended to every layer name created here
    names: dict  # local name -> full name of the tensor it stands for
    variables: dict  # what `${...}` can see
    blocks: tuple[str, ...] = ()  # instance names from the model down to here
    block_outputs: dict = field(default_factory=dict)  # instance -> (its block, output names)


class _Expander:
    def __init__(self, model: Mapping):
        self.block_defs = model.get("blocks") or Mapping(path="model.blocks")
        self.global_variables = variables_in_order(model.get("vars"))
        self.defaults = self._layer_defaults(model)
        self.graph = Graph([], [], [])
        self.auto_counts: dict = {}
        self.block_stack: list[str] = []

    def _layer_defaults(self, model: Mapping) -> dict:
        """`model.defaults`: layer type -> arguments every layer of that type starts from."""
        defaults = {}
        section = model.get("defaults") or Mapping(path="model.defaults")
        for kind, args in section.items():
            try:
                cls = resolve("layer", kind)
            except Refused as refused:
                raise section.key_error(kind, str(refused)) from None
            if args is None:  # null: no defaults of the spec's own for this type
                continue
            check_mapping(args, section, kind, f"the default arguments of '{kind}' as a mapping")
            defaults[cls] = substitute(args, self.global_variables)
        return defaults

    # --- node lists ---------------------------------------------------------------------

    def expand_list(self, nodes: Sequence, scope: _Scope, previous: str | None) -> str | None:
        declared_below = self._declared_names(nodes)
        for index in range(len(nodes)):
            previous = self.expand_node(nodes, index, scope, previous, declared_below)
        return previous

    @staticmethod
    def _declared_names(nodes: Sequence) -> dict:
        """Literal node names and their lines, to explain a reference to a node further down."""
        names = {}
        for index, node in enumerate(nodes):
            name = node_name(node)
            if name is not None:
                names[name] = (index, next(iter(node.values())).where("name")[0])
        return names

    def expand_node(self, nodes: Sequence, index: int, scope: _Scope, previous, declared_below):
        kind, raw_args, kind_location = self._split_node(nodes, index)
        args = substitute(raw_args, scope.variables)
        when = args.get("when", True)
        if not isinstance(when, bool):
            raise args.error("when", f"expected true or false (e.g. ${{stride == 2}}), received "
                                     f"{describe(when)}")
        inputs = self._resolve_inputs(args, scope, previous, index, declared_below)
        if not when:  # left out: its name stands for its (single) input
            if len(inputs) != 1:
                raise args.error("when", "a node left out by `when` stands for its input, so it "
                                         f"must have exactly one input; it has {len(inputs)}")
            self._bind(args, scope, inputs[0])
            return inputs[0]
        if kind == "repeat":
            return self.expand_repeat(args, scope, inputs)
        if kind in self.block_defs:
            return self.expand_block(kind, args, scope, inputs)
        return self.expand_layer(kind, args, kind_location, scope, inputs)

    def _split_node(self, nodes: Sequence, index: int):
        node = nodes[index]
        location, path = nodes.where(index)
        if isinstance(node, str):
            return node, Mapping(location=location, path=f"{path}.{node}"), location
        if isinstance(node, Mapping) and len(node) == 1:
            (kind, args), = node.items()
            if args is None:
                args = Mapping(location=node.key_locations[kind], path=node.child_path(kind))
            check_mapping(args, node, kind, f"the arguments of '{kind}' as a mapping "
                                            "(e.g. dense: {units: 10})")
            return kind, args, node.key_locations[kind]
        if isinstance(node, Mapping) and len(node) > 1:
            raise nodes.error(index, f"a layer is one type mapped to its arguments, but this "
                                     f"mapping has {len(node)} keys ({', '.join(map(str, node))}); "
                                     f"indent the arguments under the type, e.g. "
                                     f"'- dense: {{units: 10}}'")
        raise nodes.error(index, f"expected a layer such as '- flatten' or "
                                 f"'- dense: {{units: 10}}', received {describe(node)}")

    def _resolve_inputs(self, args: Mapping, scope: _Scope, previous, index, declared_below):
        wanted = args.get("inputs")
        if wanted is None:
            if previous is None:
                raise SpecError(args.location, args.path,
                                "this node has no input: give it `inputs: [name]`")
            return [previous]
        names = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise args.error("inputs", f"expected a node name or a list of node names, received "
                                       f"{describe(wanted)}")
        resolved = []
        for name in names:
            if name in scope.names:
                resolved.append(scope.names[name])
                continue
            below = declared_below.get(name)
            if below and below[0] == index:
                message = f"node '{name}' cannot take itself as input"
            elif below and below[0] > index:
                message = (f"node '{name}' is defined below (line {below[1].line}); a node can "
                           "only take inputs from nodes above it, so the graph cannot have a cycle")
            else:
                message = self._undefined_output(name, scope) or (
                    f"undefined node '{name}'{suggest(name, scope.names)}; "
                    f"defined above: {', '.join(scope.names) or 'nothing'}")
            raise args.error("inputs", message)
        return resolved

    @staticmethod
    def _undefined_output(name: str, scope: _Scope) -> str | None:
        """What is wrong with `instance.output` when the instance exists but has no such
        output; None when `name` names no block instance."""
        instance, _, output = name.rpartition(".")
        if instance not in scope.block_outputs:
            return None
        kind, outputs = scope.block_outputs[instance]
        if not outputs:
            return (f"'{instance}' is a block '{kind}' with one output, named '{instance}' "
                    f"itself; a block returns several when it lists them (outputs: [...])")
        return (f"block '{kind}' (here '{instance}') has no output '{output}'"
                f"{suggest(output, outputs)}; its outputs: "
                + ", ".join(f"{instance}.{each}" for each in outputs))

    @staticmethod
    def _bind(args: Mapping, scope: _Scope, tensor: str):
        """Make a left-out node's name stand for the tensor it would have taken."""
        name = args.get("name")
        if name is None:
            return
        if name in scope.names and scope.names[name] != tensor:
            raise args.error("name", f"duplicate name '{name}' in this list of layers")
        scope.names[name] = tensor

    def _full_name(self, args: Mapping, scope: _Scope, default: str) -> tuple[str, str]:
        """(local name, full name) for a new node; checks the name is valid and unused."""
        local = args.get("name")
        if local is None:
            count = self.auto_counts.get(scope.prefix + default, 0)
            while True:
                local = default if count == 0 else f"{default}_{count}"
                count += 1
                if scope.prefix + local not in self.graph.names and local not in scope.names:
                    break
            self.auto_counts[scope.prefix + default] = count
        elif not isinstance(local, str) or not _NAME.match(local):
            raise args.error("name", "expected a name of letters, digits, '_', '.' or '-', "
                                     f"received {describe(local)}")
        full = scope.prefix + local
        if full in self.graph.names or local in scope.names:
            first = self.graph.names.get(full)
            line = f" (first defined at {first})" if first else ""
            raise args.error("name", f"duplicate name '{full}'{line}; every layer needs its "
                                     "own name")
        self.graph.names[full] = args.where("name")[0] if "name" in args else args.location
        return local, full

    # --- layers, blocks, repeats -------------------------------------------------------------

    def expand_layer(self, kind, args: Mapping, kind_location, scope: _Scope, inputs):
        cls = layer_class(kind)
        if cls is None:
            known = registry("layer").names + list(self.block_defs) + ["repeat"]
            raise SpecError(kind_location, args.path, refused_layer_reason(kind) or
                            f"unknown layer or block '{kind}'{suggest(kind, known)}")
        local, full = self._full_name(args, scope, default_layer_name(cls))
        defaults = self.defaults.get(cls, Mapping())
        kwargs, where = {}, {}
        for source in (defaults, args):
            for key, value in source.items():
                if key not in RESERVED_ARGS and value is not None:  # null: the default
                    kwargs[key] = plain(value)
                    where[key] = (source.key_locations.get(key, source.location),
                                  source.child_path(key))
        self.graph.layers.append(LayerNode(full, cls, kwargs, inputs, kind_location, args.path,
                                           scope.blocks, where))
        if len(self.graph.layers) > MAX_LAYERS:
            raise SpecError(kind_location, args.path, f"the model has more than {MAX_LAYERS:,} "
                                                      "layers; is a repeat count too large?")
        scope.names[local] = full
        return full

    def expand_block(self, kind: str, args: Mapping, scope: _Scope, inputs):
        definition = self._block_definition(kind)
        chain = " -> ".join([*self.block_stack, kind])
        if kind in self.block_stack:
            raise SpecError(args.location, args.path, f"block '{kind}' uses itself ({chain}); "
                                                      "blocks cannot be recursive")
        if len(self.block_stack) >= MAX_BLOCK_NESTING:
            raise SpecError(args.location, args.path, f"blocks nest more than "
                                                      f"{MAX_BLOCK_NESTING} deep ({chain})")
        params = definition.get("params") or Mapping(path=definition.child_path("params"))
        given = {key: plain(value) for key, value in args.items() if key not in RESERVED_ARGS}
        for key in given:
            if key not in params:
                raise args.key_error(key, f"block '{kind}' has no parameter '{key}'"
                                          f"{suggest(key, params)}; its parameters: "
                                          f"{', '.join(params) or 'none'}")
        missing = [key for key, default in params.items() if default is None and key not in given]
        if missing:
            raise SpecError(args.location, args.path, f"block '{kind}' needs a value for "
                                                      f"'{missing[0]}' (it has no default)")
        # Defaults may be expressions over the global vars and the values given.
        defaults = plain(substitute(params, {**self.global_variables, **given}))
        variables = {**self.global_variables, **defaults, **given}
        block_inputs = definition.get("inputs") or ["input"]
        if len(inputs) != len(block_inputs):
            raise args.error("inputs", f"block '{kind}' takes {_count(block_inputs, 'input')} "
                                       f"({', '.join(block_inputs)}), received {len(inputs)}; "
                                       "give them in that order: inputs: [node, ...]")
        local, full = self._full_name(args, scope, kind)
        self.graph.block_kinds[full] = kind
        inner = _Scope(prefix=full + "_", names=dict(zip(block_inputs, inputs)),
                       variables=variables, blocks=(*scope.blocks, full))
        self.block_stack.append(kind)
        last = self.expand_list(definition["layers"], inner, inputs[0])
        self.block_stack.pop()
        results = self._block_results(definition, inner, last)
        scope.names[local] = results[0][1]
        if definition.get("outputs") is not None:
            for name, tensor in results:
                scope.names[f"{local}.{name}"] = tensor
        scope.block_outputs[local] = (kind, list(definition.get("outputs") or []))
        return results[0][1]

    @staticmethod
    def _block_results(definition: Mapping, inner: _Scope, last: str) -> list[tuple]:
        """(local name, tensor) of each result of a block instance, its main result first."""
        def tensor(name: str, error) -> str:
            if name not in inner.names:
                raise error(f"undefined node '{name}'{suggest(name, inner.names)}")
            return inner.names[name]

        if definition.get("output") is not None:
            name = definition["output"]
            return [(name, tensor(name, partial(definition.error, "output")))]
        outputs = definition.get("outputs")
        if outputs is None:
            return [(None, last)]
        return [(name, tensor(name, partial(outputs.error, index)))
                for index, name in enumerate(outputs)]

    def _block_definition(self, kind: str) -> Mapping:
        definition = check_mapping(self.block_defs[kind], self.block_defs, kind)
        check_keys(definition, BLOCK_KEYS, required=("layers",))
        if not isinstance(definition["layers"], Sequence) or not definition["layers"]:
            raise definition.error("layers", "expected a non-empty list of layers")
        if definition.get("params") is not None:
            check_mapping(definition["params"], definition, "params",
                          "a mapping of parameter names to defaults (null: required)")
        for key in ("inputs", "outputs"):
            names = definition.get(key)
            if names is not None and (not isinstance(names, Sequence) or not names or not all(
                    isinstance(name, str) for name in names)):
                raise definition.error(key, f"expected a list of {key[:-1]} names, received "
                                            f"{describe(names)}")
            if names is not None and len(set(names)) < len(names):
                twice = next(name for name in names if names.count(name) > 1)
                raise definition.error(key, f"'{twice}' is listed twice")
        if definition.get("output") is not None and definition.get("outputs") is not None:
            raise definition.key_error("output", "a block has either `output` (the one node it "
                                                 "returns) or `outputs` (several), not both")
        return definition

    def expand_repeat(self, args: Mapping, scope: _Scope, inputs):
        check_keys(args, REPEAT_KEYS, required=("block",))
        block = args["block"]
        if not isinstance(block, str) or block not in self.block_defs:
            raise args.error("block", f"unknown block '{block}'"
                                      f"{suggest(block, self.block_defs)}; defined blocks: "
                                      f"{', '.join(self.block_defs) or 'none'}")
        each = check_mapping(args.get("each") or Mapping(path=args.child_path("each")),
                             args, "each")
        times = args.get("times")
        if times is None:
            lengths = {len(v) for v in each.values() if isinstance(v, list)}
            times = lengths.pop() if len(lengths) == 1 else None
            if times is None:
                raise SpecError(args.location, args.path, "a repeat needs `times` (or `each` "
                                                          "lists of one length)")
        Integer(1, MAX_REPEAT).check(times, args, "times")
        for key, values in each.items():
            if not isinstance(values, list) or len(values) != times:
                raise each.error(key, f"expected a list of {times} values (one per "
                                      f"repetition), received {describe(values)}"
                                      + (f" of {len(values)}" if isinstance(values, list) else ""))
        overrides = self._repeat_overrides(args, times)
        shared = check_mapping(args.get("with") or Mapping(path=args.child_path("with")),
                               args, "with")
        name = args.get("name", block)
        start = args.get("start", 1)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise args.error("start", f"expected an integer >= 0, received {describe(start)}")
        if len(inputs) != 1:
            raise args.error("inputs", f"a repeat chains one tensor through its blocks, so it "
                                       f"takes one input, received {len(inputs)}")
        block_inputs = self._block_definition(block).get("inputs") or ["input"]
        if len(block_inputs) != 1:
            raise args.error("block", f"a repeat chains one tensor through its blocks, and "
                                      f"block '{block}' takes {len(block_inputs)} inputs "
                                      f"({', '.join(block_inputs)}); use it once per "
                                      f"repetition instead: - {block}: {{inputs: [...]}}")
        output = inputs[0]
        for repetition in range(times):
            instance = Mapping(shared, location=args.location, path=args.path)
            instance.value_locations = dict(shared.value_locations)
            instance.key_locations = dict(shared.key_locations)
            for key, values in each.items():
                location = values.item_locations[repetition] if isinstance(values, Sequence) \
                    else each.where(key)[0]  # a list computed by ${...} has one location
                instance.set(key, values[repetition], location)
            for key, value in overrides.get(repetition, {}).items():
                instance.set(key, value, overrides[repetition].value_locations[key],
                             overrides[repetition].key_locations[key])
            instance.set("name", f"{name}{start + repetition}", args.location)
            output = self.expand_block(block, instance, scope, [output])
        scope.names.setdefault(name, output)
        return output

    @staticmethod
    def _repeat_overrides(args: Mapping, times: int) -> dict:
        """`at: {1: {...}, -1: {...}}` -> {0-based repetition: Mapping of overrides}."""
        at = check_mapping(args.get("at") or Mapping(path=args.child_path("at")), args, "at")
        overrides = {}
        for key, value in at.items():
            if isinstance(key, bool) or not isinstance(key, int) or not (
                    1 <= key <= times or -times <= key <= -1):
                raise at.key_error(key, f"expected a repetition number from 1 to {times} (or -1 "
                                        f"for the last), received {describe(key)}")
            overrides[key - 1 if key > 0 else times + key] = check_mapping(value, at, key)
        return overrides

    # --- the model -----------------------------------------------------------------------------

    def expand_model(self, model: Mapping) -> Graph:
        inputs = model["inputs"]
        scope = _Scope(prefix="", names={}, variables=self.global_variables)
        for name, declared in inputs.items():
            node = self._input_node(inputs, name, declared)
            self.graph.inputs.append(node)
            self.graph.names[name] = node.location
            scope.names[name] = name
        if not self.graph.inputs:
            raise model.error("inputs", "the model needs at least one input, e.g. "
                                        "{image: [28, 28, 1]}")
        last = self.expand_list(model["layers"], scope, self.graph.inputs[0].name)
        wanted = model.get("outputs") or [last]
        wanted = [wanted] if isinstance(wanted, str) else wanted
        for index, name in enumerate(wanted):
            if not isinstance(name, str) or name not in scope.names and name != last:
                outputs = model["outputs"] if isinstance(model["outputs"], Sequence) else None
                location, path = outputs.where(index) if outputs else model.where("outputs")
                raise SpecError(location, path, f"undefined node '{name}'"
                                                f"{suggest(name, scope.names)}")
            self.graph.outputs.append(scope.names.get(name, name))
        return self.graph

    @staticmethod
    def _input_node(inputs: Mapping, name, declared) -> InputNode:
        if not isinstance(name, str) or not _INPUT_NAME.match(name):
            raise inputs.key_error(name, "an input's name is letters, digits and '_', starting "
                                         f"with a letter (e.g. image), received {describe(name)}")
        if isinstance(declared, Sequence):
            declared = Mapping({"shape": declared}, location=inputs.where(name)[0],
                               path=inputs.child_path(name))
            declared.value_locations["shape"] = declared.location
        check_mapping(declared, inputs, name, "a shape such as [28, 28, 1] or {shape: [...], "
                                              "dtype: uint8}")
        check_keys(declared, INPUT_KEYS, required=("shape",))
        shape = declared["shape"]
        if not isinstance(shape, list) or not shape or not all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                for d in shape):
            raise declared.error("shape", "expected a list of positive sizes (null for any size) "
                                          f"without the batch axis, received {describe(shape)}")
        dtype = declared.get("dtype") or "float32"
        try:
            check_dtype(dtype)
        except Refused as refused:
            raise declared.error("dtype", str(refused)) from None
        return InputNode(str(name), tuple(shape), dtype, inputs.where(name)[0])


def _count(names, noun: str) -> str:
    return f"{len(names)} {noun}" + ("" if len(names) == 1 else "s")


def expand(spec: Spec) -> Graph:
    """The spec's model as a flat list of layers with their inputs, checked."""
    return _Expander(spec.model).expand_model(spec.model)
