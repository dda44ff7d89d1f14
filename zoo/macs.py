"""Multiply-accumulates per example, counted from a built Keras model.

Only the layers that dominate the cost are counted, as the papers count them:
convolutions (plain, grouped, depthwise, separable, transposed) and dense
layers. Biases, normalization, activations, pooling and additions are left out.
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
    in*out for a dense layer (applied at every position of a >2-D input).
    """
    if isinstance(layer, (*_CONVOLUTIONS, *_DEPTHWISE, keras.layers.Dense)):
        positions = _positions(layer.output)
        return None if positions is None else positions * math.prod(layer.kernel.shape)
    if isinstance(layer, _TRANSPOSED):  # every input position is spread by the whole kernel
        positions = _positions(layer.input)
        return None if positions is None else positions * math.prod(layer.kernel.shape)
    if isinstance(layer, _SEPARABLE):
        positions = _positions(layer.output)
        if positions is None:
            return None
        # The depthwise part runs at the output's positions too (it carries the strides).
        return positions * (math.prod(layer.depthwise_kernel.shape)
                            + math.prod(layer.pointwise_kernel.shape))
    return 0


def model_macs(model: keras.Model) -> int | None:
    """Multiply-accumulates of one forward pass of one example; None if an input size is open."""
    counts = [layer_macs(layer) for layer in model.layers]
    return None if None in counts else sum(counts)


def format_macs(count: int | None) -> str:
    """4,089,184,256 -> '4.09 G'; the way MACs are usually quoted."""
    if count is None:
        return "n/a"
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.3g} {unit}"
    return str(count)
