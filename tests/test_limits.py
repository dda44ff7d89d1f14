"""Each limit of the spec language (zoo.sections.LIMITS, the reference's table) holds at its
edge: the most it allows is taken, one more is a located error. A limit added to the table
without a test here fails `test_every_limit_is_tried_at_its_edge`."""

import pytest

import zoo
from zoo.graph import expand
from zoo.sections import (LIMITS, MAX_BLOCK_NESTING, MAX_EXTENDS_DEPTH, MAX_GIBBS_STEPS,
                          MAX_LAYERS, MAX_PAD, MAX_REPEAT, MAX_STEPS_PER_EXECUTION,
                          MAX_THREADS)
from zoo.expressions import MAX_EXPRESSION_LENGTH, MAX_STRING_LENGTH
from zoo.source import MAX_BYTES, MAX_DEPTH, MAX_INTEGER, MAX_NODES

MODEL = "model:\n  inputs: {image: [4]}\n  layers:\n    - flatten\n"
EDGES = {}  # what LIMITS calls a limit -> the test that tries its edge


def edge(what):
    def register(test):
        EDGES[what] = test.__name__
        return test
    return register


def refused(write_spec, text, sets=()):
    with pytest.raises(zoo.SpecError) as caught:
        expand(zoo.load_spec(write_spec(text), sets))
    return str(caught.value)


def taken(write_spec, text, sets=()):
    return expand(zoo.load_spec(write_spec(text), sets))


def test_every_limit_is_tried_at_its_edge():
    assert set(EDGES) == {what for what, _, _ in LIMITS}


@edge("a spec file's size")
def test_file_size(write_spec):
    padding = MAX_BYTES - len(MODEL) - 1
    taken(write_spec, MODEL + "#" * padding + "\n")
    assert refused(write_spec, MODEL + "#" * (padding + 1) + "\n") == (
        "spec.yaml:1:1: the file is larger than 2,000,000 bytes; a spec is a short text")


@edge("nesting of mappings and lists")
def test_nesting(write_spec):
    def nested(levels):  # the document, model and vars are 3 levels; lists make the rest
        lists = levels - 3
        return MODEL + "  vars: {deep: " + "[" * lists + "]" * lists + "}\n"

    taken(write_spec, nested(MAX_DEPTH))
    assert refused(write_spec, nested(MAX_DEPTH + 1)).endswith(
        f"nesting is deeper than {MAX_DEPTH} levels")


@edge("values in a file once YAML aliases are expanded")
def test_values(write_spec):
    def values(count):  # 7 values in MODEL, vars and its list make 2 more, then the items
        items = ", ".join(["1"] * (count - 9))
        return MODEL + f"  vars: {{many: [{items}]}}\n"

    taken(write_spec, values(MAX_NODES))
    assert refused(write_spec, values(MAX_NODES + 1)).endswith(
        "the document expands to more than 20,000 values (aliases included): refusing what "
        "looks like an alias bomb")


@edge("an integer")
def test_integer(write_spec):
    assert zoo.load_spec(write_spec(MODEL), [f"train.seed={MAX_INTEGER}"]).train["seed"] == \
        MAX_INTEGER
    assert refused(write_spec, MODEL, [f"train.seed={MAX_INTEGER + 1}"]) == (
        "--set train.seed:1:1: train.seed: an integer of 19 digits is larger than any size, "
        "count or seed a spec can use (at most 9,223,372,036,854,775,807)")


@edge("bases a spec extends, one over another")
def test_bases(write_spec):
    def chain(bases):
        write_spec(MODEL, f"base{bases}.yaml")
        for level in range(1, bases):
            write_spec(f"extends: base{level + 1}.yaml\n", f"base{level}.yaml")
        return "extends: base1.yaml\n"

    taken(write_spec, chain(MAX_EXTENDS_DEPTH))
    message = refused(write_spec, chain(MAX_EXTENDS_DEPTH + 1))
    assert message.startswith(f"base{MAX_EXTENDS_DEPTH}.yaml:1:10: extends: more than "
                              f"{MAX_EXTENDS_DEPTH} bases, one over another: spec.yaml -> ")


