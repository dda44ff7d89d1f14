"""Every malformed spec yields one located SpecError; the whole message is checked."""

import pytest

import zoo

MODEL = """\
model:
  inputs: {image: [28, 28, 1]}
  layers:
"""
BLOCK_A = """\
model:
  inputs: {image: [8]}
  blocks:
    a:
      params: {units: null}
      layers: [{dense: {units: '${units}'}}]
  layers:
"""
# A block with two outputs and one with two inputs (U-Net's skip connections).
SKIP_BLOCKS = """\
model:
  inputs: {image: [8, 8, 1]}
  blocks:
    contract:
      outputs: [down, skip]
      layers: [{conv2d: {name: skip, filters: 2, kernel_size: 1}}, {max_pooling2d: {name: down}}]
    expand:
      inputs: [below, skip]
      layers: [{up_sampling2d: {name: up, inputs: below}}, {concatenate: {inputs: [skip, up]}}]
  layers:
    - contract: {name: enc}
"""

CASES = {
    "empty file": (
        "",
        "spec.yaml:1:1: the file is empty; a spec is a YAML mapping with at least a 'model' "
        "section"),
    "not YAML": (
        "model: [unclosed\n",
        "spec.yaml:2:1: this is not valid YAML: while parsing a flow sequence expected ',' or ']', "
        "but got '<stream end>'"),
    "control character": (  # found by reliability/fuzz_specs.py: it used to escape as a traceback
        "model:\n  name: \"a\x1bb\"\n",
        "spec.yaml:2:11: this is not valid YAML: the control character U+001B is not allowed; "
        "remove it, or write it as the escape \"\\u001b\" inside a double-quoted string"),
    "not a mapping": (
        "- dense\n- flatten\n",
        "spec.yaml:1:1: a spec is a YAML mapping (keys such as 'model:'), received a list"),
    "unknown top-level key": (
        "modle:\n  inputs: {}\n",
        "spec.yaml:1:1: modle: unknown key 'modle' (did you mean 'model'?); valid keys here: "
        "extends, description, family, model, data, init, pretrain, train, export, expect"),
    "missing model": (
        "train: {epochs: 3}\n",
        "spec.yaml:1:1: a spec needs a 'model' entry"),
    "unknown layer": (
        MODEL + "    - flatten\n    - dense_layer: {units: 10}\n",
        "spec.yaml:5:7: model.layers[1].dense_layer: unknown layer or block 'dense_layer' "
        "(did you mean 'dense'?)"),
    "undefined reference": (
        MODEL + "    - flatten: {name: flat}\n    - dense: {units: 10, inputs: flta}\n",
        "spec.yaml:5:34: model.layers[1].dense.inputs: undefined node 'flta' (did you mean "
        "'flat'?); defined above: image, flat"),
    "cycle": (
        MODEL + "    - dense: {units: 10, name: a, inputs: b}\n"
                "    - dense: {units: 10, name: b, inputs: a}\n",
        "spec.yaml:4:43: model.layers[0].dense.inputs: node 'b' is defined below (line 5); a node "
        "can only take inputs from nodes above it, so the graph cannot have a cycle"),
    "self reference": (
        MODEL + "    - dense: {units: 10, name: a, inputs: a}\n",
        "spec.yaml:4:43: model.layers[0].dense.inputs: node 'a' cannot take itself as input"),
    "duplicate name": (
        MODEL + "    - flatten: {name: x}\n    - dense: {units: 10, name: x}\n",
        "spec.yaml:5:32: model.layers[1].dense.name: duplicate name 'x' (first defined at "
        "spec.yaml:4:23); every layer needs its own name"),
    "duplicate key": (
        MODEL + "    - dense: {units: 10, units: 20}\n",
        "spec.yaml:4:26: model.layers[0].dense.units: duplicate key 'units' (first given at "
        "line 4)"),
    "a block that uses itself through another": (
        "model:\n  inputs: {image: [8]}\n  blocks:\n    a:\n      layers: [b]\n"
        "    b:\n      layers: [a]\n  layers: [a]\n",
        "spec.yaml:7:16: model.blocks.b.layers[0].a: block 'a' uses itself (a -> b -> a); blocks "
        "cannot be recursive"),
    "repeat zero times": (
        BLOCK_A + "    - repeat: {block: a, times: 0, with: {units: 4}}\n",
        "spec.yaml:8:33: model.layers[0].repeat.times: expected a positive integer, received the "
        "integer 0"),
    "absurd repeat count": (
        BLOCK_A + "    - repeat: {block: a, times: 1000000, with: {units: 4}}\n",
        "spec.yaml:8:33: model.layers[0].repeat.times: expected at most 1,000, received 1,000,000"),
    "each list of the wrong length": (
        BLOCK_A + "    - repeat: {block: a, times: 3, each: {units: [4, 8]}}\n",
        "spec.yaml:8:50: model.layers[0].repeat.each.units: expected a list of 3 values (one per "
        "repetition), received a list of 2"),
    "an argument of the wrong kind": (
        MODEL + "    - conv2d: {filters: -3, kernel_size: 3}\n",
        "spec.yaml:4:16: model.layers[0].conv2d.filters: layer 'conv2d': Conv2D's argument "
        "'filters' takes a positive integer, received the integer -3"),
    "Keras refuses an argument": (
        MODEL + "    - conv2d: {filters: 8, kernel_size: [3, 3, 3]}\n",
        "spec.yaml:4:28: model.layers[0].conv2d.kernel_size: layer 'conv2d': Keras refused the "
        "arguments of Conv2D: The `kernel_size` argument must be a tuple of 2 integers. "
        "Received kernel_size=[3, 3, 3]"),
    "unknown initializer": (
        MODEL + "    - dense: {units: 3, kernel_initializer: {glorot_uniformm: {}}}\n",
        "spec.yaml:4:25: model.layers[0].dense.kernel_initializer: layer 'dense': unknown "
        "initializer 'glorot_uniformm' (did you mean 'glorot_uniform' or 'glorot_normal' or "
        "'random_uniform'?)"),
    "bad regularizer option": (
        MODEL + "    - dense: {units: 3, kernel_regularizer: {l2: {l2: -1}}}\n",
        "spec.yaml:4:25: model.layers[0].dense.kernel_regularizer: layer 'dense': Invalid value "
        "for argument l2: expected a non-negative float.Received: l2=-1"),
    "misspelled layer argument": (
        MODEL + "    - flatten\n    - dense: {units: 10, activaton: relu}\n",
        "spec.yaml:5:26: model.layers[1].dense.activaton: layer 'dense': Dense has no argument "
        "'activaton' (did you mean 'activation'?)"),
    "unknown precision": (
        MODEL + "    - flatten\ntrain: {precision: bfloat16}\n",
        "spec.yaml:5:20: train.precision: expected one of auto, float32, mixed_bfloat16, "
        "mixed_float16, received the string 'bfloat16' (did you mean 'mixed_bfloat16' or "
        "'mixed_float16' or 'float32'?)"),
    "xla neither auto nor a boolean": (
        MODEL + "    - flatten\ntrain: {xla: sometimes}\n",
        "spec.yaml:5:14: train.xla: expected one of auto, true, false, received the string "
        "'sometimes'"),
    "threads neither auto nor a count": (
        MODEL + "    - flatten\ntrain: {threads: all}\n",
        "spec.yaml:5:18: train.threads: expected auto or a number of threads from 1 to 1,024, "
        "received the string 'all'"),
    "unknown activation": (
        MODEL + "    - flatten\n    - dense: {units: 10, activation: rleu}\n",
        "spec.yaml:5:26: model.layers[1].dense.activation: layer 'dense': unknown activation "
        "'rleu' (did you mean 'relu' or 'relu6'?)"),
    "incompatible shapes in add": (
        MODEL + "    - conv2d: {filters: 8, kernel_size: 3, name: a}\n"
                "    - conv2d: {filters: 16, kernel_size: 3, name: b}\n"
                "    - add: {inputs: [a, b]}\n",
        "spec.yaml:6:7: model.layers[2].add: layer 'add': Keras could not apply it to its input(s) "
        "of shape (None, 26, 26, 8), (None, 24, 24, 16): Inputs have incompatible shapes. "
        "Received shapes (26, 26, 8) and (24, 24, 16)"),
    "python object tag": (
        MODEL + "    - !!python/object/apply:os.system ['echo hi']\n",
        "spec.yaml:4:7: model.layers[0]: the tag '!!python/object/apply:os.system' is not allowed: "
        "a spec holds plain data (strings, numbers, booleans, null, lists, mappings) and nothing "
        "in it is ever executed"),
    "Lambda layer": (
        MODEL + "    - lambda: {function: 'lambda x: x'}\n",
        "spec.yaml:4:7: model.layers[0].lambda: Lambda layers are refused: they would run code "
        "written in the file, and a spec never executes anything"),
    "a wrapper's inner layer with a misspelt argument": (
        MODEL + "    - reshape: {target_shape: [28, 28]}\n"
                "    - bidirectional: {layer: {lstm: {unitz: 64}}}\n",
        "spec.yaml:5:23: model.layers[1].bidirectional.layer: layer 'bidirectional': LSTM has no "
        "argument 'unitz' (did you mean 'units'?)"),
    "a wrapper's inner layer missing an argument": (
        MODEL + "    - reshape: {target_shape: [28, 28]}\n"
                "    - time_distributed: {layer: dense}\n",
        "spec.yaml:5:26: model.layers[1].time_distributed.layer: layer 'time_distributed': "
        "Dense needs the argument 'units'"),
    "a wrapper's unknown inner layer": (
        MODEL + "    - reshape: {target_shape: [28, 28]}\n"
                "    - bidirectional: {layer: {lstmm: {units: 4}}}\n",
        "spec.yaml:5:23: model.layers[1].bidirectional.layer: layer 'bidirectional': unknown "
        "layer 'lstmm' (did you mean 'lstm' or 'lstm_cell'?)"),
    "a call in an expression": (
        "model:\n  inputs: {image: [8]}\n  layers:\n"
        "    - dense: {units: '${__import__(\"os\").getpid()}'}\n",
        "spec.yaml:4:22: model.layers[0].dense.units: '__import__('os').getpid()' is not allowed "
        "in an expression: only names, literals, arithmetic, comparisons, and/or/not, "
        "'a if c else b' and indexing are (no calls or attributes)"),
    "undefined variable": (
        "model:\n  vars: {width: 3}\n  inputs: {image: [8]}\n  layers:\n"
        "    - dense: {units: '${widht}'}\n",
        "spec.yaml:5:22: model.layers[0].dense.units: undefined variable 'widht' (did you mean "
        "'width'?); defined here: width"),
    "negative epochs": (
        MODEL + "    - flatten\ntrain:\n  epochs: -3\n",
        "spec.yaml:6:11: train.epochs: expected a positive integer, received the integer -3"),
    "unknown optimizer": (
        MODEL + "    - flatten\ntrain:\n  optimizer: {sgdd: {learning_rate: 0.1}}\n",
        "spec.yaml:6:15: train.optimizer: unknown optimizer 'sgdd' (did you mean 'SGD'?)"),
    "missing block parameter": (
        BLOCK_A + "    - a: {}\n",
        "spec.yaml:8:10: model.layers[0].a: block 'a' needs a value for 'units' (it has no "
        "default)"),
    "unknown block parameter": (
        BLOCK_A + "    - a: {unit: 3}\n",
        "spec.yaml:8:11: model.layers[0].a.unit: block 'a' has no parameter 'unit' (did you mean "
        "'units'?); its parameters: units"),
    "a layer with its arguments not indented": (
        MODEL + "    - dense:\n      units: 10\n",
        "spec.yaml:4:7: model.layers[0]: a layer is one type mapped to its arguments, but this "
        "mapping has 2 keys (dense, units); indent the arguments under the type, e.g. "
        "'- dense: {units: 10}'"),
    "unknown output": (
        MODEL + "    - flatten: {name: flat}\n  outputs: [flta]\n",
        "spec.yaml:5:13: model.outputs[0]: undefined node 'flta' (did you mean 'flat'?)"),
    "a block output the block does not have": (
        SKIP_BLOCKS + "    - expand: {inputs: [enc, enc.skp]}\n",
        "spec.yaml:12:24: model.layers[1].expand.inputs: block 'contract' (here 'enc') has no "
        "output 'skp' (did you mean 'skip'?); its outputs: enc.down, enc.skip"),
    "an output of a block that has one": (
        BLOCK_A + "    - a: {name: first, units: 4}\n    - dense: {units: 2, inputs: first.out}\n",
        "spec.yaml:9:33: model.layers[1].dense.inputs: 'first' is a block 'a' with one output, "
        "named 'first' itself; a block returns several when it lists them (outputs: [...])"),
    "a block given too few inputs": (
        SKIP_BLOCKS + "    - expand: {}\n",
        "spec.yaml:12:15: model.layers[1].expand.inputs: block 'expand' takes 2 inputs (below, "
        "skip), received 1; give them in that order: inputs: [node, ...]"),
    "a block output naming no node": (
        SKIP_BLOCKS.replace("[down, skip]", "[down, skp]") + "    - flatten\n",
        "spec.yaml:5:23: model.blocks.contract.outputs[1]: undefined node 'skp' (did you mean "
        "'skip'?)"),
    "a block with output and outputs": (
        SKIP_BLOCKS.replace("outputs: [down, skip]", "outputs: [down, skip]\n      output: down")
        + "    - flatten\n",
        "spec.yaml:6:7: model.blocks.contract.output: a block has either `output` (the one node "
        "it returns) or `outputs` (several), not both"),
    "a block output listed twice": (
        SKIP_BLOCKS.replace("[down, skip]", "[down, down]") + "    - flatten\n",
        "spec.yaml:5:16: model.blocks.contract.outputs: 'down' is listed twice"),
    "a repeat of a block with two inputs": (
        SKIP_BLOCKS + "    - repeat: {block: expand, times: 2}\n",
        "spec.yaml:12:23: model.layers[1].repeat.block: a repeat chains one tensor through its "
        "blocks, and block 'expand' takes 2 inputs (below, skip); use it once per repetition "
        "instead: - expand: {inputs: [...]}"),
    "YAML alias bomb": (
        "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
        "spec.yaml:1:24: e[0][6][8][8][8]: the document expands to more than 20,000 values "
        "(aliases included): refusing what looks like an alias bomb"),
}


