"""Training-time augmentation of whole batches of preprocessed images, each draw stateless:
the seed of a batch (the run's seed and the batch's number) decides every draw, so the same
seed gives the same batch, and a resumed run sees the batches an uninterrupted one would.

Flips and pad-and-crop (the ResNet papers'), random erasing (Zhong et al. 2020), and mixing
two images and their labels: MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019), which
turn the labels into vectors of class weights. RandAugment (Cubuk et al. 2020) is Keras's
own layer, its draws seeded from the batch (BatchSeeds): Keras's preprocessing layers draw
from a stateful generator, which a resumed run cannot replay.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

# Random erasing's rectangles (Zhong et al. 2020, §3.1): 2% to 1/3 of the image, aspect
# ratios from 0.3 to 1/0.3.
ERASED_AREA = (0.02, 1 / 3)
ERASED_ASPECT = (0.3, 1 / 0.3)


# The principal components of ImageNet's RGB pixels in [0, 1] (fb.resnet.torch, after
# Krizhevsky et al. 2012, §4.1): eigenvalues, and eigenvectors as columns.
PCA_EIGENVALUES = (0.2175, 0.0188, 0.0045)
PCA_EIGENVECTORS = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140),
                    (-0.5836, -0.6948, 0.4203))


def augment(images, labels, options: dict, seed, classes: int, pixel_scale=1.0):
    """(images, labels) of a training batch, augmented as `options` (data.augment) says; with
    mixup or cutmix, the labels come back as class weights (one row per image).
    `pixel_scale` turns a pixel's [0, 1] range into the preprocessed images' units."""
    flip_seed, vertical_seed, crop_seed, erase_seed, mix_seed, light_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6))
    flip = options.get("flip")
    if flip in ("horizontal", "both"):
        images = tf.image.stateless_random_flip_left_right(images, flip_seed)
    if flip in ("vertical", "both"):
        images = tf.image.stateless_random_flip_up_down(images, vertical_seed)
    padding = options.get("pad_crop")
    if padding:
        padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
        images = random_windows(padded, images.shape[1:3], crop_seed)
    if options.get("pca_lighting"):
        images = pca_lighting(images, options["pca_lighting"], light_seed, pixel_scale)
    if options.get("random_erasing"):
        images = random_erasing(images, options["random_erasing"], erase_seed)
    if options.get("mixup") or options.get("cutmix"):
        images, labels = mix(images, tf.one_hot(tf.cast(labels, tf.int32), classes),
                             options.get("mixup"), options.get("cutmix"), mix_seed)
    return images, labels


def random_windows(images, size, seed):
    """A window of `size` (height, width) at a random place in each image of a batch: one
    gather per axis for the whole batch."""
    height, width = size
    room = tf.shape(images)[1:3] - (height, width) + 1  # the places a window's corner can take
    corners = tf.cast(tf.random.stateless_uniform([tf.shape(images)[0], 2], seed)
                      * tf.cast(room, tf.float32), tf.int32)
    rows = corners[:, :1] + tf.range(height)
    columns = corners[:, 1:] + tf.range(width)
    return tf.gather(tf.gather(images, rows, axis=1, batch_dims=1), columns, axis=2,
                     batch_dims=1)


def _boxes(count, height, width, area, aspect, seed):
    """One rectangle per image: (top, left, box height, box width) as int32 columns, of the
    given fraction of the image's area and aspect ratio (each a [count] tensor), placed at a
    random place inside the image."""
    box_height = tf.minimum(tf.cast(tf.round(tf.sqrt(area * aspect) * tf.cast(
        height, tf.float32)), tf.int32), height)
    box_width = tf.minimum(tf.cast(tf.round(tf.sqrt(area / aspect) * tf.cast(
        width, tf.float32)), tf.int32), width)
    corner = tf.random.stateless_uniform([count, 2], seed)
    top = tf.cast(corner[:, 0] * tf.cast(height - box_height + 1, tf.float32), tf.int32)
    left = tf.cast(corner[:, 1] * tf.cast(width - box_width + 1, tf.float32), tf.int32)
    return top, left, box_height, box_width


def _inside(top, left, box_height, box_width, height, width):
    """[count, height, width, 1] masks: 1.0 inside each image's rectangle."""
    rows = tf.range(height)[None, :, None]
    columns = tf.range(width)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + box_height)[:, None, None])
              & (columns >= left[:, None, None]) & (columns < (left + box_width)[:, None, None]))
    return tf.cast(inside, tf.float32)[..., None]


def random_erasing(images, probability: float, seed):
    """Each image, with `probability`, gets a rectangle of Gaussian noise (Zhong et al. 2020,
    as timm erases normalized images)."""
    count, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    chosen_seed, area_seed, aspect_seed, place_seed, noise_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 5))
    area = tf.random.stateless_uniform([count], area_seed, *ERASED_AREA)
    log_aspect = tf.random.stateless_uniform([count], aspect_seed,
                                             *[math.log(a) for a in ERASED_ASPECT])
    mask = _inside(*_boxes(count, height, width, area, tf.exp(log_aspect), place_seed),
                   height, width)
    chosen = tf.cast(tf.random.stateless_uniform([count], chosen_seed) < probability,
                     tf.float32)[:, None, None, None]
    noise = tf.random.stateless_normal(tf.shape(images), noise_seed, dtype=images.dtype)
    mask = tf.cast(mask * chosen, images.dtype)
    return images * (1 - mask) + noise * mask


def _beta(alpha: float, seed):
    """A draw of Beta(alpha, alpha), from two Gamma draws."""
    first, second = tf.unstack(tf.random.stateless_gamma([2], seed, alpha=alpha))
    return first / (first + second)


