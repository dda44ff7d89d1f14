"""The few layers Keras lacks, and faster versions of two Keras layers (BatchNormalization,
grouped Conv2D) with the same arguments and weights. Registered so a saved `.keras` file
reloads them. Specs name them like any Keras layer (zoo.names). Also the network exports
serve: batch normalizations folded into the convolutions before them."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels, as in AlexNet and Caffe's LRN layer.

    b = a / (k + alpha / size * sum of a^2 over `size` neighbouring channels) ** beta

    The arguments follow Caffe's `lrn_param` (local_size, alpha, beta, k), so
    bvlc_alexnet's values carry over unchanged. Note that Caffe divides alpha
    by the window size; `tf.nn.local_response_normalization` does not.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd integer (the channel window), "
                             f"received {size!r}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, inputs):
        if keras.backend.backend() != "tensorflow" or len(inputs.shape) != 4:
            return self.formula(inputs)
        # TensorFlow's LRN kernel and its gradient kernel: 3.0-3.5x faster than the formula
        # (benchmarks/layers.py). They take float32 (a CPU also float16, not bfloat16), so
        # other precisions are computed in float32.
        normalized = tf.nn.local_response_normalization(
            tf.cast(inputs, tf.float32), depth_radius=self.size // 2, bias=self.k,
            alpha=self.alpha / self.size, beta=self.beta)
        return ops.cast(normalized, inputs.dtype)

    def formula(self, inputs):
        """The definition above in element-wise ops, for any rank and any Keras backend."""
        half = self.size // 2
        squares = ops.square(inputs)
        padded = ops.pad(squares, [[0, 0]] * (len(inputs.shape) - 1) + [[half, half]])
        channels = inputs.shape[-1]
        window_sum = sum(padded[..., offset:offset + channels] for offset in range(self.size))
        return inputs / ops.power(self.k + self.alpha / self.size * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha,
                "beta": self.beta, "k": self.k}


@keras.saving.register_keras_serializable(package="zoo")
class ChannelPadding(keras.layers.Layer):
    """Pads the channel axis with zeros: ResNet's parameter-free "option A" shortcut.

    He et al. (2015, §4.2) match a shortcut to a wider stage by zero-padding
    the extra channels; Keras pads only spatial axes (ZeroPadding2D).
    `padding` is (before, after), or one integer for both sides.
    """

    def __init__(self, padding=0, **kwargs):
        super().__init__(**kwargs)
        pair = (padding, padding) if isinstance(padding, int) else tuple(padding)
        if len(pair) != 2 or not all(isinstance(p, int) and p >= 0 for p in pair):
            raise ValueError(f"padding must be a non-negative integer or a pair "
                             f"(before, after), received {padding!r}")
        self.padding = pair

    def call(self, inputs):
        return ops.pad(inputs, [[0, 0]] * (len(inputs.shape) - 1) + [list(self.padding)])

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + sum(self.padding))

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding)}


@keras.saving.register_keras_serializable(package="zoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's BatchNormalization, trained with TensorFlow's fused kernel where it applies.

    In training, Keras 3 normalizes with separate element-wise ops and first casts bfloat16
    inputs to float32; TensorFlow's FusedBatchNormV3 (oneDNN on a CPU, cuDNN on a GPU) does
    it in one op, in the input's precision with float32 statistics: 1.4-3.1x faster per
    layer on these CPUs (benchmarks/layers.py). Same arguments, weights and results
    (tests/test_layers.py compares them with Keras's layer). Inference runs Keras's own
    multiply-add, which TensorFlow folds into the ops around it (the kernel there made
    ResNet-50's inference 3% slower, benchmarks/overhead.py), and so does what the kernel
    does not cover: not 4-D channels-last, masks, renorm, synchronized statistics, an
    epsilon under cuDNN's minimum.
    """

    # cuDNN's CUDNN_BN_MIN_EPSILON. The kernel is called directly (tf.raw_ops): the Python
    # wrapper tf.nn.fused_batch_norm would raise every epsilon up to 1.001e-5, so the papers'
    # 1e-5 (specs/templates/resnet.yaml) would never have been fused.
    SMALLEST_FUSED_EPSILON = 1e-5

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and inputs.dtype in (tf.float32, tf.bfloat16, tf.float16)
                and not self.renorm and not self.synchronized
                and self.epsilon >= self.SMALLEST_FUSED_EPSILON)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        unused = tf.zeros([0])  # in training the kernel computes the batch statistics itself
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=self.gamma if self.scale else tf.ones([channels]),
            offset=self.beta if self.center else tf.zeros([channels]),
            mean=unused, variance=unused, epsilon=self.epsilon, is_training=True)
        # The kernel returns the unbiased variance; Keras's moving average takes the biased.
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="zoo")
class Conv2D(keras.layers.Conv2D):
    """Keras's Conv2D, with a grouped convolution computed one group at a time.

    TensorFlow's CPU kernels take no groups, so Keras 3 compiles every grouped convolution
    with XLA, whose convolutions are slow on a CPU: AlexNet's grouped conv2, conv4 and conv5
    took most of its training step. Splitting the channels into `groups` ordinary
    convolutions (oneDNN's kernels on a CPU) and concatenating their outputs computes the
    same thing with the same kernel, as Caffe did: 6-9x faster in float32, 19-28x in
    bfloat16 for AlexNet's conv2 and conv4 (benchmarks/layers.py).
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or keras.backend.backend() != "tensorflow" \
                or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        # The kernel is (height, width, input channels per group, filters), its filters in
        # group order: group g reads input channels g*in/G.. and writes filters g*out/G..
        return tf.concat([super(Conv2D, self).convolution_op(group_inputs, group_kernel)
                          for group_inputs, group_kernel in zip(
                              tf.split(inputs, self.groups, axis=-1),
                              tf.split(kernel, self.groups, axis=-1))], axis=-1)


ZOO_LAYERS = (LocalResponseNormalization, ChannelPadding, BatchNormalization, Conv2D)
# The zoo's layers that replace a Keras layer of the same name and arguments.
FASTER = {keras.layers.BatchNormalization: BatchNormalization, keras.layers.Conv2D: Conv2D}


def with_stock_keras_layers(model: keras.Model) -> keras.Model:
    """The same network, weights included, with Keras's own BatchNormalization and Conv2D in
    place of the zoo's faster ones (same arguments, same weights): what a user writing the
    model by hand would have, and what loads where the zoo is not installed. The layers Keras
    lacks (LocalResponseNormalization, ChannelPadding) stay the zoo's."""
    return with_layer_classes(model, {zoo_class: keras_class
                                      for keras_class, zoo_class in FASTER.items()})


