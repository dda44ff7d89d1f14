"""The zoo's own layers compute what the papers define and survive a .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import ChannelPadding, LocalResponseNormalization, layer_class


def test_lrn_matches_caffe_formula_and_tensorflow():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 7)).astype("float32") * 10
    ours = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0)(x)
    # Caffe: b_c = a_c / (k + alpha/n * sum_{c' in window} a_c'^2)^beta, window clipped at edges
    squares = np.pad(x**2, [(0, 0), (0, 0), (0, 0), (2, 2)])
    window = sum(squares[..., i:i + 7] for i in range(5))
    expected = x / (1.0 + 1e-4 / 5 * window) ** 0.75
    np.testing.assert_allclose(ours, expected, rtol=1e-5)
    # tf.nn's alpha is not divided by the window size
    reference = tf.nn.local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4 / 5,
                                                   beta=0.75)
    np.testing.assert_allclose(ours, reference, rtol=1e-5)


def test_lrn_rejects_an_even_window():
    with pytest.raises(ValueError, match="size must be a positive odd integer"):
        LocalResponseNormalization(size=4)


def test_channel_padding_adds_zero_channels_on_both_sides():
    x = np.ones((1, 2, 2, 3), "float32")
    y = np.asarray(ChannelPadding(padding=(1, 2))(x))
    assert y.shape == (1, 2, 2, 6)
    assert y[..., 0].sum() == 0 and y[..., 1:4].min() == 1 and y[..., 4:].sum() == 0


def test_saved_keras_file_reloads_zoo_layers(tmp_path):
    inputs = keras.Input((4, 4, 8))
    x = LocalResponseNormalization(size=3, alpha=2e-4, name="norm")(inputs)
    outputs = ChannelPadding(padding=4, name="pad")(x)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert reloaded.get_layer("norm").alpha == 2e-4
    assert reloaded.get_layer("pad").padding == (4, 4)
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(reloaded(x), model(x))


def test_specs_can_name_zoo_layers_like_keras_layers():
    assert layer_class("local_response_normalization") is LocalResponseNormalization
    assert layer_class("ChannelPadding") is ChannelPadding
    assert layer_class("batch_normalization") is keras.layers.BatchNormalization
    assert layer_class("lambda") is None
