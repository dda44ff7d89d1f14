"""The zoo's own layers compute what the papers define and survive a .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import BatchNormalization, ChannelPadding, Conv2D, LocalResponseNormalization
from zoo.names import layer_class


def test_lrn_matches_caffe_formula_and_tensorflow():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 7)).astype("float32") * 10
    layer = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0)
    # Caffe: b_c = a_c / (k + alpha/n * sum_{c' in window} a_c'^2)^beta, window clipped at edges
    squares = np.pad(x**2, [(0, 0), (0, 0), (0, 0), (2, 2)])
    window = sum(squares[..., i:i + 7] for i in range(5))
    expected = x / (1.0 + 1e-4 / 5 * window) ** 0.75
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5)  # TensorFlow's kernel
    np.testing.assert_allclose(layer.formula(x), expected, rtol=1e-5)  # element-wise ops
    # tf.nn's alpha is not divided by the window size
    reference = tf.nn.local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4 / 5,
                                                   beta=0.75)
    np.testing.assert_allclose(layer(x), reference, rtol=1e-5)


def test_lrn_gradients_and_bfloat16_follow_the_formula():
    x = tf.constant(np.random.default_rng(4).normal(size=(2, 3, 3, 9)).astype("float32") * 30)
    layer = LocalResponseNormalization(size=3, alpha=1e-3, beta=0.75, k=2.0)
    gradients = []
    for forward in (layer, layer.formula):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(forward(x) ** 3)
        gradients.append(tape.gradient(loss, x))
    np.testing.assert_allclose(*gradients, rtol=1e-4, atol=1e-4)
    in_bfloat16 = LocalResponseNormalization(size=3, alpha=1e-3, beta=0.75, k=2.0,
                                             dtype="mixed_bfloat16")(tf.cast(x, tf.bfloat16))
    assert in_bfloat16.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(in_bfloat16, tf.float32), layer.formula(x), rtol=2e-2,
                               atol=2e-2)


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
    assert layer_class("batch_normalization") is BatchNormalization
    assert layer_class("conv2d") is Conv2D and layer_class("Convolution2D") is Conv2D
    assert layer_class("lambda") is None


def twin_batch_norms(shape, **options):
    """Keras's layer and the zoo's, built alike and given the same non-trivial weights."""
    layers = keras.layers.BatchNormalization(**options), BatchNormalization(**options)
    for layer in layers:
        layer.build(shape)
    weights = [np.random.default_rng(index).uniform(0.5, 2.0, size=w.shape).astype("float32")
               for index, w in enumerate(layers[0].get_weights())]
    for layer in layers:
        layer.set_weights(weights)
    return layers


def normalize_with_gradients(layer, x, training):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)
    return y, tape.gradient(loss, [x, *layer.trainable_weights])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("options", [{}, {"center": False, "scale": False, "momentum": 0.5},
                                     {"epsilon": 1e-5}])
def test_fused_batch_norm_computes_what_keras_computes(training, options):
    x = np.random.default_rng(7).normal(3.0, 2.0, size=(4, 5, 5, 6)).astype("float32")
    stock, fused = twin_batch_norms(x.shape, **options)
    assert fused._fusable(tf.constant(x), None)
    moving_mean_before = fused.moving_mean.numpy()
    (y_stock, grads_stock), (y_fused, grads_fused) = (
        normalize_with_gradients(layer, x, training) for layer in (stock, fused))
    np.testing.assert_allclose(y_fused, y_stock, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(grads_fused, grads_stock):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
    # the moving statistics move (in training) exactly as Keras moves them
    for ours, theirs in zip(fused.non_trainable_weights, stock.non_trainable_weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert training == (not np.allclose(fused.moving_mean, moving_mean_before))


def test_fused_batch_norm_keeps_the_papers_epsilon_exactly():
    # Variances near epsilon: the 1.001e-5 that tf.nn.fused_batch_norm substitutes for 1e-5
    # would move the outputs by about 5e-4 of their size.
    x = np.random.default_rng(2).normal(0.0, 1e-3, size=(8, 3, 3, 4)).astype("float32")
    stock, fused = twin_batch_norms(x.shape, epsilon=1e-5)
    np.testing.assert_allclose(fused(x, training=True), stock(x, training=True), rtol=5e-5,
                               atol=5e-5)


def test_fused_batch_norm_in_bfloat16_keeps_float32_statistics():
    x = np.random.default_rng(3).normal(size=(8, 4, 4, 16)).astype("float32")
    stock, fused = twin_batch_norms(x.shape)
    fused_bf16 = BatchNormalization(dtype="mixed_bfloat16")
    fused_bf16.build(x.shape)
    fused_bf16.set_weights(stock.get_weights())
    y = fused_bf16(tf.cast(x, tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16 and fused_bf16.moving_mean.dtype == "float32"
    np.testing.assert_allclose(tf.cast(y, tf.float32), stock(x, training=True), atol=0.05)
    np.testing.assert_allclose(fused_bf16.moving_mean, stock.moving_mean, atol=1e-2)


def test_batch_norm_the_kernel_cannot_take_falls_back_to_keras():
    for shape, options in (((6, 10), {}),  # not 4-D
                           ((2, 3, 3, 10), {"epsilon": 1e-6}),
                           ((2, 10, 3, 3), {"axis": 1})):
        x = np.random.default_rng(5).normal(size=shape).astype("float32")
        stock, fused = twin_batch_norms(shape, **options)
        assert not fused._fusable(tf.constant(x), None)
        np.testing.assert_allclose(fused(x, training=True), stock(x, training=True), rtol=1e-5)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_grouped_conv2d_computes_what_keras_computes(groups):
    x = tf.constant(np.random.default_rng(6).normal(size=(2, 7, 7, 8)).astype("float32"))
    options = {"filters": 12, "kernel_size": 3, "strides": 2, "padding": "same",
               "groups": groups}
    stock, ours = keras.layers.Conv2D(**options), Conv2D(**options)
    for layer in (stock, ours):
        layer.build(x.shape)
    ours.set_weights(stock.get_weights())
    results = []
    for layer in (stock, ours):  # Keras compiles a grouped one with XLA; ours splits it
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y ** 3)
        results.append([y, *tape.gradient(loss, [x, *layer.trainable_weights])])
    for theirs, mine in zip(*results):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)


FOLDABLE = """
model:
  inputs: {image: [8, 8, 1]}
  layers:
    - conv2d: {filters: 4, kernel_size: 3, padding: same, name: conv1}
    - batch_normalization: {name: bn1}
    - relu: {name: relu1}
    - conv2d: {filters: 4, kernel_size: 3, padding: same, use_bias: false, name: conv2}
    - batch_normalization: {name: bn2, scale: false}
    - add: {name: add, inputs: [relu1, bn2]}
    - conv2d: {filters: 4, kernel_size: 1, activation: relu, name: conv3}
    - batch_normalization: {name: bn3}
    - global_average_pooling2d
    - dense: {units: 10, activation: softmax, name: predictions}
data: {dataset: digits, preprocess: {rescale: 0.00392156862745098}}
"""


def foldable_model():
    """FOLDABLE with batch normalizations that change their inputs (random weights and
    statistics, as after training)."""
    import zoo

    model = zoo.build_model(FOLDABLE)
    random = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([random.uniform(0.5, 2.0, weight.shape) if "variance" in weight.path
                               else random.normal(0.0, 0.5, weight.shape)
                               for weight in layer.weights])
    return model


def test_folding_batch_norm_into_convolutions_keeps_the_outputs():
    from zoo.layers import Folded, with_batch_norm_folded

    model = foldable_model()
    folded = with_batch_norm_folded(model)
    # conv3 has an activation before its normalization: it stays as it was
    assert [type(folded.get_layer(name)) for name in ("bn1", "bn2", "bn3")] == [
        Folded, Folded, type(model.get_layer("bn3"))]
    assert folded.get_layer("conv2").use_bias and len(folded.weights) < len(model.weights)
    images = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(folded(images), model(images, training=False), atol=1e-6)
