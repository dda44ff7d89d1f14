"""The spec language: DAGs, blocks, repeat, when, defaults, extends, --set, expressions."""

import numpy as np
import pytest

import zoo
from conftest import ROOT
from zoo.expressions import ExpressionError, evaluate
from zoo.graph import expand


def layer_names(model):
    return [layer.name for layer in model.layers]


def test_layers_apply_in_order_and_take_keras_names_in_any_spelling(write_spec):
    model = zoo.build_model(write_spec("""
        model:
          inputs: {image: [28, 28, 1]}
          layers:
            - Conv2D: {filters: 4, kernel_size: 3}
            - max_pooling2d
            - flatten:
            - Dense: {units: 10, activation: softmax}
    """))
    assert layer_names(model) == ["image", "conv2d", "max_pooling2d", "flatten", "dense"]
    assert model.output_shape == (None, 10)


def test_auto_names_are_scoped_and_stable(write_spec):
    text = """
        model:
          inputs: {x: [8]}
          layers:
            - dense: {units: 4}
            - dense: {units: 4}
            - dense: {units: 4, name: head}
    """
    first = layer_names(zoo.build_model(write_spec(text)))
    second = layer_names(zoo.build_model(write_spec(text)))
    assert first == second == ["x", "dense", "dense_1", "head"]


def test_skip_connections_several_inputs_and_outputs(write_spec):
    model = zoo.build_model(write_spec("""
        model:
          inputs:
            image: [8]
            extra: {shape: [3]}
          layers:
            - dense: {units: 8, name: a}
            - dense: {units: 8, name: b}
            - add: {name: skip, inputs: [a, b]}
            - concatenate: {name: joined, inputs: [skip, extra]}
            - dense: {units: 2, name: left}
            - dense: {units: 5, name: right, inputs: joined}
          outputs: [left, right]
    """))
    assert [tensor.name for tensor in model.inputs] == ["image", "extra"]
    assert [tuple(out.shape) for out in model.outputs] == [(None, 2), (None, 5)]
    left, right = model([np.ones((1, 8), "float32"), np.ones((1, 3), "float32")])
    assert left.shape == (1, 2) and right.shape == (1, 5)


SKIPS = """
    model:
      inputs: {image: [8, 8, 1]}
      blocks:
        contract:
          params: {filters: null}
          outputs: [down, skip]
          layers:
            - conv2d: {name: skip, filters: "${filters}", kernel_size: 3, padding: same}
            - max_pooling2d: {name: down}
        expand:
          inputs: [below, skip]
          layers:
            - up_sampling2d: {name: up, inputs: below}
            - concatenate: {name: concat, inputs: [skip, up]}
      layers:
"""


def inbound(model, layer_name):
    """The names of the layers whose outputs a layer takes."""
    return [tensor._keras_history.operation.name
            for tensor in model.get_layer(layer_name)._inbound_nodes[0].input_tensors]


def test_a_block_returns_several_outputs_and_takes_several_inputs(write_spec):
    model = zoo.build_model(write_spec(SKIPS + """
        - contract: {name: enc, filters: 4}
        - conv2d: {name: bottom, filters: 2, kernel_size: 1}
        - expand: {name: dec, inputs: [bottom, enc.skip]}
      outputs: [dec, enc.skip]
    """))
    assert inbound(model, "bottom") == ["enc_down"]  # the instance stands for its first output
    assert inbound(model, "dec_up") == ["bottom"]
    assert inbound(model, "dec_concat") == ["enc_skip", "dec_up"]
    assert [tuple(out.shape) for out in model.outputs] == [(None, 8, 8, 6), (None, 8, 8, 4)]


def test_the_copies_of_a_repeat_have_their_outputs_too(write_spec):
    model = zoo.build_model(write_spec(SKIPS + """
        - repeat: {block: contract, name: enc, times: 2, with: {filters: 4}}
        - expand: {name: dec, inputs: [enc, enc2.skip]}
        - expand: {name: top, inputs: [dec, enc1.skip]}
    """))
    assert inbound(model, "enc2_skip") == ["enc1_down"]
    assert inbound(model, "dec_concat") == ["enc2_skip", "dec_up"]
    assert inbound(model, "top_concat") == ["enc1_skip", "top_up"]
    assert model.output_shape == (None, 8, 8, 12)


