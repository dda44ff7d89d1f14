"""Every spec in specs/ builds into the model its paper describes (a new spec needs no test
edit)."""

import keras
import pytest

import zoo
from zoo import catalog
from conftest import ROOT, SPECS
from zoo.summary import check_expectations, parameter_counts


@pytest.fixture(scope="module", params=SPECS, ids=lambda path: path.stem)
def built(request):
    spec = zoo.load_spec(request.param)
    model = zoo.build_model(spec)
    yield spec, model
    keras.backend.clear_session()


def test_spec_declares_what_it_expects(built):
    spec, _ = built
    assert spec.expect.get("total_params") or spec.expect.get("trainable_params"), \
        f"{spec.file} should state its parameter count under `expect`"


def test_parameter_counts_and_output_shape_match_expect(built):
    spec, model = built
    assert check_expectations(spec, model) == []


README_TABLE = catalog.embedded_table((ROOT / "README.md").read_text())


def test_readme_zoo_table_row_is_current(built):
    """The README's zoo table is `zoo list --update README.md`'s output (checked row by row
    on the models built here; the rows' order and the header are checked below)."""
    spec, model = built
    results = catalog.read_results(ROOT / "results" / "zoo.json")
    row = catalog.markdown_row(catalog.catalog_row(spec, model, results))
    assert row in README_TABLE.splitlines(), "regenerate it: zoo list --update README.md"


def test_readme_zoo_table_lists_every_spec_in_order():
    lines = README_TABLE.splitlines()
    assert lines[:2] == catalog.markdown_table([]).splitlines()
    assert [line.split(" | ")[0].strip("|` ") for line in lines[2:]] == [p.stem for p in SPECS]


def test_layer_names_are_unique(built):
    _, model = built
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))


def test_spec_names_its_dataset_and_training_hyperparameters(built):
    spec, _ = built
    assert spec.data["dataset"]
    for key in ("batch_size", "epochs", "optimizer", "loss"):
        assert spec.train.get(key) is not None, f"{spec.file}: train.{key} is missing"


PAPER_COUNTS = {  # trainable parameters, from the papers and reference implementations
    "alexnet": 60_965_224, "resnet18": 11_689_512, "resnet34": 21_797_672,
    "resnet50": 25_557_032, "resnet101": 44_549_160, "resnet152": 60_192_808,
    "resnet20": 269_722, "resnet56": 853_018,
}


@pytest.mark.parametrize("name, trainable", PAPER_COUNTS.items())
def test_paper_parameter_counts(name, trainable):
    model = zoo.build_model(ROOT / "specs" / f"{name}.yaml")
    assert parameter_counts(model)["trainable_params"] == trainable
    keras.backend.clear_session()


def test_resnet_variants_are_short_extensions_of_one_template():
    for depth in (18, 34, 50, 101, 152):
        text = (ROOT / "specs" / f"resnet{depth}.yaml").read_text()
        assert "extends: templates/resnet.yaml" in text
        assert len(text.splitlines()) <= 6


def test_hierarchical_layer_names():
    names = {layer.name for layer in zoo.build_model(ROOT / "specs" / "resnet50.yaml").layers}
    assert {"stage3_block2_conv1", "stage1_block1_shortcut_conv", "stage4_block3_out"} <= names
    assert "stage1_block2_shortcut_conv" not in names  # only the first block projects


def test_resnet50_keras_reproduces_keras_applications_layer_for_layer():
    ours = zoo.build_model(ROOT / "specs" / "resnet50_keras.yaml")
    theirs = keras.applications.ResNet50(weights=None)

    def describe(model):
        layers = []
        for layer in model.layers[1:]:  # the input layers are named differently
            config = layer.get_config()
            config.pop("name")
            layers.append((layer.name, type(layer).__name__, config))
        return layers

    assert describe(ours) == describe(theirs)
    assert [(w.path, tuple(w.shape)) for w in ours.weights] == \
           [(w.path, tuple(w.shape)) for w in theirs.weights]
    assert ours.count_params() == theirs.count_params() == 25_636_712


def test_vgg16_matches_keras_applications():
    ours = zoo.build_model(ROOT / "specs" / "vgg16.yaml")
    theirs = keras.applications.VGG16(weights=None)
    assert [(layer.name, layer.count_params()) for layer in ours.layers[1:]
            if not isinstance(layer, keras.layers.Dropout)] == \
        [(layer.name, layer.count_params()) for layer in theirs.layers[1:]]
    assert ours.count_params() == theirs.count_params() == 138_357_544


@pytest.mark.slow  # 1,202 layers built: about 25 s
def test_resnet_1202_builds_with_the_papers_parameter_count(capsys):
    # He et al. 2015, Table 6: ResNet-1202 (n = 200) has 19.4M parameters; Keras walks the
    # graph recursively, one frame per layer, past Python's default limit (zoo.build)
    from zoo import cli

    assert cli.main(["summary", str(ROOT / "specs" / "resnet20.yaml"),
                     "--set", "model.vars.n=200"]) == 0
    out = capsys.readouterr().out
    assert "Trainable: 19,421,274" in out
    assert out.splitlines()[-1] == ("expect: not checked (it describes the model the files "
                                    "define; --set changed it)")
