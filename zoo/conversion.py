"""An export's model in the formats users deploy outside TensorFlow, written beside its
SavedModel and checked against it:

    onnx         model.onnx          tf2onnx; run by ONNX Runtime
    litert       model.tflite        TensorFlow's LiteRT converter; run by the LiteRT interpreter
    litert_int8  model_int8.tflite   the same, weights and activations quantized to int8 after
                                     training, calibrated on training images

Each file takes the raw uint8 images and applies the spec's preprocessing inside, as the
SavedModel's `serving_default` does: the function converted is the export's own (zoo.export
.endpoints) over the model in model.keras. It computes in float32 whatever precision training
used (neither runtime runs bfloat16 convolutions), so a model trained in mixed precision is
compared both with the same function in float32 (the conversion's error) and with the
SavedModel (what the precision changes).

The check runs the eval split's first images through both: a float file must agree within
TOLERANCE or the conversion is an error, which names the first layer whose output departs
if the model's layers can be compared. Files are written atomically; metadata.json records
each conversion and its differences.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
import yaml

from zoo.data import load_split
from zoo.evaluation import load_metadata
from zoo.export import endpoints, serving_model_of
from zoo.files import RunFailure, atomic_path, write_json_atomically
from zoo.layers import FASTER, with_layer_classes  # importing it registers the zoo's layers
from zoo.names import first_lines
from zoo.runtimes import needs_package, open_model
from zoo.source import SpecError

TOLERANCE = 1e-4  # the largest difference of any output allowed for a float32 file
CHECK_IMAGES = 100  # eval images every conversion is checked on
CALIBRATION_IMAGES = 200  # training images int8 quantization measures activation ranges on
ONNX_OPSET = 17


def missing_packages(formats) -> list:
    """Errors naming what to install for the formats whose converters are missing."""
    problems = (needs_package(module, FORMATS[kind].extra, f"export format {kind}")
                for kind in formats if kind in FORMATS for module in FORMATS[kind].packages)
    return [problem for problem in problems if problem]


def convert(directory: str, formats, log=print) -> dict:
    """Convert the export in `directory` to each of `formats` (keys of FORMATS), check each
    file against the SavedModel and record it in metadata.json; returns the records by format.
    A failed conversion raises RunFailure; the files converted before it stay, recorded."""
    if problems := missing_packages(formats):
        raise problems[0]
    saved_model = open_model(directory)
    metadata = load_metadata(directory)
    source = float32_serving(directory, metadata)
    images = dataset_images(metadata, metadata["dataset"]["eval_split"], CHECK_IMAGES)
    expected = {name: value.numpy() for name, value in source.function(images).items()}
    saved = saved_model(images)
    records = {kind: record for kind, record in (metadata.get("formats") or {}).items()
               if os.path.exists(os.path.join(directory, record["file"]))}  # still there
    for kind in formats:
        target = os.path.join(directory, FORMATS[kind].file)
        with atomic_path(target, suffix=os.path.splitext(target)[1]) as temporary:
            try:
                FORMATS[kind].write(source, temporary, metadata)
            except Exception as exc:  # each converter fails in its own way: say which failed
                raise RunFailure(f"{directory}: {FORMATS[kind].converter} cannot convert the "
                                 f"model to {kind}: {first_lines(exc, 1)}. The SavedModel is "
                                 f"unaffected; {_fallback(directory, kind)}") from None
            try:
                converted = open_model(temporary)(images)
            except SpecError as exc:  # the converter wrote what its runtime cannot run
                raise RunFailure(f"{directory}: {FORMATS[kind].converter} wrote a {kind} file its "
                                 f"runtime cannot run ({exc.message.split(': ', 1)[-1]}). "
                                 f"The SavedModel is unaffected; {_fallback(directory, kind)}") \
                    from None
            record = _compare(converted, expected, saved, kind, len(images))
            if not kind.endswith("int8") and record["max_abs_difference"] > TOLERANCE:
                raise _disagreement(directory, kind, record, source, images)
        records[kind] = record
        write_json_atomically(os.path.join(directory, "metadata.json"),
                              {**metadata, "formats": records})
        log(f"wrote {target}: {_describe(record)}")
    return records


@dataclass
class Convertible:
    """What a converter converts: a tf.function of one input and the model it calls."""

    model: keras.Model
    function: tf.types.experimental.PolymorphicFunction
    preprocess: tf.types.experimental.PolymorphicFunction | None = None


def float32_serving(directory: str, metadata: dict) -> Convertible:
    """The export's signatures over model.keras in float32."""
    model = float32_copy(keras.saving.load_model(os.path.join(directory, "model.keras"),
                                                 compile=False))
    with open(os.path.join(directory, "spec.yaml")) as handle:
        spec = yaml.safe_load(handle)
    names = list(metadata["outputs"])
    functions = endpoints(serving_model_of(model, metadata["outputs"]), names,
                          tuple(metadata["input"]["shape"][1:]),
                          ((spec.get("data") or {}).get("preprocess")) or {})
    return Convertible(model, functions["serving_default"], functions["preprocess"])


def float32_copy(model: keras.Model) -> keras.Model:
    """The same layers and weights computing in float32 (a model trained in mixed precision
    keeps its dtype policy in model.keras), with the zoo's grouped Conv2D: a convolution per
    group, which the converters read (Keras's own compiles them with XLA, which they cannot)."""
    return with_layer_classes(model, FASTER, dtype="float32")


