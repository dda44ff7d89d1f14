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


def test_imagenet_evaluation_resizes_the_shorter_side_and_crops_the_center():
    from zoo.data import center_crops, preprocess

    wide = tf.reshape(tf.range(2 * 20 * 30 * 3, dtype=tf.float32) % 256, (2, 20, 30, 3))
    options = {"resize_shorter": 10, "center_crop": 8}
    fitted = preprocess(wide, (8, 8, 3), options)
    assert fitted.shape == (2, 8, 8, 3)
    uncropped = preprocess(wide, (8, 8, 3), options, crop=False)
    assert uncropped.shape == (2, 10, 15, 3)  # the aspect kept: 20 x 30 -> 10 x 15
    np.testing.assert_array_equal(fitted, uncropped[:, 1:9, 3:11])
    ten = center_crops(uncropped, 8, ten=True)
    assert len(ten) == 10 and all(crop.shape == (2, 8, 8, 3) for crop in ten)
    np.testing.assert_array_equal(ten[1], uncropped[:, :8, :8])  # the top left corner
    np.testing.assert_array_equal(ten[6], uncropped[:, :8, :8][:, :, ::-1])  # and mirrored


def test_random_resized_crops_are_parts_of_each_image_at_the_models_size():
    from zoo.augment import random_resized_crop

    # each image a ramp across its width: a crop of it is a ramp over a narrower range
    ramps = tf.tile(tf.reshape(tf.linspace(0.0, 1.0, 40), (1, 1, 40, 1)), (16, 40, 1, 1))
    crops = random_resized_crop(ramps, (10, 10), (0.08, 1.0), (0.75, 4 / 3), (5, 6)).numpy()
    assert crops.shape == (16, 10, 10, 1)
    np.testing.assert_array_equal(crops, random_resized_crop(
        ramps, (10, 10), (0.08, 1.0), (0.75, 4 / 3), (5, 6)))
    spans = crops[:, 0, -1, 0] - crops[:, 0, 0, 0]  # how much of the ramp each crop covers
    assert (spans > 0).all() and (spans <= 1).all()
    assert spans.max() - spans.min() > 0.3  # crops of different sizes
    assert (crops >= 0).all() and (crops <= 1).all()


def test_pca_lighting_shifts_each_image_by_one_colour():
    from zoo.augment import PCA_EIGENVALUES, PCA_EIGENVECTORS, pca_lighting

    lit = pca_lighting(tf.zeros((8, 4, 4, 3)), 0.1, (7, 8), pixel_scale=255.0).numpy()
    for image in lit:  # one shift for every pixel of an image
        np.testing.assert_allclose(image, np.broadcast_to(image[0, 0], image.shape), atol=1e-4)
    # the shift is V (alpha * eigenvalues), alpha ~ N(0, 0.1) per component and image
    shifts = pca_lighting(tf.zeros((4000, 1, 1, 3)), 0.1, (7, 8)).numpy()[:, 0, 0]
    alphas = np.linalg.solve(np.array(PCA_EIGENVECTORS), shifts.T).T / np.array(PCA_EIGENVALUES)
    np.testing.assert_allclose(alphas.std(axis=0), 0.1, rtol=0.1)
    np.testing.assert_allclose(alphas.mean(axis=0), 0.0, atol=0.01)


