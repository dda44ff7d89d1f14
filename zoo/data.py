"""Datasets -> tf.data pipelines: TFDS names, the embedded datasets, or a folder of images.

Every source yields (uint8 image, integer label) pairs, the raw input that an
export's serving signature also takes. `preprocess` (cast, channels, resize and
crop, rescale, normalize) is one TensorFlow function used both by the training
pipeline and inside the exported SavedModel; augmentation is training-only
(zoo.augment).
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.source import SpecError, suggest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FOLDER_SPLITS = {"train": (0.0, 0.8), "test": (0.8, 1.0), "all": (0.0, 1.0)}
FOLDER_SEED = 0


class DataError(SpecError):
    """A dataset problem the user can fix (missing, not downloaded, wrong split)."""

    def __init__(self, message: str, location=None, path: str = "data.dataset"):
        super().__init__(location, path, message)


@dataclass
class DataInfo:
    name: str
    image_shape: tuple  # raw shape as the source yields it; None for sizes that vary
    class_names: list
    split_sizes: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)  # files of a folder that are not images

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def data_dir() -> str:
    """Where TFDS datasets live: $TFDS_DATA_DIR or ~/tensorflow_datasets, as TFDS itself uses."""
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def is_folder(name: str) -> bool:
    return os.sep in name or name.startswith((".", "~")) or os.path.isdir(name)


def load_split(name: str, split: str, *, download: bool = False, where=(None, "data.dataset"),
               split_where=None):
    """(tf.data.Dataset of (uint8 image, int64 label), DataInfo) for one split. `where`
    locates errors about the dataset, `split_where` (if not `where`) those about the split."""
    split_where = split_where or where
    if is_folder(name):
        dataset, info = _folder_split(Path(os.path.expanduser(name)), split, where, split_where)
    else:
        dataset, info = _tfds_split(name, split, download, where, split_where)
    return without_autotuning(dataset), info


def without_autotuning(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` (and every pipeline built on it) with tf.data's autotuning thread off.

    With it on, the end of an iterator (the last batch of every epoch) can wait for that
    thread's next wake-up, whose period doubles from 10 ms: ResNet-20 epochs of 7 s took
    10.7 s in 3 of 10 epochs here, and runs of fixed work ended at 10.24, 20.48 or 40.96 s
    (BENCHMARKS.md, benchmarks/epoch_end.py). Without it, a map or prefetch given AUTOTUNE
    still runs one call per core and grows its buffer as needed.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


# --- TFDS ------------------------------------------------------------------------------------


def _tfds_builder(name: str, download: bool, where):
    import tensorflow_datasets as tfds

    import zoo.datasets  # noqa: F401  registers the embedded builders with TFDS

    tfds.disable_progress_bar()
    try:
        builder = tfds.builder(name, data_dir=data_dir())
    except ValueError:  # DatasetNotFoundError, or a name TFDS cannot parse (mnist-subset)
        raise _unknown_dataset(name, where) from None
    if builder.is_prepared():
        return builder
    if name in zoo.datasets.EMBEDDED:
        return _prepare_embedded(name)
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        manual = os.path.join(data_dir(), "downloads", "manual")
        raise DataError(f"dataset '{name}' needs a manual download: put its files in {manual} as "
                        f"TFDS explains ({' '.join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())}) "
                        "then run again with --download. To try the spec offline now: "
                        "--set data.dataset=mnist_subset", *where)
    if not download:
        raise DataError(f"dataset '{name}' is not in {data_dir()} (set TFDS_DATA_DIR if it is "
                        "elsewhere); run again with --download to fetch it (needs network), or "
                        "try the spec offline with --set data.dataset=mnist_subset (5,000 "
                        "embedded MNIST digits) or digits", *where)
    try:
        builder.download_and_prepare()
    except Exception as exc:  # network errors come in many types; all mean the same here
        raise DataError(f"could not download dataset '{name}': {str(exc).splitlines()[0]}. "
                        "Try the spec offline with --set data.dataset=mnist_subset",
                        *where) from None
    return builder


def check_dataset_name(name: str, where=(None, "data.dataset")) -> None:
    """A located error for a dataset that is neither a folder nor a dataset TFDS knows (a
    typo), found without preparing or downloading anything."""
    import tensorflow_datasets as tfds

    import zoo.datasets  # noqa: F401  registers the embedded builders with TFDS

    if is_folder(name):
        if not os.path.isdir(os.path.expanduser(name)):
            raise DataError(f"'{name}' is not a folder of images", *where)
        return
    try:
        tfds.builder_cls(name.split(":")[0].split("/")[0])
    except ValueError:  # DatasetNotFoundError, or a name TFDS cannot parse (mnist-subset)
        raise _unknown_dataset(name, where) from None


def _unknown_dataset(name: str, where) -> DataError:
    import tensorflow_datasets as tfds

    import zoo.datasets

    known = tfds.list_builders(with_community_datasets=False)
    return DataError(f"unknown dataset '{name}'{suggest(name, known)}; use a TFDS name "
                     "(e.g. mnist, cifar10), an embedded one "
                     f"({', '.join(zoo.datasets.EMBEDDED)})"
                     " or a folder of images with one sub-folder per class", *where)


def _prepare_embedded(name: str):
    """Prepare an embedded dataset on first use. Runs started together take turns on a lock
    file: the first prepares, the others then find it prepared (TFDS refuses to prepare
    into a folder another process has just written)."""
    import tensorflow_datasets as tfds

    os.makedirs(data_dir(), exist_ok=True)
    with open(os.path.join(data_dir(), f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder = tfds.builder(name, data_dir=data_dir())
        if not builder.is_prepared():
            print(f"preparing the embedded dataset '{name}' in {builder.data_dir} "
                  "(first use only)")
            builder.download_and_prepare()
    return builder


def _tfds_split(name: str, split: str, download: bool, where, split_where):
    builder = _tfds_builder(name, download, where)
    info = builder.info
    if not info.supervised_keys:
        raise DataError(f"dataset '{name}' has no (input, label) pair to train on", *where)
    image_key, label_key = info.supervised_keys
    image_feature, label_feature = info.features[image_key], info.features[label_key]
    if not hasattr(label_feature, "names") or not hasattr(image_feature, "shape"):
        raise DataError(f"dataset '{name}' is not an image classification dataset "
                        f"({image_key}: {type(image_feature).__name__}, "
                        f"{label_key}: {type(label_feature).__name__})", *where)
    splits = {key: value.num_examples for key, value in info.splits.items()}
    try:
        dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    except (ValueError, KeyError) as exc:
        key = split_where[1]
        fix = (f"; name one with --set {key}={_likely_split(key, splits)}"
               if key.startswith(("data.", "pretrain.")) and splits else "")
        raise DataError(f"dataset '{name}' has no split '{split}'{suggest(split, splits)}; its "
                        f"splits: {', '.join(splits)}{fix} ({str(exc).splitlines()[0]})",
                        *split_where) from None
    return dataset, DataInfo(name, tuple(image_feature.shape), list(label_feature.names), splits)


def _likely_split(key: str, splits) -> str:
    """The split a fix for `key` would name: train for what trains, test for what evaluates."""
    wanted = "train" if key.endswith(("train_split", "unlabeled")) else "test"
    return wanted if wanted in splits else next(iter(splits))


# --- a folder with one sub-folder per class --------------------------------------------------


def _folder_split(root: Path, split: str, where, split_where):
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder of images", *where)
    classes = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    listed = [(file, index) for index, label in enumerate(classes)
              for file in sorted((root / label).iterdir()) if file.is_file()]
    files = [(str(file), index) for file, index in listed if file.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [str(file) for file, _ in listed if file.suffix.lower() not in IMAGE_SUFFIXES]
    if len(classes) < 2 or not files:
        raise DataError(f"'{root}' should hold one sub-folder of images per class (at least two "
                        f"classes); found {len(classes)} sub-folders and {len(files)} images",
                        *where)
    if split not in FOLDER_SPLITS:
        raise DataError(f"a folder of images has the splits {', '.join(FOLDER_SPLITS)} (a fixed "
                        f"80/20 shuffle), not '{split}'", *split_where)
    order = np.random.RandomState(FOLDER_SEED).permutation(len(files))
    start, stop = (int(round(fraction * len(files))) for fraction in FOLDER_SPLITS[split])
    chosen = [files[i] for i in order[start:stop]]
    _check_images_decode(root, split, [path for path, _ in chosen], where)
    sizes = {name: int(round(b * len(files))) - int(round(a * len(files)))
             for name, (a, b) in FOLDER_SPLITS.items()}
    paths = tf.constant([path for path, _ in chosen])
    labels = tf.constant([label for _, label in chosen], tf.int64)
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels)).map(
        lambda path, label: (tf.io.decode_image(tf.io.read_file(path), channels=3,
                                                expand_animations=False), label),
        num_parallel_calls=tf.data.AUTOTUNE)
    return dataset, DataInfo(str(root), (None, None, 3), classes, sizes, skipped)


def _check_images_decode(root: Path, split: str, paths: list, where) -> None:
    """Decode every image once before training: a damaged file (a cut download, a text file
    named .jpg) is named here, rather than failing deep inside TensorFlow mid-epoch. It is an
    error, not a skip, because the user can fix it and a silent skip would shift the split."""
    damaged = []
    for path in sorted(paths):
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError:
            damaged.append(path)
    if damaged:
        shown = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3
                                          else "")
        raise DataError(f"{len(damaged)} of the {len(paths)} images of the '{split}' split of "
                        f"'{root}' cannot be decoded: {shown}; replace or remove them", *where)


# --- preprocessing and augmentation ----------------------------------------------------------


def preprocess(images, input_shape, options: dict, crop: bool = True):
    """Raw uint8 images (one or a batch) -> the float input the model expects.

    Converts channels (grey <-> RGB), fits the images to the model's input (`resize`), then
    rescales and normalizes, as the spec's `data.preprocess` says. With `crop=False` it
    stops before the center crop: ten-crop evaluation takes its crops from that.
    """
    images = convert_channels(tf.cast(images, tf.float32), input_shape[-1])
    return normalize(resize(images, input_shape, options, crop), options)


def convert_channels(images, channels: int):
    """Grey images to RGB or RGB to grey, as the model's input has them."""
    have = images.shape[-1]
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(images)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(images)
    return images


