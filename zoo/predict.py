"""Top classes of image files, from an export (its SavedModel, or a `.onnx` or `.tflite` file
converted in it) and its labels.txt alone.

The serving signature says what it takes (name, shape, uint8) and what it returns;
each image is decoded, converted to the signature's channels and resized to its
size, as the training pipeline converted the dataset's images.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from zoo.data import IMAGE_SUFFIXES
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


class Predictor:
    def __init__(self, path: str):
        self.serve = open_model(path)
        self.height, self.width, self.channels = self.serve.input_shape
        outputs = self.serve.output_names
        if "probabilities" not in outputs:
            raise bad_export(path, f"the export returns {', '.join(sorted(outputs))}, "
                                   "not class probabilities; predict needs a classifier")
        directory = self.serve.directory
        labels = os.path.join(directory, "labels.txt")
        try:
            with open(labels) as handle:
                self.class_names = handle.read().splitlines()
        except OSError:
            raise bad_export(directory, "labels.txt is missing; was this written by "
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