BLOCKS = """
    model:
      vars: {widths: [4, 8, 16]}
      inputs: {x: [10]}
      blocks:
        residual:
          params: {units: null, project: false}
          layers:
            - dense: {name: fc1, units: "${units}", activation: relu}
            - dense: {name: fc2, units: "${units}"}
            - dense: {name: shortcut, inputs: input, units: "${units}", when: "${project}"}
            - add: {name: add, inputs: [shortcut, fc2]}
        stage:
          params: {units: null, depth: 2}
          layers:
            - repeat:
                block: residual
                name: block
                times: "${depth}"
                with: {units: "${units}"}
                at: {1: {project: true}}
      layers:
        - repeat: {block: stage, name: stage, each: {units: "${widths}"}, at: {-1: {depth: 3}}}
"""


def test_under_mixed_precision_the_output_layers_compute_in_float32(write_spec):
    from zoo.devices import dtype_policy

    path = write_spec("""
        model:
          inputs: {x: [8]}
          layers:
            - dense: {units: 4, name: hidden}
            - dense: {units: 3, activation: softmax, name: probabilities}
            - dense: {units: 2, inputs: hidden, name: code, dtype: mixed_bfloat16}
          outputs: [probabilities, code]
    """)
    with dtype_policy("mixed_bfloat16"):
        mixed = zoo.build_model(path)
    assert {layer.name: layer.compute_dtype for layer in mixed.layers[1:]} == {
        "hidden": "bfloat16", "probabilities": "float32", "code": "bfloat16"}  # as the spec says
    assert [output.dtype for output in mixed.outputs] == ["float32", "bfloat16"]
    assert {layer.name: layer.compute_dtype for layer in zoo.build_model(path).layers[1:]} == {
        "hidden": "float32", "probabilities": "float32", "code": "bfloat16"}


def test_blocks_repeat_and_overrides_give_hierarchical_names(write_spec):
    names = layer_names(zoo.build_model(write_spec(BLOCKS)))
    assert {"stage1_block1_fc1", "stage1_block1_fc2", "stage1_block1_shortcut",
            "stage1_block1_add", "stage1_block2_fc1"} <= set(names)
    # `at: {1: ...}` projects only the first block of each stage; `-1` makes the last stage deeper
    assert [n for n in names if n.endswith("shortcut")] == [
        "stage1_block1_shortcut", "stage2_block1_shortcut", "stage3_block1_shortcut"]
    assert "stage3_block3_add" in names and "stage2_block3_add" not in names


def test_a_node_left_out_by_when_stands_for_its_input(write_spec):
    model = zoo.build_model(write_spec(BLOCKS))
    second_add = model.get_layer("stage1_block2_add")
    producers = [tensor._keras_history.operation.name for tensor in second_add.input]
    assert producers == ["stage1_block1_add", "stage1_block2_fc2"]


def test_defaults_apply_to_every_layer_of_a_type_and_yield_to_explicit_arguments(write_spec):
    model = zoo.build_model(write_spec("""
        model:
          inputs: {x: [8]}
          defaults: {dense: {units: 3, use_bias: false}}
          layers:
            - dense
            - dense: {units: 5, use_bias: true}
    """))
    first, second = model.layers[1:]
    assert (first.units, first.use_bias, second.units, second.use_bias) == (3, False, 5, True)


def test_initializers_regularizers_and_constraints_take_options_like_optimizers(write_spec):
    model = zoo.build_model(write_spec("""
        model:
          inputs: {x: [8]}
          layers:
            - dense:
                units: 3
                kernel_initializer: {variance_scaling: {scale: 16.0, distribution: uniform}}
                kernel_regularizer: {l2: {l2: 0.5}}
                kernel_constraint: max_norm
    """))
    dense = model.layers[1]
    initializer = dense.kernel_initializer.get_config()
    assert (initializer["scale"], initializer["distribution"]) == (16.0, "uniform")
    assert float(dense.kernel_regularizer.l2) == 0.5
    assert type(dense.kernel_constraint).__name__ == "MaxNorm"