def normalize(images, options: dict):
    """Rescale, subtract the mean and divide by the deviation (per channel) as the spec says."""
    images = images * float(options.get("rescale") or 1.0)
    if options.get("mean") is not None:
        images = images - tf.constant(options["mean"], tf.float32)
    if options.get("std") is not None:
        images = images / tf.constant(options["std"], tf.float32)
    return images


def pixel_scale(options: dict):
    """What a pixel's [0, 1] range is in the preprocessed images' units, per channel (for
    augmentations defined on pixels, such as AlexNet's colour noise)."""
    scale = 255.0 * float(options.get("rescale") or 1.0)
    if options.get("std") is not None:
        return tf.constant(scale, tf.float32) / tf.constant(options["std"], tf.float32)
    return scale


def resize(images, input_shape, options: dict, crop: bool = True):
    """Images (one or a batch) -> float32 at the model's height and width: the shorter side
    resized to `resize_shorter`, the center `center_crop` pixels square cut out (as ImageNet
    evaluation does), then resized to the model's input if it still differs. The one step
    of `preprocess` that images of different sizes need before they can share a batch."""
    height, width, _ = input_shape
    method = resize_method(options)
    images = tf.cast(images, tf.float32)
    if options.get("resize_shorter"):
        images = resize_shorter(images, options["resize_shorter"], method)
    if not crop:
        return images
    if options.get("center_crop"):
        images = center_crops(images, options["center_crop"])[0]
    if tuple(images.shape[-3:-1]) != (height, width):
        images = tf.image.resize(images, (height, width), method=method)
    return images


def resize_method(options: dict) -> str:
    """How data.preprocess resizes images: bilinear unless it says otherwise."""
    return options.get("resize") or "bilinear"


def resize_shorter(images, size: int, method: str):
    """Images resized so that their shorter side is `size` pixels, keeping the aspect."""
    sides = tf.cast(tf.shape(images)[-3:-1], tf.float32)
    scaled = tf.cast(tf.round(sides * size / tf.reduce_min(sides)), tf.int32)
    return tf.image.resize(images, scaled, method=method)


def center_crops(images, size: int, ten: bool = False) -> list:
    """The center `size`-pixel square of each image (its shorter side's, if smaller); with
    `ten`, AlexNet's ten crops: the center and the four corners, and the same five of the
    images flipped left to right."""
    height, width = tf.shape(images)[-3], tf.shape(images)[-2]
    size = tf.minimum(size, tf.minimum(height, width))
    places = [((height - size) // 2, (width - size) // 2)]
    if ten:
        places += [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
    crops = [images[..., top:top + size, left:left + size, :] for top, left in places]
    return crops + [tf.reverse(crop, axis=[-2]) for crop in crops] if ten else crops
