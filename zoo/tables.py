"""How a section of a spec is declared and checked: a table of keys (each with its kind of
value, its default and what it means), and the check of a mapping against its table, which
also fills in the defaults. The spec language's own tables are in `zoo.sections`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.source import Mapping, SpecError, describe, suggest
from zoo.values import Type

REQUIRED = object()  # the default of a key a spec must give


@dataclass(frozen=True)
class Key:
    name: str
    kind: Type
    default: object = None  # what the key is when left out or null (None: nothing, or below)
    doc: str = ""
    default_doc: str = ""  # the default in words, when it is worked out rather than fixed

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def example(self):
        return self.kind.example


@dataclass(frozen=True)
class Table:
    path: str  # where the table sits in a spec: "train.early_stopping"
    keys: tuple
    doc: str = ""
    checks: tuple = ()  # functions of the whole mapping, for rules that join several keys
    example: dict = field(default_factory=dict)  # the smallest valid mapping, for tests
    elsewhere: dict = field(default_factory=dict)  # a key users put here -> where it belongs

    def key(self, name: str) -> Key:
        return next(key for key in self.keys if key.name == name)

    @property
    def names(self) -> tuple:
        return tuple(key.name for key in self.keys)


# --- checking a mapping against its table ----------------------------------------------------


def check_mapping(value, container, key, what="a mapping") -> Mapping:
    if not isinstance(value, Mapping):
        raise container.error(key, f"expected {what}, received {describe(value)}")
    return value


def check_keys(mapping: Mapping, allowed, required=(), elsewhere=None):
    """Unknown keys are errors (with the closest valid ones, or where the key belongs);
    required keys must be there."""
    for key in mapping:
        if key not in allowed:
            hint = (elsewhere or {}).get(key)
            close = f"; it belongs {hint}" if hint else suggest(key, allowed)
            raise mapping.key_error(key, f"unknown key '{key}'{close}; valid keys here: "
                                         f"{', '.join(map(str, allowed))}")
    for key in required:
        if mapping.get(key) is None:
            what = "this mapping" if mapping.path else "a spec"
            raise SpecError(mapping.location, mapping.path, f"{what} needs a '{key}' entry")


def check_table(mapping: Mapping, table: Table) -> Mapping:
    """Check every key of `mapping` against `table` and fill in the defaults, in place: a key
    left out and a key given as null both become the default."""
    check_keys(mapping, table.names, [key.name for key in table.keys if key.required],
               table.elsewhere)
    for key in table.keys:
        value = mapping.get(key.name)
        if value is None:
            default = _default_value(key, mapping)
            if default is not None or key.name in mapping:
                mapping.set(key.name, default, mapping.location)
        else:
            mapping[key.name] = key.kind.check(value, mapping, key.name)
    for rule in table.checks:
        rule(mapping)
    return mapping


def _default_value(key: Key, mapping: Mapping):
    if isinstance(key.kind, Section) and not key.kind.optional:
        return check_table(Mapping(location=mapping.location, path=mapping.child_path(key.name)),
                           key.kind.table)
    return key.default


class Section(Type):
    """A nested mapping with its own table. `optional`: left out, it is off (pretrain,
    early_stopping); otherwise left out it is its table's defaults (data.preprocess)."""

    def __init__(self, table: Table, optional: bool = False):
        self.table, self.optional = table, optional
        self.words = "a mapping"
        self.example, self.wrong = dict(table.example), 5

    def check(self, value, container, key):
        return check_table(check_mapping(value, container, key), self.table)

    def schema(self) -> dict:
        return table_schema(self.table)


def table_schema(table: Table) -> dict:
    """The JSON Schema of a table's mapping: exactly its keys, each typed, null allowed (null
    is the default). Nothing is required: a schema sees one file, before `extends` merges."""
    properties = {}
    for key in table.keys:
        schema = key.kind.schema()
        properties[key.name] = _nullable(schema) if schema else schema
        if key.doc:
            properties[key.name] = {"description": key.doc, **properties[key.name]}
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    return {"description": table.doc, **schema} if table.doc else schema


def _nullable(schema: dict) -> dict:
    if isinstance(schema.get("type"), str):
        return {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        return {"enum": [*schema["enum"], None]} if None not in schema["enum"] else schema
    return {"anyOf": [schema, {"type": "null"}]}