def test_extends_overrides_values_and_keeps_the_rest(write_spec):
    write_spec("""
        model:
          vars: {units: 4}
          inputs: {x: [8]}
          layers: [{dense: {units: "${units}", name: out}}]
        train: {epochs: 10, batch_size: 32}
    """, "templates/base.yaml")
    spec = zoo.load_spec(write_spec("""
        extends: templates/base.yaml
        model:
          vars: {units: 7}
        train: {epochs: 2}
    """))
    assert (spec.name, spec.train["epochs"], spec.train["batch_size"]) == ("spec", 2, 32)
    assert zoo.build_model(spec).get_layer("out").units == 7


def test_errors_in_inherited_values_point_into_the_base_file(write_spec):
    write_spec("""
        model:
          inputs: {x: [8]}
          layers: [{dense: {units: "${units}"}}]
    """, "base.yaml")
    with pytest.raises(zoo.SpecError, match=r"^base.yaml:3:28: model.layers\[0\].dense.units: "
                                            r"undefined variable 'units'"):
        zoo.build_model(write_spec("extends: base.yaml\n"))


RESIDUAL = """
    model:
      inputs: {x: [8]}
      layers:
        - dense: {name: hidden, units: 8}
        - dense: {name: shortcut, units: 8, inputs: x}
        - add: {name: sum, inputs: [shortcut, hidden]}
        - dense: {name: out, units: 2, activation: softmax}
"""


def test_a_mapping_drops_named_layers_of_the_base_and_the_next_takes_the_one_above(write_spec):
    write_spec(RESIDUAL, "base.yaml")
    model = zoo.build_model(write_spec("extends: base.yaml\n"
                                       "model: {layers: {shortcut: null, sum: null}}\n"))
    assert layer_names(model) == ["x", "hidden", "out"]
    assert model.get_layer("out").input is model.get_layer("hidden").output


def test_a_mapping_merges_into_a_named_layer_or_replaces_it_keeping_its_name(write_spec):
    write_spec(RESIDUAL, "base.yaml")
    model = zoo.build_model(write_spec("""
        extends: base.yaml
        model:
          layers:
            out: {dense: {units: 3}}                          # the same type: merged
            sum: {multiply: {inputs: [shortcut, hidden]}}     # another type: replaced
    """))
    assert set(layer_names(model)) == {"x", "hidden", "shortcut", "sum", "out"}
    assert type(model.get_layer("sum")).__name__ == "Multiply"
    assert (model.get_layer("out").units, model.get_layer("out").activation.__name__) == (
        3, "softmax")


def test_plain_nets_are_the_resnets_without_their_shortcuts():
    # their parameter counts, equal, are checked with every spec's `expect` (test_specs.py)
    residual, plain = ([layer.name for layer in expand(zoo.load_spec(ROOT / "specs" / file)).layers]
                       for file in ("resnet20.yaml", "plain20.yaml"))
    shortcut_layers = {name for name in residual if name.endswith(
        ("_add", "_shortcut_pool", "_shortcut_pad"))}
    assert len(shortcut_layers) == 9 + 2 + 2  # an add per block, option A where stages stride
    assert plain == [name for name in residual if name not in shortcut_layers]


def test_set_overrides_any_value_with_yaml(write_spec):
    path = write_spec(BLOCKS)
    spec = zoo.load_spec(path, ["model.vars.widths=[2, 2]", "train.epochs=3"])
    names = layer_names(zoo.build_model(spec))
    assert "stage2_block3_add" in names and not any(n.startswith("stage3") for n in names)
    assert spec.train["epochs"] == 3