@pytest.mark.parametrize("text, message", CASES.values(), ids=CASES.keys())
def test_bad_spec_gives_one_located_message(write_spec, text, message):
    with pytest.raises(zoo.SpecError) as caught:
        zoo.build_model(write_spec(text))
    assert str(caught.value) == message


def test_spec_error_is_a_value_error():
    assert issubclass(zoo.SpecError, ValueError)


def test_extends_cycle(write_spec):
    write_spec("extends: spec.yaml\n", "base.yaml")
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec("extends: base.yaml\n"))
    assert str(caught.value) == ("base.yaml:1:10: extends: specs extend each other in a cycle: "
                                 "spec.yaml -> base.yaml -> spec.yaml")


BASE_LAYERS = """\
model:
  inputs: {x: [8]}
  layers:
    - dense: {name: hidden, units: 4}
    - dense: {name: skip, units: 4, inputs: x}
    - add: {name: sum, inputs: [hidden, skip]}
"""


@pytest.mark.parametrize("edits, message", [
    ("{hiden: null}", "spec.yaml:2:18: model.layers.hiden: the base's layers have no layer named "
                      "'hiden' (did you mean 'hidden'?); named layers there: hidden, skip, sum"),
    ("{skip: null}", "spec.yaml:2:24: model.layers.skip: layer 'skip' is dropped, but 'sum' "
                     "(base.yaml:6:32) takes it as input; change 'sum' too, e.g. sum: {add: "
                     "{inputs: ...}}, or drop it"),
    ("{sum: [add]}", "spec.yaml:2:23: model.layers.sum: expected a layer to merge into 'sum', "
                     "such as {add: {...}}, or null to drop it, received a list"),
    ("{sum: {add: 5}}", "spec.yaml:2:29: model.layers.sum.add: expected the arguments of 'add' "
                        "as a mapping, received the integer 5"),
])
def test_editing_the_base_layers_by_name(write_spec, edits, message):
    write_spec(BASE_LAYERS, "base.yaml")
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec(f"extends: base.yaml\nmodel: {{layers: {edits}}}\n"))
    assert str(caught.value) == message