def with_layer_classes(model: keras.Model, classes: dict, **arguments) -> keras.Model:
    """The same network and weights, each layer of a class in `classes` made of the class it
    maps to, with `arguments` over every layer's own (dtype="float32")."""
    clone = keras.models.clone_model(model, clone_function=lambda layer: classes.get(
        type(layer), type(layer)).from_config({**layer.get_config(), **arguments}))
    clone.set_weights(model.get_weights())
    return clone


class Folded(keras.layers.Layer):
    """Where a batch normalization was folded into the convolution before it: its output
    unchanged (any `training` or `mask` argument the normalization was called with ignored)."""

    def call(self, inputs, **unused):
        return inputs


def with_batch_norm_folded(model: keras.Model) -> keras.Model:
    """The network for inference: each convolution whose output only an inference-mode batch
    normalization reads computes both, its kernel scaled and a bias added, and the
    normalization becomes `Folded`. Two passes over every such activation fewer, and the
    convolution, bias, residual addition and ReLU then fuse into one oneDNN kernel. The
    weights are the moving statistics' of now: a model for serving, not for training."""
    pairs = _conv_batch_norm_pairs(model)
    if not pairs:  # nothing to fold: the model itself, not a copy
        return model
    normalizations = {normalization.name for normalization in pairs.values()}

    def clone(layer):
        if layer.name in pairs:
            return _folded_convolution(layer, pairs[layer.name])
        return Folded(name=layer.name) if layer.name in normalizations else layer

    return keras.models.clone_model(model, clone_function=clone)


def _conv_batch_norm_pairs(model: keras.Model) -> dict:
    """Convolution name -> the channels-last batch normalization that alone reads its output
    (a convolution with an activation, or whose output is also the model's, stays apart)."""
    outputs = {id(tensor) for tensor in model.outputs}
    pairs = {}
    for layer in model.layers:
        if not (isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, 3)
                and len(layer._inbound_nodes) == 1):
            continue
        convolution = layer.input._keras_history.operation
        if (isinstance(convolution, keras.layers.Conv2D) and convolution.data_format ==
                "channels_last" and convolution.activation is keras.activations.linear
                and len(convolution._inbound_nodes) == 1
                and len(convolution._outbound_nodes) == 1
                and id(convolution.output) not in outputs):
            pairs[convolution.name] = layer
    return pairs


def _folded_convolution(convolution: keras.layers.Conv2D,
                        normalization: keras.layers.BatchNormalization) -> keras.layers.Conv2D:
    def value(variable):
        return ops.convert_to_numpy(variable).astype("float64")

    scale = value(normalization.gamma) if normalization.scale else 1.0
    scale = scale / (value(normalization.moving_variance) + normalization.epsilon) ** 0.5
    bias = value(convolution.bias) if convolution.use_bias else 0.0
    bias = (bias - value(normalization.moving_mean)) * scale + (
        value(normalization.beta) if normalization.center else 0.0)
    folded = type(convolution).from_config({**convolution.get_config(), "use_bias": True})
    folded.build(convolution.input.shape)
    dtype = convolution.kernel.dtype
    folded.set_weights([(value(convolution.kernel) * scale).astype(dtype), bias.astype(dtype)])
    return folded
