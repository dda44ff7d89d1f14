"""The `zoo` command's subcommands: help, multiply-accumulates, pictures, the zoo table, the
schema. Training, evaluation and prediction are in test_training.py."""

import json
import re
import subprocess
import sys
from importlib.metadata import entry_points

import jsonschema
import keras
import pytest
import yaml

import zoo
from conftest import ROOT
from zoo import cli
from zoo.macs import model_macs

ALL_SPEC_FILES = sorted((ROOT / "specs").rglob("*.yaml"))  # templates too


def test_zoo_is_a_console_script():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "zoo"]
    assert script.value == "zoo.cli:main"


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_every_subcommand_explains_its_arguments_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: zoo {command}")
    assert f"\nexamples:\n  zoo {command}" in text
    assert "--verbose" in text


def test_python_m_zoo_summary_shows_multiply_accumulates():
    result = subprocess.run([sys.executable, "-m", "zoo", "summary", "specs/lenet.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # TensorFlow's start-up noise stays hidden
    assert ("Multiply-accumulates per example: 416,520 (417 k; convolutions, dense and "
            "recurrent layers)") in result.stdout.splitlines()


# --- multiply-accumulates ---------------------------------------------------------------------

PUBLISHED_MACS = {  # (our count, the published figure it must be within 3% of)
    # Caffe's bvlc_alexnet at 227x227, grouped conv2/4/5: 0.72 G (e.g. Netscope's analysis)
    "alexnet": (724_406_816, 0.72e9),
    # He et al. 2015, Table 1 (stride on the first 1x1 convolution, as here): 3.8 G
    "resnet50": (3_857_973_248, 3.8e9),
    # Simonyan & Zisserman 2015 (configuration D), commonly quoted as 15.5 G
    "vgg16": (15_470_264_320, 15.5e9),
}


@pytest.mark.parametrize("name", PUBLISHED_MACS)
def test_multiply_accumulates_match_published_figures(name):
    ours, published = PUBLISHED_MACS[name]
    assert model_macs(zoo.build_model(ROOT / "specs" / f"{name}.yaml")) == ours
    assert ours == pytest.approx(published, rel=0.03)
    keras.backend.clear_session()


def test_resnet50_with_the_stride_on_the_3x3_convolution_costs_4_1_g():
    """The 4.1 G often quoted for ResNet-50 (torchvision's 4.09) is 'v1.5', which strides in
    the 3x3 convolution of a bottleneck; moving the stride there gives exactly that."""
    model = zoo.build_model(ROOT / "specs" / "resnet50.yaml", [
        "model.blocks.bottleneck.layers[0].conv2d.strides=1",
        "model.blocks.bottleneck.layers[3].conv2d.strides=${strides}"])
    assert model_macs(model) == 4_089_184_256
    keras.backend.clear_session()


def test_multiply_accumulates_of_each_kind_of_layer():
    image = keras.Input((16, 16, 8))
    layers = {  # layer: multiply-accumulates counted by hand
        keras.layers.Conv2D(4, 3, padding="same", groups=2): 16 * 16 * 4 * 3 * 3 * 4,
        keras.layers.DepthwiseConv2D(3, strides=2, padding="same"): 8 * 8 * 8 * 3 * 3,
        keras.layers.SeparableConv2D(6, 3): 14 * 14 * (8 * 3 * 3 + 8 * 6),
        keras.layers.Conv2DTranspose(2, 3, strides=2): 16 * 16 * 8 * 3 * 3 * 2,
        keras.layers.Dense(5): 16 * 16 * 8 * 5,  # a dense layer at every position
        keras.layers.MaxPooling2D(): 0,
    }
    outputs = [layer(image) for layer in layers]
    model = keras.Model(image, outputs)
    assert model_macs(model) == sum(layers.values())
    from zoo.macs import layer_macs
    assert {layer.name: layer_macs(layer) for layer in layers} == {
        layer.name: count for layer, count in layers.items()}


def test_multiply_accumulates_of_recurrent_layers_and_wrappers():
    """Each time step applies the input kernel (in x gates*units) and the recurrent kernel
    (units x gates*units): gates are 4 for an LSTM, 3 for a GRU, 1 for a SimpleRNN."""
    from zoo.macs import layer_macs

    steps = keras.Input((10, 6))
    lstm = keras.layers.LSTM(8, return_sequences=True)
    gru = keras.layers.GRU(7, return_sequences=True)
    both = keras.layers.Bidirectional(keras.layers.SimpleRNN(4, return_sequences=True))
    each_step = keras.layers.TimeDistributed(keras.layers.Dense(5))
    simple = keras.layers.SimpleRNN(3)
    model = keras.Model(steps, simple(each_step(both(gru(lstm(steps))))))
    counted = {lstm: 10 * (6 * 32 + 8 * 32), gru: 10 * (8 * 21 + 7 * 21),
               both: 2 * 10 * (7 * 4 + 4 * 4), each_step: 10 * 8 * 5, simple: 10 * (5 * 3 + 3 * 3)}
    assert {layer.name: layer_macs(layer) for layer in counted} == {
        layer.name: count for layer, count in counted.items()}
    assert model_macs(model) == sum(counted.values())


# --- pictures of architectures ----------------------------------------------------------------


def test_resnet152_picture_is_stem_four_stages_and_head():
    from zoo.diagram import architecture_dot
    from zoo.graph import expand

    spec = zoo.load_spec(ROOT / "specs" / "resnet152.yaml")
    dot = architecture_dot(spec, expand(spec), zoo.build_model(spec))
    boxes = re.findall(r'^  "(\w+)" \[label="([^"]*)"', dot, re.MULTILINE)
    assert [name for name, _ in boxes] == ["image", "conv1", "bn1", "relu1", "pool1", "stage1",
                                           "stage2", "stage3", "stage4", "avg_pool",
                                           "predictions"]
    assert dict(boxes)["stage3"] == r"stage3\nstage: 36 × bottleneck\n(14, 14, 1024)\n" \
                                    r"40,726,528 params"
    assert dot.count(" -> ") == 10
    keras.backend.clear_session()


@pytest.mark.parametrize("extension", ["png", "svg"])
def test_zoo_plot_draws_a_picture(tmp_path, extension):
    picture = tmp_path / f"net.{extension}"
    assert cli.main(["plot", str(ROOT / "specs" / "resnet20.yaml"), "-o", str(picture),
                     "--expand", "stage1", "stage1_block1"]) == 0
    data = picture.read_bytes()
    assert data.startswith(b"\x89PNG") if extension == "png" else b"<svg" in data
    if extension == "svg":  # the expanded block's layers and its frame are there
        assert b"stage1_block1_conv1" in data and b"stage1_block1 (basic)" in data
        assert b"stage2_block1_conv1" not in data  # stage 2 stays one box


def test_zoo_plot_without_graphviz_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    code = cli.main(["plot", str(ROOT / "specs" / "lenet.yaml"), "-o", str(tmp_path / "x.png")])
    assert code == 2
    assert capsys.readouterr().err == (
        "error: Graphviz's `dot` program draws the pictures and is not installed; install it "
        "with `sudo apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` "
        "(macOS) or `conda install graphviz`, or write --output net.dot\n")


# --- the JSON Schema of the spec language -----------------------------------------------------


@pytest.fixture(scope="module")
def validator():
    from zoo.schema import spec_schema

    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current():
    from zoo.schema import schema_text

    assert (ROOT / "specs" / "spec.schema.json").read_text() == schema_text(), \
        "regenerate it: zoo schema -o specs/spec.schema.json"


def test_the_references_key_tables_are_the_section_tables():
    from zoo.schema import with_key_tables

    text = (ROOT / "docs" / "spec-reference.md").read_text()
    assert with_key_tables(text, "docs/spec-reference.md") == text, \
        "regenerate them: zoo schema --reference docs/spec-reference.md"


@pytest.mark.parametrize("path", ALL_SPEC_FILES, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_every_spec_validates_and_names_the_schema(path, validator):
    text = path.read_text()
    schema = "spec.schema.json" if path.parent.name == "specs" else "../spec.schema.json"
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={schema}"
    assert (path.parent / schema).resolve() == ROOT / "specs" / "spec.schema.json"
    assert list(validator.iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize("change, message", [
    (lambda s: s["train"].update(epohcs=3),
     "Additional properties are not allowed ('epohcs' was unexpected)"),
    (lambda s: s.update(modle=s.pop("model")),
     "Additional properties are not allowed ('modle' was unexpected)"),
    (lambda s: s["data"].update(augment={"flip": "sideways"}),
     "'sideways' is not one of ['horizontal', 'vertical', 'both', None]"),
    (lambda s: s["train"].update(batch_size=0), "0 is less than the minimum of 1"),
    (lambda s: s["train"].update(threads="all"),
     "'all' is not valid under any of the given schemas"),
])
def test_schema_rejects_misspelled_keys_and_bad_values(change, message, validator):
    spec = yaml.safe_load((ROOT / "specs" / "lenet.yaml").read_text())
    change(spec)
    assert [error.message for error in validator.iter_errors(spec)] == [message]


# --- the zoo table ----------------------------------------------------------------------------


def test_zoo_list_prints_every_spec(tmp_path, capsys):
    (tmp_path / "specs").mkdir()
    for name in ("lenet", "mlp"):
        (tmp_path / "specs" / f"{name}.yaml").write_text((ROOT / "specs" / f"{name}.yaml")
                                                         .read_text())
    results = tmp_path / "zoo.json"
    results.write_text(json.dumps({"lenet": {"dataset": "mnist_subset", "split": "test",
                                             "accuracy": 0.973, "command": "zoo train ..."}}))
    assert cli.main(["list", "--specs", str(tmp_path / "specs"), "--results", str(results)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "spec   family  parameters (trainable)    MACs  input    dataset  reached here",
        "-" * 90,
        "lenet  CNN                     61,706   417 k  28×28×1  mnist    97.3% "
        "(mnist_subset/test)",
        "mlp    MLP                  1,276,810  1.28 M  28×28×1  mnist    not trained here yet",
    ]


def test_zoo_list_update_replaces_only_the_table_between_the_markers(tmp_path):
    from zoo import catalog

    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{catalog.BEGIN_MARKER}\nold table\n{catalog.END_MARKER}\n"
                      "after\n")
    assert catalog.update_file(str(readme), "| new | table |")
    assert readme.read_text() == (f"# Title\n\n{catalog.BEGIN_MARKER}\n| new | table |\n"
                                  f"{catalog.END_MARKER}\nafter\n")
    assert not catalog.update_file(str(readme), "| new | table |")  # already current
    readme.write_text("no markers\n")
    with pytest.raises(zoo.SpecError) as caught:
        catalog.update_file(str(readme), "| new | table |")
    assert str(caught.value).startswith(f"{readme}: no markers for the generated part; put "
                                        "the lines")
