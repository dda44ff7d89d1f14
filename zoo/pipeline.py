"""Raw examples -> batches on the devices: caching, shuffling, preprocessing, augmentation
(zoo.augment), prefetching, and distribution to the replicas of a tf.distribute strategy.

`zoo.data` yields (uint8 image, label) pairs from a dataset; this module turns them into what
a training or evaluation step takes. The loop itself (`zoo.training`) holds no tf.data code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import tensorflow as tf

from zoo.augment import RandAugment, augment, random_resized_crop
from zoo.data import (DataInfo, convert_channels, load_split, normalize, pixel_scale, resize,
                      resize_method)
from zoo.source import SpecError
from zoo.spec import Spec

CACHE_LIMIT_BYTES = 2 << 30  # raw uint8 splits smaller than this stay in memory
SHUFFLE_BUFFER = 10_000
# Epochs one training iterator serves (training_batches). Its dataset takes longer to build
# and start the more epochs it chains (ResNet-20's pipeline: 0.55 s for 1 to 10 epochs,
# 1.3 s for 200, 26 s for 2,000); a new one every 100 epochs starts cold once.
CHAINED_EPOCHS = 100
# random_resized_crop and RandAugment draw from the batch's seed folded with these
CROP_STREAM, RANDAUGMENT_STREAM = 1, 2


@dataclass
class Splits:
    """The raw data of a run: (uint8 image, label) pairs, and what is known about them."""

    train: tf.data.Dataset
    eval: tf.data.Dataset
    info: DataInfo
    train_size: int
    eval_size: int
    options: dict  # the spec's data section: preprocess, augment, shuffle_buffer
    eval_split: str = "test"  # the name of the split `eval` is


@dataclass
class Batching:
    """How examples become batches: what the pipeline needs of a training plan."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    seed: int
    target: str  # "label", "input" (the model reproduces its input) or "codes"


# --- splits ----------------------------------------------------------------------------------


def eval_split_name(spec: Spec) -> str:
    """The split that evaluates each epoch: the validation split if the spec carves one."""
    return spec.data.get("validation_split") or spec.data.get("eval_split") or "test"


def load_splits(spec: Spec, train_split: str, download: bool, where=None) -> Splits:
    """The raw train split named, and the split that evaluates it, for the spec's dataset.
    `where`: the key that names the train split (data.train_split unless told), for errors."""
    data = spec.data
    if not data.get("dataset"):
        raise SpecError(data.location, "data", "training needs a dataset: add `data: {dataset: "
                                               "NAME}` or pass --set data.dataset=mnist_subset")
    name, dataset = data["dataset"], data.where("dataset")
    train_raw, info = load_split(name, train_split, download=download, where=dataset,
                                 split_where=where or data.where("train_split"))
    eval_split = split_of(info, eval_split_name(spec))
    eval_key = "validation_split" if data.get("validation_split") else "eval_split"
    eval_raw, _ = load_split(name, eval_split, download=download, where=dataset,
                             split_where=data.where(eval_key))
    sizes = [_split_size(info, split, raw) for split, raw in ((train_split, train_raw),
                                                              (eval_split, eval_raw))]
    train_raw, eval_raw = (cache_if_small(raw, info, size)
                           for raw, size in zip((train_raw, eval_raw), sizes))
    return Splits(train_raw, eval_raw, info, *sizes, options=dict(data), eval_split=eval_split)


def split_of(info: DataInfo, split: str) -> str:
    """`split`, or `test` for a `validation` split the dataset lacks: an ImageNet spec tried
    on a dataset of train and test splits (`--set data.dataset=mnist_subset`)."""
    if split == "validation" and split not in info.split_sizes and "test" in info.split_sizes:
        return "test"
    return split


def upscaling_note(splits: Splits) -> str | None:
    """What to tell a user whose images are smaller than the ImageNet-style resize and crop
    the spec asks for (a spec of 224-pixel photos tried on 28-pixel digits), or None."""
    preprocess = splits.options.get("preprocess") or {}
    sizes = {key: preprocess[key] for key in ("resize_shorter", "center_crop")
             if preprocess.get(key)}
    shape = splits.info.image_shape
    if not sizes or None in shape[:2] or min(shape[:2]) >= max(sizes.values()):
        return None
    asked = " and ".join(f"{key} {size}" for key, size in sizes.items())
    return (f"{splits.info.name}'s images are {shape[0]}x{shape[1]} pixels, smaller than "
            f"data.preprocess's {asked}: they are scaled up (crops larger than an image take "
            "its shorter side); figures on them check the spec, not the paper's recipe")