def test_ten_crop_evaluation_averages_the_model_over_ten_crops(tmp_path, monkeypatch):
    import keras
    import pytest

    import zoo
    from conftest import TINY
    from zoo.data import center_crops, load_split, preprocess
    from zoo.evaluation import evaluate_export

    monkeypatch.chdir(tmp_path)
    options = {"rescale": 0.00392156862745098, "resize_shorter": 10, "center_crop": 8}
    result = zoo.train(TINY, output="out", log=lambda _: None, overrides=[
        "train.epochs=1", "train.precision=float32", f"data.preprocess={options}"])
    centered = evaluate_export(result.export)
    assert centered["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    assert evaluate_export(result.export, crops=10)["crops"] == 10
    images = next(iter(load_split("digits", "test")[0].batch(4)))[0]
    served = tf.saved_model.load(result.export).signatures["ten_crop"](image=images)
    model = keras.saving.load_model(f"{result.export}/model.keras")
    crops = center_crops(preprocess(images, (8, 8, 1), options, crop=False), 8, ten=True)
    expected = np.mean([model(crop).numpy() for crop in crops], axis=0)
    np.testing.assert_allclose(served["probabilities"], expected, rtol=1e-5, atol=1e-6)

    plain = zoo.train(TINY, output="plain", log=lambda _: None, overrides=["train.epochs=1"])
    with pytest.raises(zoo.SpecError, match="takes no crops"):
        evaluate_export(plain.export, crops=10)


def test_randaugment_is_keras_layer_drawing_from_the_batch_seed_alone():
    from zoo.augment import RandAugment

    pixels = tf.random.stateless_uniform((COUNT, SIZE, SIZE, 3), (0, 1), 0, 255)
    randaugment = RandAugment(num_ops=2, magnitude=9)

    @tf.function
    def draw(seed):
        return randaugment(pixels, seed)

    first = draw(tf.constant((5, 1))).numpy()
    np.testing.assert_array_equal(first, draw(tf.constant((5, 1))))  # Keras's counter would
    # have moved on between the two calls
    assert not np.array_equal(first, draw(tf.constant((5, 2))))
    assert not np.array_equal(first, pixels.numpy())
    assert first.min() >= 0 and first.max() <= 255
    smooth = tf.tile(tf.linspace(20.0, 230.0, SIZE)[None, :, None, None], (COUNT, 1, SIZE, 3))

    def change(magnitude):  # over many batches: each batch takes its own ops
        layer = RandAugment(2, magnitude)
        return np.mean([np.abs(layer(smooth, (0, seed)) - smooth).mean() for seed in range(30)])

    assert change(1) < change(10) / 1.5


def test_photos_of_any_size_take_random_crops_of_the_whole_photo_one_by_one(tmp_path):
    from PIL import Image

    import zoo
    from zoo.pipeline import load_splits, training_batches
    from zoo.training import Plan

    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):  # 8 photos, split 80/20: 6 to train on
        (tmp_path / "photos" / label).mkdir(parents=True)
        for index, (height, width) in enumerate([(40, 60), (70, 50), (33, 33), (50, 40)]):
            smooth = np.linspace(0, 255, height * width).reshape(height, width, 1)
            Image.fromarray((smooth + rng.integers(0, 3, (height, width, 3))).astype(
                np.uint8)).save(tmp_path / "photos" / label / f"{index}.png")
    spec = zoo.spec_from_text(f"""
model: {{inputs: {{image: [24, 24, 3]}}, layers: [flatten, {{dense: 2}}]}}
data:
  dataset: {tmp_path / "photos"}
  preprocess: {{resize_shorter: 32, center_crop: 28}}
  augment: {{random_resized_crop: {{scale: [0.1, 0.5]}}}}
train: {{batch_size: 3, epochs: 2}}
""")
    splits = load_splits(spec, "train", download=False)
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)

    def images(first_epoch, first_step=0):
        return [batch.numpy() for batch, _ in training_batches(
            splits, (24, 24, 3), plan, first_epoch, first_step).take(
            (2 - first_epoch) * 2 - first_step)]  # 2 steps an epoch, to the end of epoch 2

    drawn = images(0)
    assert all(batch.shape == (3, 24, 24, 3) for batch in drawn)
    np.testing.assert_array_equal(images(0, 1), drawn[1:])  # resumed within an epoch
    np.testing.assert_array_equal(images(1), drawn[2:])  # resumed after it
    # each crop is a part of its photo (at most half its area) blown up: neighbouring rows
    # differ less than in the photo resized whole
    whole = [tf.image.resize(tf.cast(image, tf.float32), (24, 24)).numpy()
             for image, _ in splits.train]
    assert np.abs(np.diff(np.concatenate(drawn[:2]), axis=1)).mean() < 0.8 * np.abs(
        np.diff(np.stack(whole), axis=1)).mean()


def test_a_center_crop_larger_than_the_image_takes_its_shorter_side():
    from zoo.data import center_crops

    wide = tf.zeros((1, 20, 30, 3))
    assert [crop.shape for crop in center_crops(wide, 64, ten=True)] == [(1, 20, 20, 3)] * 10
