"""The JSON Schema of the spec language (`zoo schema`), for editors that check and complete
YAML as it is typed (the YAML language server reads the `# yaml-language-server: $schema=`
line at the top of a spec).

The key lists, value checks and choices come from the tables in `zoo.spec`, so the schema
and the loader agree. A schema sees one file, before `extends` is merged, so it requires no
key (a variant states only what it changes); the loader still checks the merged spec. Layer
arguments are Keras's own and stay open here; `zoo summary` checks them.
"""

from __future__ import annotations

import json

from zoo import spec as tables

_VALUE_SCHEMAS = {  # what each check of zoo.spec accepts, as JSON Schema
    tables.check_string: {"type": "string", "minLength": 1},
    tables.check_positive_int: {"type": "integer", "minimum": 1},
    tables.check_pad: {"type": "integer", "minimum": 1, "maximum": tables.MAX_PAD},
    tables.check_int: {"type": "integer"},
    tables.check_non_negative_number: {"type": "number", "minimum": 0},
    tables.check_bool: {"type": "boolean"},
    tables.check_string_list: {"type": "array", "items": {"type": "string"}},
    tables.check_number_list: {"type": "array", "items": {"type": "number"}},
    tables.check_threads: {"anyOf": [{"const": "auto"}, {
        "type": "integer", "minimum": 1, "maximum": tables.MAX_THREADS}]},
}
_KERAS_NAMED = {  # `name` or `{name: {keyword arguments}}`
    "anyOf": [{"type": "string"},
              {"type": "object", "minProperties": 1, "maxProperties": 1,
               "additionalProperties": {"type": ["object", "null"]}}]}
_NODE_LIST = {"type": "array", "minItems": 1, "items": {"anyOf": [
    {"type": "string", "description": "a layer type or block with no arguments, e.g. flatten"},
    {"type": "object", "minProperties": 1, "maxProperties": 1,
     "description": "a layer type or block mapped to its arguments, e.g. dense: {units: 10}",
     "properties": {"repeat": {"type": "object", "required": ["block"],
                               "properties": {key: {} for key in tables.REPEAT_KEYS},
                               "additionalProperties": False}}}]}}
_SHAPE = {"type": "array", "items": {"type": ["integer", "null"]}}


def _nullable(schema: dict) -> dict:
    """The schema, or null (null means "the default" everywhere in a spec)."""
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        return {"enum": [*schema["enum"], None]}
    return {"anyOf": [schema, {"type": "null"}]}


def _section(keys, table: str, special: dict | None = None, description: str = "") -> dict:
    """An object of exactly `keys`: typed from VALUE_CHECKS and CHOICES, or by `special`."""
    properties = {}
    for key in keys:
        if special and key in special:
            schema = special[key]
        elif key in tables.VALUE_CHECKS.get(table, {}):
            schema = _VALUE_SCHEMAS[tables.VALUE_CHECKS[table][key]]
        elif key in tables.CHOICES.get(table, {}):
            schema = {"enum": list(tables.CHOICES[table][key])}
        else:
            schema = {}
        properties[key] = _nullable(schema) if schema else schema
    result = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"description": description, **result} if description else result


def _train_schema(keys) -> dict:
    metrics = {"type": "array", "items": {"enum": list(tables.METRICS)}}
    stopping = _section(tables.EARLY_STOPPING_KEYS, "train.early_stopping")
    return _section(keys, "train", {"optimizer": _KERAS_NAMED, "loss": _KERAS_NAMED,
                                    "schedule": _KERAS_NAMED, "metrics": metrics,
                                    "early_stopping": stopping})


def spec_schema() -> dict:
    block = _section(tables.BLOCK_KEYS, "model.blocks", {
        "params": {"type": "object"}, "layers": _NODE_LIST,
        "inputs": {"type": "array", "items": {"type": "string"}}, "output": {"type": "string"},
        "description": {"type": "string"}})
    model_input = {"anyOf": [_SHAPE, _section(tables.INPUT_KEYS, "model.inputs", {
        "shape": _SHAPE, "dtype": {"type": "string"}})]}
    model = _section(tables.MODEL_KEYS, "model", {
        "inputs": {"type": "object", "additionalProperties": model_input},
        "layers": _NODE_LIST, "blocks": {"type": "object", "additionalProperties": block},
        "outputs": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "vars": {"type": "object"}, "defaults": {"type": "object",
                                                 "additionalProperties": {"type": "object"}}},
        "the network: inputs, layers (any Keras layer by name), blocks, vars, defaults")
    data = _section(tables.DATA_KEYS, "data", {
        "preprocess": _section(tables.PREPROCESS_KEYS, "data.preprocess"),
        "augment": _section(tables.AUGMENT_KEYS, "data.augment")},
        "the dataset and its preprocessing")
    pretrain = _section(tables.PRETRAIN_KEYS, "pretrain", {
        "optimizer": _KERAS_NAMED, "loss": _KERAS_NAMED,
        "noise": _section(tables.NOISE_KEYS, "pretrain.noise"),
        "head": _train_schema(tables.HEAD_KEYS)}, "greedy layer-wise autoencoder pretraining")
    export = _section(tables.EXPORT_KEYS, "export", {
        "outputs": {"type": "object", "additionalProperties": {"type": "string"}}})
    expect = _section(tables.EXPECT_KEYS, "expect", {"output_shape": _SHAPE},
                      "counts the built model must have; checked by the tests")
    top = _section(tables.TOP_LEVEL_KEYS, "", {
        "extends": {"type": "string", "description": "a base spec, relative to this file"},
        "description": {"type": "string"}, "family": {"type": "string"},
        "model": model, "data": data, "pretrain": pretrain,
        "train": {**_train_schema(tables.TRAIN_KEYS),
                  "description": "how to train: batch size, epochs, optimizer, ..."},
        "export": export, "expect": expect})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Keras declarative model zoo spec", **top}


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2) + "\n"
