"""What an export makes of image files: a classifier's top classes (from its labels.txt), any
other model's outputs, its image outputs (an autoencoder's reconstruction) written as PNG
files. The export is its SavedModel, or a `.onnx` or `.tflite` file converted in it.

The serving signature says what it takes (name, shape, uint8) and what it returns;
each image is decoded, converted to the signature's channels and resized to its
size, as the training pipeline converted the dataset's images. Which outputs are images,
and the preprocessing to undo to turn them back into pixels, are in metadata.json.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from zoo.data import IMAGE_SUFFIXES
from zoo.files import atomic_path
from zoo.runtimes import bad_export, open_model
from zoo.source import SpecError


def image_files(paths) -> list[str]:
    """The files named, and the image files inside the folders named (sorted, recursively)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(path)
                           for name in names if name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise SpecError(None, "", f"{path}: the folder holds no image files "
                                          f"({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise SpecError(None, "", f"{path}: no such file or folder")
    return files


def picture_stems(files: list[str]) -> list[str]:
    """A name per input file for the pictures made from it: its name without the suffix, or,
    where two inputs would share that, its path below their common folder with '/' and '.'
    as '_' (photos/a.png and scans/a.png -> photos_a_png, scans_a_png)."""
    stems = [os.path.splitext(os.path.basename(file))[0] for file in files]
    if len(set(stems)) == len(stems):
        return stems
    common = os.path.commonpath([os.path.abspath(os.path.dirname(file)) for file in files])
    return [os.path.relpath(os.path.abspath(file), common).replace(os.sep, "_").replace(".", "_")
            for file in files]


def write_png(path: str, pixels: np.ndarray) -> None:
    """uint8 pixels [height, width, 1 or 3] as a PNG file, written atomically."""
    with atomic_path(path, ".png") as temporary, open(temporary, "wb") as handle:
        handle.write(tf.io.encode_png(pixels).numpy())


def shown(values: np.ndarray) -> str:
    """An output's values for the console: its shape and the numbers, long ones elided."""
    numbers = np.array2string(values.ravel(), precision=4, threshold=12, edgeitems=4,
                              max_line_width=10 ** 6)
    return f"{'x'.join(map(str, values.shape))} values {numbers}"


class Predictor:
    def __init__(self, path: str):
        self.serve = open_model(path)
        self.height, self.width, self.channels = self.serve.input_shape
        self.classifier = "probabilities" in self.serve.output_names
        directory = self.serve.directory
        if self.classifier:
            self.class_names = self._read(directory, "labels.txt").splitlines()
            return
        metadata = json.loads(self._read(directory, "metadata.json"))
        self.image_outputs = metadata.get("image_outputs", [])
        self.preprocess = metadata.get("preprocess", {})

    @staticmethod
    def _read(directory: str, name: str) -> str:
        try:
            with open(os.path.join(directory, name)) as handle:
                return handle.read()
        except OSError:
            raise bad_export(directory, f"{name} is missing; was this written by "
                                        "`zoo train`?") from None

    def load_image(self, file: str) -> tf.Tensor:
        """The image as the signature takes it: uint8, its channels, its size (if fixed)."""
        try:
            image = tf.io.decode_image(tf.io.read_file(file), expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            raise SpecError(None, "", f"{file}: not an image TensorFlow can read (PNG, JPEG, "
                                      "GIF or BMP)") from None
        if image.shape[-1] in (2, 4):  # grey or RGB with an alpha channel: drop it
            image = image[..., :-1]
        if self.channels == 1 and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        elif self.channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        if self.height and self.width and tuple(image.shape[:2]) != (self.height, self.width):
            resized = tf.image.resize(image, (self.height, self.width), antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
        return image

    def top_classes(self, file: str, count: int = 5) -> list[tuple[str, float]]:
        """The `count` most probable classes of one image file, most probable first."""
        batch = self.load_image(file)[tf.newaxis]
        probabilities = self.serve(batch.numpy())["probabilities"][0]
        best = np.argsort(-probabilities)[:count]
        return [(self._name(index), float(probabilities[index])) for index in best]

    def _name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)

    def outputs(self, file: str) -> dict:
        """Every output of the export for one image file, by name (sorted)."""
        values = self.serve(self.load_image(file)[tf.newaxis].numpy())
        return {name: np.asarray(values[name])[0] for name in sorted(values)}

    def pixels(self, values: np.ndarray) -> np.ndarray:
        """An image output, in the preprocessed input's units, back as uint8 pixels."""
        values = values.astype(np.float32)
        if self.preprocess.get("std") is not None:
            values = values * np.float32(self.preprocess["std"])
        if self.preprocess.get("mean") is not None:
            values = values + np.float32(self.preprocess["mean"])
        values = values / np.float32(self.preprocess.get("rescale") or 1.0)
        return np.clip(np.round(values), 0, 255).astype(np.uint8)

    def write_outputs(self, file: str, stem: str, folder: str) -> list[str]:
        """Run one image file; write its image outputs into `folder` as STEM-OUTPUT.png.
        Returns a line per output: where its picture went, or its values."""
        lines = []
        for name, values in self.outputs(file).items():
            if name in self.image_outputs:
                path = os.path.join(folder, f"{stem}-{name}.png")
                write_png(path, self.pixels(values))
                lines.append(f"{name}: {path}")
            else:
                lines.append(f"{name}: {shown(values)}")
        return lines
