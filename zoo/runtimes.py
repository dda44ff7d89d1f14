"""An exported model as a function of raw images, whatever its format: the SavedModel of an
export folder, or the ONNX and LiteRT files converted beside it (`zoo convert`).

A runner takes a batch of uint8 images, as the export's signature does, and returns the
named outputs as NumPy arrays; evaluation, prediction and the conversion checks use every
format alike. ONNX Runtime and the LiteRT interpreter are imported only for their files.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import tensorflow as tf

from zoo.names import first_lines
from zoo.source import SpecError

FILE_FORMATS = {".onnx": "onnx", ".tflite": "litert"}
# What reads each file format, and the extra of keras-zoo that installs it.
READERS = {"onnx": ("onnxruntime", "onnx"), "litert": ("ai_edge_litert", "litert")}


def bad_export(directory: str, message: str) -> SpecError:
    return SpecError(None, "", f"{directory}: {message}")


def needs_package(module: str, extra: str, purpose: str) -> SpecError | None:
    """An error naming the install command when `module` is missing, else None."""
    if importlib.util.find_spec(module) is None:
        return SpecError(None, "", f"{purpose} needs the Python package {module}, which is not "
                                   f"installed: pip install 'keras-zoo[{extra}]'")
    return None


def load_saved_model(directory: str):
    """The SavedModel of an export directory, checked to have a serving_default signature."""
    if not os.path.isdir(directory):
        raise bad_export(directory, "no such export directory")
    if not os.path.exists(os.path.join(directory, "saved_model.pb")):
        raise bad_export(directory, "not a SavedModel (no saved_model.pb); give an export "
                                     "version such as exports/lenet/1, the spec's folder "
                                     "(exports/lenet) for its newest version, or a model.onnx "
                                     "or model.tflite file in a version")
    try:
        loaded = tf.saved_model.load(directory)
    except Exception as exc:  # TensorFlow reports damaged files with many exception types
        raise bad_export(directory, "the SavedModel cannot be loaded, it is damaged or "
                                    "incomplete (copy it again, or train again): "
                                    f"{first_lines(exc, 1)}") from None
    if "serving_default" not in loaded.signatures:
        raise bad_export(directory, "the SavedModel has no serving_default signature")
    return loaded


class Runner:
    """One signature of an exported model. `directory` is the export version it belongs to
    (its metadata.json and labels.txt); `input_shape` has no batch axis (None: any size)."""

    format: str
    directory: str
    input_name: str
    input_shape: tuple
    output_names: list

    def __call__(self, images: np.ndarray) -> dict:
        raise NotImplementedError


class SavedModelRunner(Runner):
    format = "saved_model"

    def __init__(self, directory: str, signature: str = "serving_default"):
        loaded = load_saved_model(directory)
        if signature not in loaded.signatures:
            raise bad_export(directory, f"the SavedModel has no '{signature}' signature")
        self.function = loaded.signatures[signature]
        self.directory = directory
        (self.input_name, spec), = self.function.structured_input_signature[1].items()
        self.input_shape = tuple(spec.shape[1:])
        self.output_names = list(self.function.structured_outputs)

    def __call__(self, images):
        outputs = self.function(**{self.input_name: tf.convert_to_tensor(images)})
        return {name: value.numpy() for name, value in outputs.items()}


class OnnxRunner(Runner):
    format = "onnx"

    def __init__(self, file: str):
        import onnxruntime

        self.session = onnxruntime.InferenceSession(file, providers=["CPUExecutionProvider"])
        source, = self.session.get_inputs()
        self.input_name = source.name
        self.input_shape = tuple(size if isinstance(size, int) else None
                                 for size in source.shape[1:])
        self.output_names = [output.name for output in self.session.get_outputs()]

    def __call__(self, images):
        values = self.session.run(self.output_names, {self.input_name: np.asarray(images)})
        return dict(zip(self.output_names, values))


class LiteRTRunner(Runner):
    format = "litert"

    def __init__(self, file: str):
        from ai_edge_litert.interpreter import Interpreter

        self.runner = Interpreter(model_path=file).get_signature_runner("serving_default")
        (self.input_name, details), = self.runner.get_input_details().items()
        self.input_shape = tuple(int(size) if size > 0 else None
                                 for size in details["shape_signature"][1:])
        self.output_names = list(self.runner.get_output_details())

    def __call__(self, images):
        return self.runner(**{self.input_name: np.asarray(images)})


def open_model(path: str, signature: str = "serving_default") -> Runner:
    """A runner of an export version folder (its SavedModel's `signature`), or of a `.onnx` or
    `.tflite` file inside one (their only signature is serving_default)."""
    kind = FILE_FORMATS.get(os.path.splitext(path)[1])
    if kind is None:
        return SavedModelRunner(path, signature)
    if not os.path.isfile(path):
        raise bad_export(path, "no such file")
    if signature != "serving_default":
        raise bad_export(path, f"a {kind} file has only the serving signature, not "
                               f"'{signature}'; give the export folder it was converted in")
    module, extra = READERS[kind]
    if problem := needs_package(module, extra, f"reading {path}"):
        raise problem
    try:
        runner = (OnnxRunner if kind == "onnx" else LiteRTRunner)(path)
    except Exception as exc:  # each runtime reports a damaged file its own way
        raise bad_export(path, f"the {kind} file cannot be loaded, it is damaged or not a "
                               f"model of this zoo: {first_lines(exc, 1)}") from None
    runner.directory = os.path.dirname(path) or "."
    return runner
