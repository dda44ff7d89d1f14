"""ONNX and LiteRT exports: written at the end of training (export.formats) or by `zoo convert`,
checked against the SavedModel, and read by `zoo evaluate` and `zoo predict` as the folder is.

The files are checked here with ONNX Runtime and the LiteRT interpreter directly, not through
the zoo's runners, on the eval split's first 100 images."""

import json

import numpy as np
import pytest

from conftest import ROOT, run, zoo_command

FLOAT_FORMATS = {"onnx": "model.onnx", "litert": "model.tflite"}


def eval_images(count=100):
    from zoo.data import load_split

    raw, _ = load_split("mnist_subset", "test")
    return np.stack([image.numpy() for image, _ in raw.take(count)])


def outputs_of(file, images):
    """A converted file's probabilities, from its own runtime."""
    if file.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        return session.run(["probabilities"], {"image": images})[0]
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(file)).get_signature_runner()(image=images)[
        "probabilities"]


def train_one_epoch(spec, folder, *settings):
    result = run("train.py", ROOT / "specs" / f"{spec}.yaml", "--output", "exports",
                 "--results", "", "--set", "data.dataset=mnist_subset", "--set", "train.epochs=1",
                 *(part for setting in settings for part in ("--set", setting)), cwd=folder,
                 timeout=600)
    assert result.returncode == 0, result.stderr
    return folder / "exports" / spec / "1", result.stdout


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """LeNet trained for one epoch in float32 with every format, as a spec asks for them."""
    return train_one_epoch("lenet", tmp_path_factory.mktemp("lenet"), "train.precision=float32",
                           "export.formats=[saved_model, onnx, litert, litert_int8]")


@pytest.mark.parametrize("spec", ["lenet", pytest.param("resnet20", marks=pytest.mark.slow)])
def test_one_epoch_models_convert_and_agree_with_the_saved_model_within_1e4(spec, lenet,
                                                                             tmp_path):
    import tensorflow as tf

    version, stdout = lenet if spec == "lenet" else train_one_epoch(
        spec, tmp_path, "train.precision=float32", "train.steps_per_epoch=10",
        "export.formats=[onnx, litert]")
    images = eval_images()
    saved = tf.saved_model.load(str(version)).signatures["serving_default"](
        image=tf.constant(images))["probabilities"].numpy()
    recorded = json.loads((version / "metadata.json").read_text())["formats"]
    for kind, name in FLOAT_FORMATS.items():
        difference = np.abs(outputs_of(version / name, images) - saved).max()
        assert difference <= 1e-4, (kind, difference)
        assert recorded[kind]["max_abs_difference_to_saved_model"] == pytest.approx(
            difference, abs=1e-6)
        assert recorded[kind]["checked_on_images"] == 100
        assert f"wrote exports/{spec}/1/{name}: largest difference" in stdout
    assert not [path.name for path in version.iterdir() if path.name.startswith(".")]


def test_int8_is_quantized_and_evaluate_reports_its_accuracy_change(lenet):
    from zoo.evaluation import evaluate_export

    version, _ = lenet
    float_size = (version / "model.tflite").stat().st_size
    assert (version / "model_int8.tflite").stat().st_size < float_size / 2  # int8 weights
    images = eval_images()
    int8 = outputs_of(version / "model_int8.tflite", images)
    assert 0 < np.abs(int8 - outputs_of(version / "model.tflite", images)).max() < 0.2

    folder = version.parents[2]
    quantized = run("evaluate.py", version / "model_int8.tflite", "--json", "int8.json",
                    cwd=folder)
    assert quantized.returncode == 0, quantized.stderr
    metrics = json.loads((folder / "int8.json").read_text())
    assert metrics["format"] == "litert"
    assert metrics["saved_model_accuracy"] == evaluate_export(str(version))["accuracy"]
    assert metrics["accuracy_change"] == pytest.approx(metrics["accuracy"]
                                                       - metrics["saved_model_accuracy"])
    assert "format               litert\n" in quantized.stdout
    assert (version / "confusion_matrix-mnist_subset-test-model_int8_tflite.png").exists()


