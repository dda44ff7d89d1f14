"""Every key of every section, tested from the section tables (zoo/sections.py): a good value
is taken, a value of the wrong type is a located error that says what was expected, a typo of
the key's name is an error that suggests it, and null is the key's default. A key added to a
table is tested here without a new test."""

import json
import re

import pytest

import zoo
from zoo.sections import LIMITS, MODEL, TABLES, TOP
from zoo.tables import REQUIRED, Section
from zoo.source import describe, plain

BASE = """\
model:
  inputs: {image: [8, 8, 1]}
  layers:
    - flatten
    - dense: {units: 16, activation: relu, name: hidden}
    - dense: {units: 10, activation: softmax, name: predictions}
data: {dataset: digits}
"""
TABLES_BY_PATH = {table.path: table for table in TABLES}
# The top level's `extends` is read before --set applies (a test of its own covers it); the
# model section's values are the graph language, tested by test_language and test_errors.
KEYS = [(table, key) for table in TABLES for key in table.keys
        if (table.path, key.name) != ("", "extends")]


def yaml_value(value) -> str:
    return json.dumps(value)  # JSON is YAML, and says a string is a string


def context(table) -> list:
    """--set assignments that make the table's mapping exist, with its required keys; a
    table of list items (train.stages[]) is the first item of a list."""
    parts = table.path.split(".") if table.path else []
    assignments = []
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        example = TABLES_BY_PATH[prefix].example if prefix in TABLES_BY_PATH else None
        if prefix.endswith("[]"):
            assignments.append(f"{prefix[:-2]}={yaml_value([example or {}])}")
        elif example:
            assignments.append(f"{prefix}={yaml_value(example)}")
    return assignments


def dotted(table, name) -> str:
    path = table.path.replace("[]", "[0]")
    return f"{path}.{name}" if path else name


def load(write_spec, table, *assignments):
    return zoo.load_spec(write_spec(BASE), [*context(table), *assignments])


def resolved(spec, table, name):
    value = spec.document
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted(table, name)):
        if part.startswith("["):
            value = value[int(part[1:-1])]
        else:
            value = value.get(part) if value is not None else None
    return plain(value)


@pytest.mark.parametrize("table, key", KEYS, ids=[dotted(t, k.name) for t, k in KEYS])
def test_a_good_value_is_taken(write_spec, table, key):
    if table is MODEL or (table is TOP and key.name == "model"):
        pytest.skip("the model's values are the graph language (test_language)")
    spec = load(write_spec, table, f"{dotted(table, key.name)}={yaml_value(key.example)}")
    assert contains(resolved(spec, table, key.name), key.example)


def contains(value, example) -> bool:
    """Whether `value` is `example`, where a mapping may hold more (the defaults filled in)."""
    if isinstance(example, dict):
        return isinstance(value, dict) and all(contains(value.get(k), v)
                                               for k, v in example.items())
    return value == example


@pytest.mark.parametrize("table, key", KEYS, ids=[dotted(t, k.name) for t, k in KEYS])
def test_a_value_of_the_wrong_type_says_what_was_expected(write_spec, table, key):
    path = dotted(table, key.name)
    with pytest.raises(zoo.SpecError) as caught:
        load(write_spec, table, f"{path}={yaml_value(key.kind.wrong)}")
    assert str(caught.value).startswith(f"--set {path}:1:1: {path}: expected {key.kind.words}, "
                                        f"received {describe(key.kind.wrong)}")


@pytest.mark.parametrize("table, key", KEYS, ids=[dotted(t, k.name) for t, k in KEYS])
def test_a_misspelt_key_is_refused_with_the_key_suggested(write_spec, table, key):
    typo = key.name + key.name[-1]
    path = dotted(table, typo)
    with pytest.raises(zoo.SpecError) as caught:
        load(write_spec, table, f"{path}={yaml_value(key.example)}")
    message = str(caught.value)
    assert message.startswith(f"--set {path}:1:1: {path}: unknown key '{typo}' (did you mean ")
    assert f"'{key.name}'" in message.split("did you mean")[1].split("?")[0]


@pytest.mark.parametrize("table, key", KEYS, ids=[dotted(t, k.name) for t, k in KEYS])
def test_null_is_the_default(write_spec, table, key):
    path = dotted(table, key.name)
    if key.default is REQUIRED:
        with pytest.raises(zoo.SpecError, match=f"needs a '{key.name}' entry"):
            load(write_spec, table, f"{path}=null")
        return
    spec = load(write_spec, table, f"{path}=null")
    value = resolved(spec, table, key.name)
    if isinstance(key.kind, Section) and not key.kind.optional:  # its keys' defaults
        defaults = {k.name: k.default for k in key.kind.table.keys
                    if k.default is not None and not isinstance(k.kind, Section)}
        assert {name: value[name] for name in defaults} == defaults
    else:
        assert value == key.default


def test_every_table_has_a_documented_key_of_each_name():
    for table in TABLES:
        names = [key.name for key in table.keys]
        assert len(names) == len(set(names)), table.path
        assert all(key.doc for key in table.keys), table.path
    assert len(LIMITS) == len({what for what, _, _ in LIMITS})
