"""A trained model -> OUTPUT/<spec name>/<version>/, the layout TensorFlow Serving reads.

Each version directory holds the SavedModel (`saved_model.pb`, `variables/`)
and beside it `model.keras` (to train further), `spec.yaml` (the resolved
spec), `labels.txt`, `metadata.json` (input, outputs and which are images, the preprocessing,
dataset, training phases, versions),
`history.json`, `metrics.json` and `training.png` (loss and metrics per epoch).
The SavedModel's `serving_default` takes the raw images as the dataset yields
them (uint8) under the dataset's input name, applies the spec's preprocessing
inside, and returns named outputs; a second signature, `preprocess`, returns
just the preprocessed input. The signatures compute each batch normalization that follows a
convolution inside that convolution (zoo.layers.with_batch_norm_folded: the same outputs,
faster); model.keras keeps the network as trained.

A version is written into a hidden temporary directory and renamed into place
at the end: a crash leaves no half-written version, and two runs exporting at
once get two distinct versions (the rename fails for the second, which takes
the next number).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
import time

import keras
import tensorflow as tf
import yaml

from zoo.data import DataInfo, center_crops, preprocess, resize_method
from zoo.plots import plot_training_curves
from zoo.files import fsync_tree, write_failure
from zoo.layers import with_batch_norm_folded, with_stock_keras_layers
from zoo.source import SpecError, plain
from zoo.spec import Spec

INPUT_NAME = "image"
TEN_CROP = "ten_crop"  # the signature of exports whose preprocessing crops the center
STAGING_PREFIX = ".incomplete-"


def output_nodes(spec: Spec, model: keras.Model) -> dict:
    """Signature output name -> layer name, from `export.outputs` or the kind of model."""
    declared = spec.export.get("outputs")
    if declared:
        for key, node in declared.items():
            if node not in {layer.name for layer in model.layers}:
                raise declared.error(key, f"no layer named '{node}' in the model")
        return dict(declared)
    name = "reconstruction" if spec.train.get("target") == "input" else "probabilities"
    return {name: model.outputs[0]._keras_history.operation.name}


def image_outputs(model: keras.Model, nodes: dict) -> list:
    """The outputs that are images in the model input's units (an autoencoder's reconstruction):
    those of the input's shape, grey or RGB. `zoo predict` writes them as pictures."""
    input_shape = tuple(model.inputs[0].shape[1:])
    return [name for name, node in nodes.items()
            if tuple(model.get_layer(node).output.shape[1:]) == input_shape
            and input_shape[-1] in (1, 3)]


def existing_versions(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    return sorted(int(entry) for entry in os.listdir(directory) if entry.isdigit())


def export(spec: Spec, model: keras.Model, info: DataInfo, output: str, *, history, metrics,
           dataset: dict, warnings=(), fold_batch_norm: bool = True) -> str:
    """Write a new version; returns its directory. `warnings` go into metadata.json;
    `fold_batch_norm` false serves the batch normalizations as trained (serving_model_of)."""
    spec_directory = os.path.join(output, spec.name)
    os.makedirs(spec_directory, exist_ok=True)
    _remove_abandoned_staging(spec_directory)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=spec_directory)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the version from servers
    try:
        _write_version(staging, spec, model, info, history, metrics, dataset, list(warnings),
                       fold_batch_norm)
        return _publish(staging, spec_directory)
    except (OSError, tf.errors.OpError) as exc:  # a full disk shows up as either
        raise write_failure(f"the export into {spec_directory}", exc,
                            "No version was published and earlier ones are untouched; the "
                            "trained weights stay in the checkpoint, so the same command, run "
                            "again once there is room, exports without training again") from None
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _remove_abandoned_staging(spec_directory: str) -> None:
    """Staging directories of runs killed while exporting. Runs of one spec into one output
    export one at a time (`checkpoints.one_run_at_a_time`), so none of these is in use."""
    for entry in os.listdir(spec_directory):
        if entry.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(spec_directory, entry), ignore_errors=True)


def _publish(staging: str, spec_directory: str) -> str:
    while True:
        version = (existing_versions(spec_directory) or [0])[-1] + 1
        target = os.path.join(spec_directory, str(version))
        try:
            os.rename(staging, target)  # atomic; fails if another run took this number
            return target
        except OSError:
            if not os.path.exists(target):
                raise


def serving_model_of(model: keras.Model, nodes: dict, fold_batch_norm: bool = True
                     ) -> keras.Model:
    """The model with the signature's outputs: each named output is a layer's output; the
    batch normalizations that follow convolutions folded into them (ResNet-50 serves
    faster, benchmarks/serving.py) unless `fold_batch_norm` is false."""
    serving = keras.Model(model.inputs, {name: model.get_layer(node).output
                                         for name, node in nodes.items()})
    return with_batch_norm_folded(serving) if fold_batch_norm else serving