def test_bad_set_values_are_located_on_the_command_line(write_spec):
    path = write_spec(BLOCKS)
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(path, ["train.epochs=-1"])
    assert str(caught.value) == ("--set train.epochs:1:1: train.epochs: expected a positive "
                                 "integer, received the integer -1")
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(path, ["epochs"])
    assert str(caught.value) == ("--set:1:1: expected dotted.key=value (e.g. train.epochs=3), "
                                 "received 'epochs'")


@pytest.mark.parametrize("expression, value", [
    ("4 * filters", 256), ("filters / 2", 32), ("filters // 3", 21), ("filters % 10", 4),
    ("widths[-1]", 16), ("widths[::-1]", [16, 8, 4]), ("[filters, 1]", [64, 1]),
    ("stride > 1 and filters == 64", True), ("'proj' if stride > 1 else 'id'", "proj"),
    ("not true", False), ("-filters + 1.5", -62.5),
])
def test_expressions(expression, value):
    assert evaluate(expression, {"filters": 64, "stride": 2, "widths": [4, 8, 16]}) == value


@pytest.mark.parametrize("expression, message", [
    ("open('x')", "'open('x')' is not allowed in an expression"),
    ("filters.bit_length", "'filters.bit_length' is not allowed in an expression"),
    ("2 ** 100000", "'2 ** 100000' is not allowed in an expression"),
    ("'a' * 10", "cannot compute ''a' * 10' with 'a' and 10"),
    ("widths[7]", "'widths[7]': index 7 is out of range for a list of 3"),
    ("1 / 0", "'1 / 0': division by zero"),
    ("filters +", "'${filters +}' is not a valid expression"),
])
def test_expressions_refuse_code_and_report_mistakes(expression, message):
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, {"filters": 64, "widths": [4, 8, 16]})
    assert str(caught.value).startswith(message)


def test_text_interpolation(write_spec):
    model = zoo.build_model(write_spec("""
        model:
          vars: {stage: 3}
          inputs: {x: [8]}
          layers: [{dense: {units: 2, name: "conv${stage}_out"}}]
    """))
    assert model.layers[-1].name == "conv3_out"


def test_vars_use_the_vars_above_them_and_follow_a_change(write_spec):
    path = write_spec("""
        model:
          vars: {base: 16, width: "${base * 2}", widths: ["${base}", "${width}"]}
          inputs: {x: [8]}
          layers:
            - dense: {units: "${width}", name: wide}
            - dense: {units: "${widths[0]}", name: narrow}
    """)
    assert [zoo.build_model(path).get_layer(name).units for name in ("wide", "narrow")] == [32, 16]
    changed = zoo.build_model(path, ["model.vars.base=5"])
    assert [changed.get_layer(name).units for name in ("wide", "narrow")] == [10, 5]


@pytest.mark.parametrize("variables, message", [
    ('{width: "${base * 2}", base: 3}', "spec.yaml:2:17: model.vars.width: undefined variable "
     "'base'; defined here: none; 'base' is defined below it: a variable can use only the ones "
     "above it"),
    ('{base: 3, width: "${width * 2}"}', "spec.yaml:2:26: model.vars.width: undefined variable "
     "'width'; defined here: base; a variable cannot use itself"),
])
def test_a_var_that_uses_one_below_or_itself_is_a_located_error(write_spec, variables, message):
    path = write_spec(f"model:\n  vars: {variables}\n  inputs: {{x: [8]}}\n"
                      "  layers: [{dense: {units: 2}}]\n")
    with pytest.raises(zoo.SpecError) as caught:
        zoo.build_model(path)
    assert str(caught.value) == message


def test_numbers_are_read_as_yaml_1_2_reads_them():
    from zoo.source import parse_yaml

    text = "a: 1e-3\nb: -2E+4\nc: 0o17\nd: 1.0e-3\ne: 1e\nf: 10_000\n"
    assert parse_yaml(text, "x") == {"a": 0.001, "b": -20000.0, "c": 15, "d": 0.001,
                                     "e": "1e", "f": 10000}
