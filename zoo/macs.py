"""Multiply-accumulates per example, counted from a built Keras model.

Only the layers that dominate the cost are counted, as the papers count them:
convolutions (plain, grouped, depthwise, separable, transposed), dense layers
and recurrent layers (SimpleRNN, GRU, LSTM: the input and recurrent kernels at
every time step), inside Bidirectional and TimeDistributed too. Biases,
normalization, activations, gates' element-wise products, pooling and additions
are left out.
"""

from __future__ import annotations

import math

import keras

_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
               keras.layers.Conv3DTranspose)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)


def _positions(tensor) -> int | None:
    """Spatial positions of one example (the axes between batch and channels)."""
    spatial = tuple(tensor.shape[1:-1])
    return None if None in spatial else math.prod(spatial)


def layer_macs(layer: keras.layers.Layer) -> int | None:
    """The layer's multiply-accumulates for one example; 0 if it is not counted, None if the
    input size is not fixed.

    A kernel's size is the work per output position: kh*kw*(in/groups)*out for a convolution,
    in*out for a dense layer (applied at every position of a >2-D input); a recurrent layer
    applies its input kernel (in*gates*units) and recurrent kernel (units*gates*units) once
    per time step.
    """
    if isinstance(layer, keras.layers.Bidirectional):  # both directions read the whole input
        return _sum([_recurrent(layer.forward_layer, layer.input),
                     _recurrent(layer.backward_layer, layer.input)])
    if isinstance(layer, keras.layers.TimeDistributed):  # the time axis is one more position
        return _kernel_macs(layer.layer, layer.input, layer.output)
    if isinstance(layer, (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)):
        return _recurrent(layer, layer.input)
    return _kernel_macs(layer, layer.input, layer.output)


def _kernel_macs(layer, inputs, outputs) -> int | None:
    """A convolution's or dense layer's MACs at the positions of `inputs` -> `outputs`."""
    if isinstance(layer, (*_CONVOLUTIONS, *_DEPTHWISE, keras.layers.Dense)):
        positions = _positions(outputs)
        return None if positions is None else positions * math.prod(layer.kernel.shape)
    if isinstance(layer, _TRANSPOSED):  # every input position is spread by the whole kernel
        positions = _positions(inputs)
        return None if positions is None else positions * math.prod(layer.kernel.shape)
    if isinstance(layer, _SEPARABLE):
        positions = _positions(outputs)
        if positions is None:
            return None
        # The depthwise part runs at the output's positions too (it carries the strides).
        return positions * (math.prod(layer.depthwise_kernel.shape)
                            + math.prod(layer.pointwise_kernel.shape))
    return 0


def _recurrent(layer, inputs) -> int | None:
    if not isinstance(layer, (keras.layers.SimpleRNN, keras.layers.GRU, keras.layers.LSTM)):
        return 0
    steps = inputs.shape[1]
    cell = layer.cell
    return None if steps is None else steps * (math.prod(cell.kernel.shape)
                                               + math.prod(cell.recurrent_kernel.shape))


def _sum(counts) -> int | None:
    return None if None in counts else sum(counts)


def model_macs(model: keras.Model) -> int | None:
    """Multiply-accumulates of one forward pass of one example; None if an input size is open."""
    return _sum([layer_macs(layer) for layer in model.layers])


def format_macs(count: int | None) -> str:
    """4,089,184,256 -> '4.09 G'; the way MACs are usually quoted."""
    if count is None:
        return "n/a"
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.3g} {unit}"
    return str(count)