@edge("layers in a model")
def test_layers(write_spec):
    times = (MAX_LAYERS - 1) // 50  # flatten, then 999 blocks of 50 layers
    fifty = "{layers: [" + ", ".join(["relu"] * 50) + "]}"

    def layers(extra):
        return (MODEL.replace("  layers:\n", f"  blocks: {{fifty: {fifty}}}\n  layers:\n")
                + f"    - repeat: {{block: fifty, times: {times}}}\n" + "    - relu\n" * extra)

    at_most = MAX_LAYERS - 1 - 50 * times
    assert len(taken(write_spec, layers(at_most)).layers) == MAX_LAYERS
    assert refused(write_spec, layers(at_most + 1)).endswith(
        f"the model has more than {MAX_LAYERS:,} layers; is a repeat count too large?")


@edge("`times` of one `repeat`")
def test_repeat(write_spec):
    def repeat(times):
        return (MODEL.replace("  layers:\n", "  blocks: {one: {layers: [relu]}}\n  layers:\n")
                + f"    - repeat: {{block: one, times: {times}}}\n")

    assert len(taken(write_spec, repeat(MAX_REPEAT)).layers) == MAX_REPEAT + 1
    assert refused(write_spec, repeat(MAX_REPEAT + 1)) == (
        "spec.yaml:6:35: model.layers[1].repeat.times: expected at most 1,000, received 1,001")


@edge("blocks inside blocks")
def test_block_nesting(write_spec):
    def nested(depth):  # b1 uses b2 ... down to b{depth}, which holds one layer
        blocks = "".join(f"    b{level}: {{layers: [b{level + 1}]}}\n"
                         for level in range(1, depth))
        return ("model:\n  inputs: {image: [4]}\n  blocks:\n" + blocks
                + f"    b{depth}: {{layers: [flatten]}}\n  layers: [b1]\n")

    taken(write_spec, nested(MAX_BLOCK_NESTING))
    assert refused(write_spec, nested(MAX_BLOCK_NESTING + 1)).endswith(
        f"blocks nest more than {MAX_BLOCK_NESTING} deep (" + " -> ".join(
            f"b{level}" for level in range(1, MAX_BLOCK_NESTING + 2)) + ")")


@edge("an expression `${...}`")
def test_expression_length(write_spec):
    def expression(length):  # 1+1+...+1 with `length` characters
        return MODEL + f"    - dense: {{units: \"${{{'1+' * (length // 2) + '1'}}}\"}}\n"

    assert taken(write_spec, expression(MAX_EXPRESSION_LENGTH - 1)).layers[1].kwargs[
        "units"] == MAX_EXPRESSION_LENGTH // 2
    assert refused(write_spec, expression(MAX_EXPRESSION_LENGTH + 1)).endswith(
        f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters")


@edge("a string an expression makes")
def test_string_length(write_spec):
    def string(length):
        return (MODEL.replace("  layers:\n", f"  vars: {{s: {'a' * (length - 1)}}}\n  layers:\n")
                + "    - relu: {name: \"${s + 'b'}\"}\n")

    assert len(taken(write_spec, string(MAX_STRING_LENGTH)).layers[1].name) == \
        MAX_STRING_LENGTH
    assert refused(write_spec, string(MAX_STRING_LENGTH + 1)).endswith(
        f"the string is longer than {MAX_STRING_LENGTH:,} characters")


@edge("`data.augment.pad_crop`")
@edge("`train.threads`")
@edge("`pretrain.method.rbm.gibbs_steps`")
@edge("`train.steps_per_execution`")
@pytest.mark.parametrize("key, most, expected", [
    ("data.augment.pad_crop", MAX_PAD, "expected at most 1,000, received 1,001"),
    ("train.threads", MAX_THREADS, "expected auto or a number of threads from 1 to 1,024, "
                                   "received the integer 1025"),
    ("train.steps_per_execution", MAX_STEPS_PER_EXECUTION, "expected auto or a number of "
     "steps from 1 to 10,000, received the integer 10001"),
    ("pretrain.method.rbm.gibbs_steps", MAX_GIBBS_STEPS, "expected at most 100, received 101")])
def test_largest_value_of_a_key(write_spec, key, most, expected):
    context = ["pretrain.layers=[flatten]"] if key.startswith("pretrain") else []
    taken(write_spec, MODEL, [*context, f"{key}={most}"])
    assert refused(write_spec, MODEL, [*context, f"{key}={most + 1}"]) == (
        f"--set {key}:1:1: {key}: {expected}")