def dataset_images(metadata: dict, split: str, count: int) -> np.ndarray:
    """The first `count` raw images of a split of the export's dataset, as one batch."""
    raw, _ = load_split(metadata["dataset"]["name"], split)
    images = [image.numpy() for image, _ in raw.take(count)]
    if len({image.shape for image in images}) > 1:  # photos of several sizes: the first size
        images = [image for image in images if image.shape == images[0].shape]
    return np.stack(images)


def _to_onnx(source: Convertible, file: str, metadata: dict) -> None:
    import tf2onnx

    tf2onnx.convert.from_function(source.function, input_signature=source.function
                                  .input_signature, opset=ONNX_OPSET, output_path=file)


def _to_litert(source: Convertible, file: str, metadata: dict, int8: bool = False) -> None:
    # From a SavedModel of the float32 function: the converter freezes its variables there
    # (converted from the function itself they stay resource variables LiteRT cannot read).
    with tempfile.TemporaryDirectory() as folder:
        archive = keras.export.ExportArchive()
        archive.track(source.model)
        archive.add_endpoint("serving_default", source.function)
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        if int8:
            calibration = dataset_images(metadata, metadata["dataset"]["train_split"],
                                         CALIBRATION_IMAGES)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image[np.newaxis]]
                                                        for image in calibration)
        with open(file, "wb") as handle:
            handle.write(converter.convert())


@dataclass(frozen=True)
class Format:
    file: str  # its name in the export's version folder
    converter: str  # what writes it, as errors name it
    write: object  # (source, file, metadata) -> None
    packages: tuple  # the modules converting and checking it need
    extra: str  # the keras-zoo extra that installs them


LITERT_CONVERTER = "TensorFlow's LiteRT converter"
FORMATS = {
    "onnx": Format("model.onnx", "tf2onnx", _to_onnx, ("tf2onnx", "onnxruntime"), "onnx"),
    "litert": Format("model.tflite", LITERT_CONVERTER, _to_litert, ("ai_edge_litert",),
                     "litert"),
    "litert_int8": Format("model_int8.tflite", LITERT_CONVERTER,
                          functools.partial(_to_litert, int8=True), ("ai_edge_litert",),
                          "litert"),
}


def _compare(converted: dict, expected: dict, saved: dict, kind: str, count: int) -> dict:
    """How far the converted file's outputs are from the float32 function's and the
    SavedModel's (the largest absolute difference of any output), and how often its top
    class is the SavedModel's."""
    def largest(reference):
        return max(float(np.abs(converted[name] - reference[name]).max()) for name in reference)

    record = {"file": FORMATS[kind].file, "checked_on_images": count,
              "max_abs_difference": largest(expected),
              "max_abs_difference_to_saved_model": largest(saved)}
    if "probabilities" in saved:
        record["same_top_class"] = float(np.mean(converted["probabilities"].argmax(-1)
                                                 == saved["probabilities"].argmax(-1)))
    return record


def _describe(record: dict) -> str:
    text = (f"largest difference from the float32 model {record['max_abs_difference']:.2g}, "
            f"from the SavedModel {record['max_abs_difference_to_saved_model']:.2g}")
    if "same_top_class" in record:
        text += f"; the same top class on {record['same_top_class']:.1%}"
    return f"{text} of {record['checked_on_images']} eval images"


def _disagreement(directory, kind, record, source: Convertible, images) -> RunFailure:
    inputs = source.preprocess(images[:8])["input"].numpy()
    where = first_departing_layer(source.model, inputs, kind)
    layer = f"; the first layer whose output departs is '{where}'" if where else ""
    return RunFailure(
        f"{directory}: the {kind} file does not compute what the SavedModel computes: its "
        f"outputs differ by up to {record['max_abs_difference']:.3g} (allowed: {TOLERANCE:g})"
        f"{layer}. The file was not written; the SavedModel is unaffected; "
        f"{_fallback(directory, kind)}")


def _fallback(directory: str, kind: str) -> str:
    other = "litert" if kind == "onnx" else "onnx"
    return f"serve the SavedModel, or try the other format: zoo convert {directory} --to {other}"


def first_departing_layer(model: keras.Model, inputs: np.ndarray, kind: str) -> str | None:
    """The first of the model's layers whose output departs from TensorFlow's by more than
    TOLERANCE (relative to its size) on `inputs` (preprocessed images) when the model, with
    every layer's output an output, is converted to `kind`."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    spec = tf.TensorSpec((None, *inputs.shape[1:]), tf.float32, name="input")
    function = tf.function(lambda x: {layer.name: tf.cast(output, tf.float32) for layer, output
                                      in zip(layers, probe(x, training=False))},
                           input_signature=[spec])
    expected = {name: value.numpy() for name, value in function(inputs).items()}
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, FORMATS[kind].file)
        FORMATS[kind].write(Convertible(probe, function), file, None)
        converted = open_model(file)(inputs)
    for layer in layers:
        scale = max(1.0, float(np.abs(expected[layer.name]).max()))
        if np.abs(converted[layer.name] - expected[layer.name]).max() > TOLERANCE * scale:
            return layer.name
    return None