def test_layer_edits_with_no_base_list_to_edit(write_spec):
    write_spec(BASE_LAYERS, "base.yaml")
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec("extends: base.yaml\nmodel:\n  blocks:\n    b:\n"
                                 "      layers: {conv1: null}\n"))
    assert str(caught.value) == ("spec.yaml:5:15: model.blocks.b.layers: a mapping of layer "
                                 "names edits the list of layers of a spec this one extends, "
                                 "and no base spec has model.blocks.b.layers to edit; write the "
                                 "layers as a list")


def test_extends_a_missing_file(write_spec):
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec("extends: base.yaml\n"))
    assert str(caught.value) == ("spec.yaml:1:10: extends: the base spec 'base.yaml' does not "
                                 "exist (paths are relative to spec.yaml)")


def test_extends_a_name_longer_than_the_system_allows(write_spec):
    # found by reliability/fuzz_specs.py: it used to escape as OSError "File name too long"
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec(f"extends: base{'0' * 5000}.yaml\n"))
    assert str(caught.value) == (f"spec.yaml:1:10: extends: the base spec 'base{'0' * 73}...' does "
                                 "not exist (paths are relative to spec.yaml)")


def test_missing_spec_file(write_spec):
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec("nowhere.yaml")
    assert str(caught.value) == "nowhere.yaml: no such spec file"


def test_deep_nesting_is_refused(write_spec):
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec("model: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert str(caught.value).endswith(": nesting is deeper than 64 levels")
    assert str(caught.value).startswith("spec.yaml:1:")


def test_recursive_alias_is_refused(write_spec):
    with pytest.raises(zoo.SpecError) as caught:
        zoo.load_spec(write_spec("model: &a [*a]\n"))
    assert str(caught.value).endswith(": nesting is deeper than 64 levels")