def test_evaluate_and_predict_take_the_converted_files_as_they_take_the_folder(lenet):
    from PIL import Image

    from zoo.evaluation import evaluate_export
    from zoo.predict import Predictor

    version, _ = lenet
    folder = version.parents[2]
    Image.fromarray(eval_images(1)[0, :, :, 0]).save(folder / "digit.png")
    top = Predictor(str(version)).top_classes(str(folder / "digit.png"), 3)
    for name in FLOAT_FORMATS.values():
        metrics = evaluate_export(str(version / name))
        assert metrics["accuracy"] == metrics["saved_model_accuracy"]
        assert metrics["accuracy_change"] == 0.0
        from_file = Predictor(str(version / name)).top_classes(str(folder / "digit.png"), 3)
        assert [label for label, _ in from_file] == [label for label, _ in top]
        assert [p for _, p in from_file] == pytest.approx([p for _, p in top], abs=1e-4)
    predicted = zoo_command("predict", version / "model.tflite", "digit.png", "--top", "1",
                            cwd=folder)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines()[1].split()[-1] == top[0][0]


def test_zoo_convert_writes_a_format_into_an_existing_export(lenet, tmp_path):
    import shutil

    version = tmp_path / "lenet" / "1"
    shutil.copytree(lenet[0], version, ignore=shutil.ignore_patterns("model*.onnx", "*.tflite"))
    result = zoo_command("convert", tmp_path / "lenet", "--to", "onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (version / "model.onnx").exists() and not (version / "model.tflite").exists()
    assert list(json.loads((version / "metadata.json").read_text())["formats"]) == ["onnx"]


def test_a_file_that_disagrees_is_not_written_and_the_error_names_the_first_layer(
        lenet, tmp_path, monkeypatch):
    """With no difference allowed, the float32 rounding of the runtimes is a disagreement:
    the path a real one takes, down to finding the layer where the outputs part."""
    import shutil

    import zoo.conversion
    from zoo.files import RunFailure

    version = tmp_path / "1"
    shutil.copytree(lenet[0], version, ignore=shutil.ignore_patterns("model*.onnx", "*.tflite"))
    monkeypatch.setattr(zoo.conversion, "TOLERANCE", 0.0)
    with pytest.raises(RunFailure) as caught:
        zoo.conversion.convert(str(version), ["onnx"], log=lambda _: None)
    message = str(caught.value)
    assert message.startswith(f"{version}: the onnx file does not compute what the SavedModel "
                              "computes: its outputs differ by up to ")
    assert message.endswith(" (allowed: 0); the first layer whose output departs is 'conv1'. "
                            "The file was not written; the SavedModel is unaffected; serve the "
                            f"SavedModel, or try the other format: zoo convert {version} --to "
                            "litert")
    assert [path.name for path in version.iterdir() if ".onnx" in path.name] == []


@pytest.mark.parametrize("argument, message", [
    ("missing", "error: missing: no such export directory\n"),
    ("exports/lenet/1/model.onnx", "error: exports/lenet/1/model.onnx: give the export folder "
                                   "the file is in, which holds the SavedModel every format is "
                                   "converted from\n"),
])
def test_zoo_convert_bad_input_is_a_clear_error(lenet, argument, message):
    result = zoo_command("convert", argument, "--to", "onnx",
                 cwd=lenet[0].parents[2])
    assert (result.returncode, result.stderr) == (2, message)


def test_a_missing_runtime_names_what_to_install():
    from zoo.runtimes import needs_package

    assert str(needs_package("no_such_module_anywhere", "onnx", "export format onnx")) == (
        "export format onnx needs the Python package no_such_module_anywhere, which is not "
        "installed: pip install 'keras-zoo[onnx]'")
    assert needs_package("numpy", "onnx", "anything") is None


@pytest.mark.slow
def test_alexnet_with_lrn_and_grouped_convolutions_converts_and_agrees(tmp_path):
    """Keras compiles grouped convolutions with XLA, which no converter reads: the zoo's own
    grouped Conv2D (a convolution per group) is what is converted."""
    import onnx
    import tensorflow as tf

    version, _ = train_one_epoch("alexnet", tmp_path, "train.precision=float32",
                                 "train.steps_per_epoch=1", "train.batch_size=8",
                                 "export.formats=[onnx, litert]")
    operators = {node.op_type for node in onnx.load(str(version / "model.onnx")).graph.node}
    assert {"LRN", "Conv", "Split"} <= operators
    images = eval_images(20)
    saved = tf.saved_model.load(str(version)).signatures["serving_default"](
        image=tf.constant(images))["probabilities"].numpy()
    for name in FLOAT_FORMATS.values():
        assert np.abs(outputs_of(version / name, images) - saved).max() <= 1e-4


@pytest.mark.slow
def test_the_exports_benchmark_compares_every_format(lenet):
    result = run("benchmarks/exports.py", lenet[0], "--repeats", "2", cwd=lenet[0].parents[2])
    assert result.returncode == 0, result.stderr
    rows = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert rows == ["saved_model", "onnx", "litert", "litert_int8"]
