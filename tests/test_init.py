"""Starting from weights (`init`), freezing layers and training in stages: fine-tuning and
transfer, declared in the spec."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from conftest import ROOT, TINY, kill_after_epochs, run
from zoo import cli
from zoo.weights import initial_weights

# TINY with a named hidden layer and a BatchNormalization, to freeze and to load
BASE = TINY.replace("    - dense: {units: 32, activation: relu}\n",
                    "    - dense: {units: 32, activation: relu, name: hidden}\n"
                    "    - batch_normalization: {name: bn}\n")


def weights_of(model):
    return {layer.name: [np.array(w) for w in layer.weights] for layer in model.layers
            if layer.weights}


def same(first, second):
    return all(np.array_equal(a, b) for a, b in zip(first, second)) and len(first) == len(second)


@pytest.fixture
def source(write_spec):
    """A Keras model with the layers, names and shapes of BASE, with random weights."""
    write_spec(BASE, "base.yaml")
    model = zoo.build_model("base.yaml")
    for layer in model.layers:
        layer.set_weights([np.random.default_rng(len(w.shape)).normal(size=w.shape)
                           .astype("float32") for w in layer.weights])
    return model


@pytest.mark.parametrize("file", ["source.keras", "source.weights.h5", "legacy.h5"])
def test_every_kind_of_source_loads_into_the_layers_of_the_same_name(write_spec, source,
                                                                   file):
    if file == "legacy.h5":  # the layout keras.applications ships its weights in
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(file, "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, source)
    elif file.endswith(".keras"):
        source.save(file)
    else:
        source.save_weights(file)
    spec = zoo.load_spec(write_spec(f"extends: base.yaml\ninit: {{from: {file}}}\n"))
    model = zoo.build_model(spec)
    plan = initial_weights(spec, model)
    assert sorted(plan.loaded) == ["bn", "hidden", "predictions"]
    assert (plan.skipped, plan.missing, plan.unused) == ([], [], [])
    plan.apply(model)
    expected, loaded = weights_of(source), weights_of(model)
    assert all(same(expected[name], loaded[name]) for name in expected)


def test_a_new_head_starts_fresh_and_the_report_says_so(write_spec, source):
    source.save("source.keras")
    spec = zoo.load_spec(write_spec("extends: base.yaml\ninit: {from: source.keras}\n"
                                    "model: {vars: {classes: 5}}\n"))
    plan = initial_weights(spec, zoo.build_model(spec))
    assert plan.report() == (
        "init: weights from source.keras: 2 layers (hidden, bn) loaded\n"
        "  started fresh, their shapes differ: predictions (source (32, 10), (10,), here "
        "(32, 5), (5,))")
    strict = zoo.load_spec(spec.file, ["init.strict=true"])
    with pytest.raises(zoo.SpecError) as caught:
        initial_weights(strict, zoo.build_model(strict))
    assert str(caught.value).startswith(
        "--set init.strict:1:1: init.strict: with strict: true every layer must load from the "
        "source and every layer of the source must be used:\ninit: weights from source.keras")


def test_only_the_named_layers_load_and_rename_maps_the_sources_names(write_spec, source):
    source.save("source.keras")
    spec = zoo.load_spec(write_spec(
        "extends: base.yaml\ninit: {from: source.keras, layers: [hidden]}\n"))
    assert sorted(initial_weights(spec, zoo.build_model(spec)).loaded) == ["hidden"]
    renamed = write_spec(BASE.replace("name: hidden", "name: features")
                         + "init: {from: source.keras, rename: {hidden: features}}\n", "r.yaml")
    spec = zoo.load_spec(renamed)
    assert sorted(initial_weights(spec, zoo.build_model(spec)).loaded) == [
        "bn", "features", "predictions"]


@pytest.mark.parametrize("init, message", [
    ("{from: nowhere.keras}", "spec.yaml:2:14: init.from: no such file or folder: nowhere.keras "
                              "(paths are relative to the working folder)"),
    ("{from: broken.keras}", "spec.yaml:2:14: init.from: cannot read weights from broken.keras: "
                             "a .keras file is a zip archive and this is none (damaged, or cut "
                             "short?)"),
    ("{from: notes.txt}", "spec.yaml:2:14: init.from: expected an export folder, a .keras file, "
                          "a Keras weights file (.weights.h5) or a legacy .h5 weights file, "
                          "received notes.txt"),
    ("{from: source.keras, layers: [hiden]}", "spec.yaml:2:37: init.layers[0]: no layer of the "
                                              "model matches 'hiden' (did you mean 'hidden'?); "
                                              "its layers: flatten, hidden, bn, predictions"),
    ("{from: source.keras, rename: {hiden: bn}}", "spec.yaml:2:37: init.rename.hiden: "
                                                  "source.keras has no layer 'hiden' (did you "
                                                  "mean 'hidden'?)"),
])
def test_a_missing_or_damaged_source_is_an_error_at_dry_run(write_spec, source, capsys, init,
                                                           message):
    source.save("source.keras")
    with open("broken.keras", "wb") as handle:
        handle.write(b"PK\x03\x04 not really a zip")
    with open("notes.txt", "w") as handle:
        handle.write("weights?")
    spec = write_spec(f"extends: base.yaml\ninit: {init}\n")
    assert cli.main(["summary", spec]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")


@pytest.mark.slow  # two trainings, a kill and a resume: about 50 s
def test_frozen_layers_keep_the_sources_weights_and_stages_resume(tmp_path):
    """Train the base, then fine-tune it in two stages: the head alone (the hidden layer and
    its BatchNormalization frozen, the statistics included), then everything; a kill in the
    second stage resumes there."""
    (tmp_path / "base.yaml").write_text(BASE)
    assert run("train.py", "base.yaml", "--set", "train.epochs=1", cwd=tmp_path).returncode == 0
    (tmp_path / "frozen.yaml").write_text(
        "extends: base.yaml\ninit: {from: exports/base}\n"
        "train: {epochs: 2, batch_size: 8, freeze: [hidden, bn]}\n")
    result = run("train.py", "frozen.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "init: weights from exports/base/1/model.keras: 3 layers (hidden, bn, predictions) " \
           "loaded" in result.stdout
    source = keras.saving.load_model(tmp_path / "exports" / "base" / "1" / "model.keras")
    tuned = keras.saving.load_model(tmp_path / "exports" / "frozen" / "1" / "model.keras")
    for name in ("hidden", "bn"):  # bit for bit, BatchNormalization's moving statistics too
        assert same(weights_of(source)[name], weights_of(tuned)[name]), name
    assert not same(weights_of(source)["predictions"], weights_of(tuned)["predictions"])

    (tmp_path / "staged.yaml").write_text(
        "extends: base.yaml\ninit: {from: exports/base}\ntrain:\n  batch_size: 8\n  stages:\n"
        "    - {epochs: 1, freeze: [hidden, bn]}\n"
        "    - {epochs: 6, optimizer: {adam: {learning_rate: 0.001}}}\n")
    command = [sys.executable, str(ROOT / "train.py"), "staged.yaml"]
    state = tmp_path / "exports" / "staged" / "checkpoint" / "stage-2" / "state.json"
    done, _, _ = kill_after_epochs(command, tmp_path, state, epochs=1)
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming stage 2/2 after epoch {done} of 6" in resumed.stdout
    assert "stage 1/2: epoch" not in resumed.stdout  # the finished stage is not trained again
    history = json.loads((tmp_path / "exports" / "staged" / "1" / "history.json").read_text())
    assert [len(history[phase]) for phase in ("stage-1", "stage-2")] == [1, 6]


def test_model_keras_loads_with_keras_alone(tmp_path):
    """The export's model.keras holds Keras's own layers where the zoo's are only faster; the
    zoo's own LRN and ChannelPadding need `import zoo.layers`, which Keras's error names."""
    (tmp_path / "base.yaml").write_text(BASE)
    assert run("train.py", "base.yaml", "--set", "train.epochs=1", cwd=tmp_path).returncode == 0
    script = ("import sys, keras\n"
              "model = keras.saving.load_model(sys.argv[1])\n"
              "assert 'zoo' not in sys.modules\n"
              "print(type(model.get_layer('bn')).__module__, model.count_params())\n")
    plain = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    loaded = subprocess.run([sys.executable, "-c", script, "exports/base/1/model.keras"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=plain)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["keras.src.layers.normalization.batch_normalization",
                                     str(zoo.build_model(tmp_path / "base.yaml").count_params())]


def test_keras_applications_resnet50_weights_give_the_same_outputs(tmp_path, monkeypatch):
    """keras.applications' ResNet50 saved as a Keras 3 weights file (matched by type and
    position) and as the legacy .h5 layout it ships (matched by name), loaded into the
    layer-for-layer spec: the outputs are Keras's, exactly."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    reference = keras.applications.ResNet50(weights=None)
    reference.save_weights("resnet50.weights.h5")
    with h5py.File("resnet50.h5", "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, reference)
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    expected = reference(images, training=False).numpy()
    for file in ("resnet50.weights.h5", "resnet50.h5"):
        spec = zoo.load_spec(ROOT / "specs" / "resnet50_keras.yaml", [f"init.from={file}"])
        model = zoo.build_model(spec)
        plan = initial_weights(spec, model)
        assert (len(plan.loaded), plan.skipped, plan.missing, plan.unused) == (107, [], [], [])
        plan.apply(model)
        np.testing.assert_array_equal(model(images, training=False).numpy(), expected)


@pytest.mark.slow  # a source and four target trainings, each a few epochs
def test_the_transfer_experiment_runs_and_tabulates(tmp_path):
    results = tmp_path / "transfer.jsonl"
    ran = subprocess.run([sys.executable, str(ROOT / "experiments" / "transfer.py"), "run",
                          "--seeds", "0", "--epochs", "2", "--source-epochs", "1",
                          "--per-class", "2", "--out", str(results)],
                         capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stderr
    (record,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert record["labels"] == 10 and record["test_images"] == 500
    assert all(0 <= record[arm] <= 1 for arm in ("scratch", "frozen", "two stages"))
    table = subprocess.run([sys.executable, str(ROOT / "experiments" / "transfer.py"), "table",
                            str(results)], capture_output=True, text=True, timeout=300)
    assert table.stdout.splitlines()[0] == "| start | 10 labels |"