def endpoints(serving_model: keras.Model, names: list, image_shape, options: dict) -> dict:
    """The export's signatures as tf.functions of the raw uint8 images, by name:
    `serving_default` (preprocessing inside, float32 outputs `names` in that order),
    `preprocess` (just the preprocessed input) and, when the preprocessing crops the center,
    `ten_crop`."""
    input_shape = tuple(serving_model.inputs[0].shape[1:])
    raw_spec = tf.TensorSpec((None, *image_shape), tf.uint8, name=INPUT_NAME)

    @tf.function(input_signature=[raw_spec])
    def serve(image):
        outputs = serving_model(preprocess(image, input_shape, options), training=False)
        # float32 whatever precision the model computed in, so clients see one type
        return {name: tf.cast(outputs[name], tf.float32) for name in names}

    @tf.function(input_signature=[raw_spec])
    def preprocessed(image):
        return {"input": preprocess(image, input_shape, options)}

    functions = {"serving_default": serve, "preprocess": preprocessed}
    if options.get("center_crop"):
        @tf.function(input_signature=[raw_spec])
        def ten_crop(image):
            """AlexNet's ten-crop evaluation: the outputs averaged over the center and the four
            corners of the uncropped image and their mirror images."""
            uncropped = preprocess(image, input_shape, options, crop=False)
            crops = center_crops(uncropped, options["center_crop"], ten=True)
            outputs = [serving_model(tf.image.resize(crop, input_shape[:2], resize_method(
                options)), training=False) for crop in crops]
            return {name: tf.reduce_mean([tf.cast(output[name], tf.float32)
                                          for output in outputs], axis=0) for name in names}

        functions[TEN_CROP] = ten_crop
    return functions


def _write_version(directory, spec, model, info: DataInfo, history, metrics, dataset,
                   warnings, fold_batch_norm):
    nodes = output_nodes(spec, model)
    serving_model = serving_model_of(model, nodes, fold_batch_norm)
    archive = keras.export.ExportArchive()
    archive.track(serving_model)
    for name, function in endpoints(serving_model, list(nodes), info.image_shape,
                                    dict(plain(spec.data.get("preprocess") or {}))).items():
        archive.add_endpoint(name, function)
    archive.write_out(directory, verbose=False)
    # Keras's own layers where the zoo's are only faster, so model.keras loads with Keras
    # alone (the zoo's LRN and ChannelPadding, which Keras lacks, need `import zoo.layers`)
    with_stock_keras_layers(model).save(os.path.join(directory, "model.keras"))
    with open(os.path.join(directory, "spec.yaml"), "w") as handle:
        yaml.safe_dump(plain(spec.document), handle, sort_keys=False)
    with open(os.path.join(directory, "labels.txt"), "w") as handle:
        handle.write("".join(f"{name}\n" for name in info.class_names))
    metadata = {
        "spec": spec.name, "spec_file": spec.file, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "input": {"name": INPUT_NAME, "dtype": "uint8", "shape": [None, *info.image_shape]},
        "outputs": nodes, "target": spec.train.get("target") or "label",
        # what predict needs to turn image outputs back into pixels, from the export alone
        "image_outputs": image_outputs(model, nodes),
        "preprocess": {key: value for key, value in plain(spec.data.get("preprocess") or {})
                       .items() if key in ("rescale", "mean", "std")},
        "dataset": dataset, "class_names": info.class_names,
        # every phase in order (greedy stages, head, fine-tuning) with its last epoch's figures;
        # history.json has every epoch
        "phases": [{"name": name, "epochs": len(epochs),
                    **{key: value for key, value in epochs[-1].items() if key != "seconds"}}
                   for name, epochs in history.items() if epochs],
        "warnings": warnings,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
    }
    for name, value in (("metadata", metadata), ("history", history), ("metrics", metrics)):
        with open(os.path.join(directory, f"{name}.json"), "w") as handle:
            json.dump(value, handle, indent=2, default=float)
    plot_training_curves(history, os.path.join(directory, "training.png"),
                         f"{spec.name} on {dataset['name']}")
    fsync_tree(directory)


@contextlib.contextmanager
def removed_if_left_empty(output: str, spec_name: str):
    """OUTPUT/<spec name>/, made and checked writable now (a run fails before training, not
    after it, if its export cannot be written); if the block fails, the folders made here
    that are still empty are removed again."""
    directory = os.path.join(output, spec_name)
    made = [folder for folder in (output, directory) if not os.path.isdir(folder)]
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise SpecError(None, "--output", f"cannot write exports to {directory}: "
                                          f"{exc.strerror}") from None
    try:
        yield directory
    except BaseException:
        for folder in reversed(made):
            with contextlib.suppress(OSError):  # not empty: a checkpoint to resume from
                os.rmdir(folder)
        raise
