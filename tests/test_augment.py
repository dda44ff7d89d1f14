"""The augmentations that change images and labels together, or erase parts of images:
what they draw, and that a seed decides every draw."""

import numpy as np
import tensorflow as tf

from zoo.augment import ERASED_AREA, augment

COUNT, SIZE, CLASSES = 32, 16, 4


def batch():
    """Images whose pixels are all different, so the source of each mixed pixel is known;
    labels 0..3 in turn."""
    images = tf.reshape(tf.range(COUNT * SIZE * SIZE, dtype=tf.float32) + 1.0,
                        (COUNT, SIZE, SIZE, 1))
    return images, tf.range(COUNT, dtype=tf.int64) % CLASSES


def test_mixup_mixes_each_image_and_its_label_with_one_partner_in_one_proportion():
    images, labels = batch()
    mixed, weights = (x.numpy() for x in augment(images, labels, {"mixup": 0.4}, (1, 7),
                                                 CLASSES))
    again = augment(images, labels, {"mixup": 0.4}, (1, 7), CLASSES)[0].numpy()
    np.testing.assert_array_equal(mixed, again)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    share = weights[0, labels[0]]  # one proportion for the batch
    originals = images.numpy()
    for index in range(COUNT):
        partners = [other for other in range(COUNT) if np.allclose(
            mixed[index], share * originals[index] + (1 - share) * originals[other], rtol=1e-5)]
        assert partners, f"image {index} is no mix of itself and another image"
        expected = share * np.eye(CLASSES)[labels[index]] + (1 - share) * np.eye(CLASSES)[
            labels[partners[0]]]
        np.testing.assert_allclose(weights[index], expected, rtol=1e-5, atol=1e-6)


def test_cutmix_pastes_a_rectangle_and_weighs_the_labels_by_area():
    images, labels = batch()
    mixed, weights = (x.numpy() for x in augment(images, labels, {"cutmix": 1.0}, (2, 3),
                                                 CLASSES))
    originals = images.numpy()
    for index in range(COUNT):
        own = mixed[index] == originals[index]
        rows, columns = np.nonzero(~own[..., 0])
        if rows.size:  # the pasted part is one rectangle
            assert own[rows.min():rows.max() + 1, columns.min():columns.max() + 1].sum() == 0
        kept = own.mean()
        assert weights[index, labels[index]] >= kept - 1e-6  # its own share, or more if the
        # partner shares its label
        np.testing.assert_allclose(weights[index].sum(), 1.0, rtol=1e-6)


def test_random_erasing_puts_one_rectangle_of_noise_in_each_chosen_image():
    images, labels = batch()
    erased, same_labels = augment(images, labels, {"random_erasing": 1.0}, (4, 5), CLASSES)
    np.testing.assert_array_equal(same_labels, labels)  # the labels stay integers
    changed = erased.numpy() != images.numpy()
    for mask in changed[..., 0]:
        rows, columns = np.nonzero(mask)
        area = (rows.max() - rows.min() + 1) * (columns.max() - columns.min() + 1)
        assert ERASED_AREA[0] * SIZE * SIZE * 0.5 <= area <= ERASED_AREA[1] * SIZE * SIZE * 1.5
        assert mask.sum() == area  # a rectangle, every pixel replaced
    some = augment(images, labels, {"random_erasing": 0.5}, (4, 5), CLASSES)[0].numpy()
    erased_images = (some != images.numpy()).any(axis=(1, 2, 3)).sum()
    assert 4 <= erased_images <= 28  # about half of 32