def cache_if_small(raw, info: DataInfo, size: int):
    """Keep a raw split in memory after its first pass when it fits (every epoch reuses it)."""
    pixels = math.prod(info.image_shape) if None not in info.image_shape else None
    return raw.cache() if pixels and pixels * size < CACHE_LIMIT_BYTES else raw


def _split_size(info: DataInfo, split: str, raw) -> int:
    if split in info.split_sizes:
        return info.split_sizes[split]
    return int(raw.reduce(0, lambda count, _: count + 1))  # a sliced split such as train[:90%]


# --- batches ---------------------------------------------------------------------------------


def training_batches(splits: Splits, input_shape, batching: Batching, first_epoch: int = 0,
                     first_step: int = 0, context: tf.distribute.InputContext | None = None):
    """The training batches of up to CHAINED_EPOCHS epochs from `first_epoch` on (its first
    `first_step` steps left out: a run resumed within the epoch), one epoch after another
    in one endless dataset of (model input, target).

    A single iterator serves them and prefetches across the end of each epoch, where a new
    iterator per epoch would start cold (about 25 ms each time: a tenth of a LeNet epoch on
    4,000 images; benchmarks/input_pipeline.py). Each epoch is shuffled from the seed and its
    own number and each batch is augmented from its own number, so a resumed run sees the
    epochs an uninterrupted one would.

    With a `context` (tf.distribute's, one per worker), the batches are one input pipeline's
    share: every worker shuffles the same way, keeps every n-th example of n pipelines and
    prepares only those, in batches of one replica's size, so that a step's replicas together
    take the examples one device would take in that step.
    """
    context = context or tf.distribute.InputContext()
    buffer = splits.options.get("shuffle_buffer") or SHUFFLE_BUFFER
    examples = shuffled_epochs(splits.train, batching, buffer, first_epoch)
    if context.num_input_pipelines > 1:  # before any work is done on an example
        examples = examples.shard(context.num_input_pipelines, context.input_pipeline_id)
    # what one replica takes in a step, and how many such batches a step takes from here
    share = replace(batching, batch_size=context.get_per_replica_batch_size(
        batching.batch_size))
    local = batching.batch_size // share.batch_size // context.num_input_pipelines
    augmentation = dict(splits.options.get("augment") or {})
    dataset = _batched(examples, splits, input_shape, share, augmentation,
                       first_batch=first_epoch * batching.steps_per_epoch * local,
                       skip=first_step * local, pipeline=context)
    # Endless: MultiWorkerMirroredStrategy's iterator then skips the all-reduce that asks
    # every worker whether it still has data, each step (12 of the 23 ms a LeNet step spent
    # communicating on two workers: benchmarks/scaling.py)
    return dataset.repeat().prefetch(tf.data.AUTOTUNE)


def evaluation_batches(splits: Splits, input_shape, batching: Batching):
    """One pass over the evaluation split, in batches of (model input, target)."""
    return _batched(splits.eval, splits, input_shape, batching, {}).prefetch(tf.data.AUTOTUNE)


def evaluation_passes(splits: Splits, input_shape, batching: Batching):
    """The evaluation batches repeated without end, and how many make one pass. One iterator
    then serves every epoch's evaluation: a fresh one each epoch cost a worker of
    MultiWorkerMirroredStrategy 60-140 ms (a third of LeNet's epoch of 16 steps), and an
    endless one skips the all-reduce that asks the workers, before every batch, whether
    data is left."""
    one_pass = evaluation_batches(splits, input_shape, batching)
    batches = int(one_pass.cardinality())  # negative where tf.data cannot tell
    if batches < 0:
        batches = math.ceil(splits.eval_size / batching.batch_size)
    return one_pass.repeat(), batches