def mix(images, labels, mixup_alpha, cutmix_alpha, seed):
    """MixUp or CutMix of a batch with a shuffled copy of itself, one of them per batch (a
    coin decides when both are asked for, as timm does); `labels` are one-hot rows, mixed in
    the proportion of each image's pixels."""
    order_seed, amount_seed, place_seed, coin_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    count, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    partner = tf.argsort(tf.random.stateless_uniform([count], order_seed))
    other_images, other_labels = tf.gather(images, partner), tf.gather(labels, partner)

    def mixed_up():
        share = _beta(mixup_alpha, amount_seed)
        return (share * images + (1 - share) * other_images,
                share * labels + (1 - share) * other_labels)

    def cut_mixed():
        pasted = 1 - _beta(cutmix_alpha, amount_seed)  # the fraction of the area pasted
        box = _boxes(1, height, width, pasted[None], tf.ones([1]), place_seed)
        mask = _inside(*box, height, width)
        kept = 1 - tf.reduce_mean(mask)  # the share of each image's own pixels, as cut
        mask = tf.cast(mask, images.dtype)
        return (images * (1 - mask) + other_images * mask,
                kept * labels + (1 - kept) * other_labels)

    if not cutmix_alpha:
        return mixed_up()
    if not mixup_alpha:
        return cut_mixed()
    return tf.cond(tf.random.stateless_uniform([], coin_seed) < 0.5, mixed_up, cut_mixed)


def random_resized_crop(images, size, scale, ratio, seed, method: str = "bilinear"):
    """A random part of each image resized to `size` (height, width), as Inception and the
    ImageNet ResNets train (Szegedy et al. 2015): its area a `scale` fraction of the image,
    its aspect ratio in `ratio` (drawn on a log scale), cut to fit the image when it would
    not. One crop_and_resize for the batch."""
    count = tf.shape(images)[0]
    area_seed, ratio_seed, place_seed = tf.unstack(tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), 3))
    area = tf.random.stateless_uniform([count], area_seed, *scale)
    aspect = tf.exp(tf.random.stateless_uniform([count], ratio_seed,
                                                *[math.log(value) for value in ratio]))
    height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2],
                                                                        tf.float32)
    # fractions of the image's height and width; area * height * width = h * w, w / h = aspect
    crop_height = tf.minimum(tf.sqrt(area * width / height / aspect), 1.0)
    crop_width = tf.minimum(tf.sqrt(area * height / width * aspect), 1.0)
    corner = tf.random.stateless_uniform([count, 2], place_seed)
    top, left = corner[:, 0] * (1 - crop_height), corner[:, 1] * (1 - crop_width)
    boxes = tf.stack([top, left, top + crop_height, left + crop_width], axis=1)
    return tf.image.crop_and_resize(images, boxes, tf.range(count), size, method=method)


def pca_lighting(images, stddev: float, seed, pixel_scale=1.0):
    """AlexNet's colour noise (Krizhevsky et al. 2012, §4.1): each image shifted along the
    principal components of ImageNet's RGB pixels, by amounts drawn with `stddev` times each
    component's eigenvalue."""
    alpha = tf.random.stateless_normal([tf.shape(images)[0], 3], seed, stddev=stddev)
    shift = tf.linalg.matvec(tf.constant(PCA_EIGENVECTORS, tf.float32),
                             alpha * tf.constant(PCA_EIGENVALUES, tf.float32))
    return images + tf.cast(shift * pixel_scale, images.dtype)[:, None, None, :]


class BatchSeeds(keras.random.SeedGenerator):
    """What a Keras preprocessing layer draws its seeds from, made stateless: each draw is the
    batch's seed folded with the draw's number in the traced function, where Keras's own
    generator keeps a counter in a variable (which a resumed run cannot replay, and which
    batches prepared in parallel would race on)."""

    def __init__(self):  # no state variable, unlike the SeedGenerator it stands in for
        self.batch_seed, self.draws = None, 0

    def next(self, ordered=True):
        self.draws += 1
        return tf.random.experimental.stateless_fold_in(self.batch_seed, self.draws)


class RandAugment:
    """Keras's RandAugment layer on pixels in [0, 255], drawing from each batch's seed.
    `magnitude` is the paper's, from 0 to 10: each op's strength is drawn up to
    magnitude / 10 of its range (Keras's `factor`). The ops are picked once per batch, as
    Keras's layer picks them; where that layer computes all 11 ops on the batch and keeps the
    chosen one (22 for 2 ops), this runs just the chosen ones, with the layer's own ops
    (ResNet-20's pipeline kept up 0.68 of the in-memory speed before, 0.95 after:
    BENCHMARKS.md)."""

    MAX_MAGNITUDE = 10

    def __init__(self, num_ops: int, magnitude: float, interpolation: str = "bilinear"):
        self.layer = keras.layers.RandAugment(
            value_range=(0, 255), num_ops=num_ops, factor=magnitude / self.MAX_MAGNITUDE,
            interpolation="nearest" if interpolation == "nearest" else "bilinear",
            dtype="float32")
        self.seeds = BatchSeeds()
        object.__setattr__(self.layer, "generator", self.seeds)  # past Keras's attribute tracking
        self.ops = [getattr(self.layer, name) for name in self.layer._AUGMENT_LAYERS]

    def __call__(self, images, seed):
        self.seeds.batch_seed, self.seeds.draws = tf.cast(seed, tf.int64), 0
        chosen = tf.random.stateless_uniform([self.layer.num_ops], self.seeds.next(), 0,
                                             len(self.ops), tf.int32)

        def applying(op, images):
            return lambda: op.transform_images(images, op.get_random_transformation(
                images, training=True, seed=self.seeds))

        for number in range(self.layer.num_ops):
            images = tf.ensure_shape(tf.switch_case(chosen[number], [
                applying(op, images) for op in self.ops]), images.shape)
        return images