def _batched(examples, splits: Splits, input_shape, batching: Batching, augmentation: dict,
             first_batch: int | None = None, skip: int = 0,
             pipeline: tf.distribute.InputContext | None = None):
    """Raw (uint8 image, label) pairs -> batches of (model input, target), numbered from
    `first_batch` for training (augmentation draws from the number), or one pass (None);
    the first `skip` batches are left out before any work is done on them. The numbers of
    one of several input `pipeline`s are told apart from the others' (each draws its own).

    Preprocessing and augmentation run on whole batches: one op per batch instead of one per
    image costs the cores that train less. Images whose sizes vary (a folder of photos,
    ImageNet) are fitted to the model's input one by one first, so that they can share a
    batch: resized, or with random_resized_crop a random part of each whole image, drawn from
    the image's number in the run.
    """
    options = dict(splits.options.get("preprocess") or {})
    crop = augmentation.get("random_resized_crop")
    method = resize_method(options)

    def random_crops(images, seed):
        return random_resized_crop(tf.cast(images, tf.float32), input_shape[:2], crop["scale"],
                                   crop["ratio"], tf.random.experimental.stateless_fold_in(
                                       seed, CROP_STREAM), method)

    def fit(images, seed):
        """Images at the model's size: a random part of each (training with
        random_resized_crop), or resized and center-cropped as data.preprocess says."""
        return random_crops(images, seed) if crop else resize(images, input_shape, options)

    pipeline = pipeline or tf.distribute.InputContext()

    def seed_of(number):
        """The seed of an image's or a batch's draws: unique over the pipelines, and on one
        the plain number (what a one-device run has always drawn)."""
        unique = number * pipeline.num_input_pipelines + pipeline.input_pipeline_id
        return tf.stack([batching.seed, unique])

    fitted_one_by_one = None in splits.info.image_shape
    if fitted_one_by_one:
        first_image = (first_batch or 0) * batching.batch_size
        examples = examples.enumerate(start=first_image).map(
            lambda number, example: (fit(example[0][None], seed_of(number))[0], example[1]),
            num_parallel_calls=tf.data.AUTOTUNE)

    randaugment = augmentation.get("randaugment")
    if randaugment:
        randaugment = RandAugment(randaugment["num_ops"], randaugment["magnitude"], method)

    def prepare(number, batch):
        images, labels = batch
        seed = seed_of(number)
        if not fitted_one_by_one:
            images = fit(images, seed)
        images = convert_channels(images, input_shape[-1])
        if randaugment:  # on pixels, before they are normalized
            images = randaugment(images, tf.random.experimental.stateless_fold_in(
                seed, RANDAUGMENT_STREAM))
        images = normalize(images, options)
        if augmentation:
            images, labels = augment(images, labels, augmentation, seed,
                                     splits.info.num_classes, pixel_scale(options))
        return images, (images if batching.target == "input" else labels)

    training = first_batch is not None
    dataset = examples.batch(batching.batch_size, drop_remainder=training)
    dataset = dataset.enumerate(start=first_batch or 0).skip(skip)
    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def shuffled_epochs(dataset, batching: Batching, buffer: int, first_epoch: int):
    """The examples of up to CHAINED_EPOCHS epochs from `first_epoch` on, one after another,
    each shuffled from its own seed (a seed that is a tensor, as a per-epoch function would
    give, fails in tf.data's shuffle when the global seed is 0)."""
    last = min(first_epoch + CHAINED_EPOCHS, batching.epochs)
    epochs = [dataset.shuffle(buffer, seed=batching.seed + epoch, reshuffle_each_iteration=False)
              .repeat().take(batching.steps_per_epoch * batching.batch_size)
              for epoch in range(first_epoch, last)] or [dataset.take(0)]
    while len(epochs) > 1:  # joined in pairs: nested log2(epochs) deep, not one per epoch
        joined = [earlier.concatenate(later) for earlier, later in zip(epochs[::2], epochs[1::2])]
        epochs = joined + epochs[2 * len(joined):]
    return epochs[0]


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """An iterator over `dataset`'s batches, each split between the strategy's replicas."""
    return iter(strategy.experimental_distribute_dataset(dataset))


def distribute_by_worker(strategy: tf.distribute.Strategy, batches_for):
    """An iterator over the batches `batches_for(context)` gives each worker's input pipeline
    (training_batches' share of a step): each worker reads and prepares only its own."""
    return iter(strategy.distribute_datasets_from_function(batches_for))
