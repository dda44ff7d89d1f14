"""Greedy layer-wise pretraining, declared in a spec's `pretrain` section.

The recipe as taught (Bengio et al. 2007; Vincent et al. 2010):

1. Train the first listed layer as an autoencoder: corrupt its input (masking
   or Gaussian noise), encode with the layer, decode with a temporary decoder
   (tied: the transposed kernel; untied: its own), reconstruct the clean input.
2. Train each further listed layer the same way on the codes of the layers
   below it, which stay as trained (`freeze_lower`).
3. Train the rest of the network (the classifier head) with the pretrained
   layers frozen (`pretrain.head`), then everything together: the spec's
   `train` section is the fine-tuning.

With `method: rbm` each layer is instead a restricted Boltzmann machine trained
by contrastive divergence (a deep belief net, Hinton et al. 2006): its weights
are the Dense layer's kernel and bias plus a visible bias of the stage's own;
the layers above the first see the sigmoid probabilities of those below as data.

Each stage is a Keras model sharing the real model's layers, trained by the
same distributed loop as any model; the phases run in order and each resumes
on its own after an interruption.
"""

from __future__ import annotations

import keras
from keras import ops

from zoo.pipeline import Splits
from zoo.sections import pretrain_method
from zoo.training import Phase, layers_matching, train_phases


class MaskingNoise(keras.layers.Layer):
    """Sets a random fraction of the inputs to zero while training, without rescaling the
    rest (Vincent et al. 2010); Keras's Dropout rescales, which is not the same corruption."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        keep = keras.random.uniform(ops.shape(inputs), seed=self.generator) >= self.rate
        return inputs * ops.cast(keep, inputs.dtype)


class TiedDecoder(keras.layers.Layer):
    """Decodes with the transposed kernel of the encoder layer it mirrors, plus its own bias."""

    def __init__(self, encoder, input_shape_of_encoder, activation, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.target_shape = tuple(input_shape_of_encoder)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        channels = self.target_shape[-1]
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, codes):
        kernel = self.encoder.kernel
        if isinstance(self.encoder, keras.layers.Dense):
            decoded = ops.matmul(codes, ops.transpose(kernel))
        else:
            decoded = ops.conv_transpose(codes, kernel, strides=self.encoder.strides,
                                         padding=self.encoder.padding)
        return self.activation(decoded + self.bias)


class RestrictedBoltzmannMachine(keras.layers.Layer):
    """A binary RBM whose weights are a Dense layer's kernel and bias (the hidden bias) plus a
    visible bias of its own. Called on data while training, it adds the contrastive-divergence
    surrogate mean F(data) - mean F(negative sample) as a loss, F the free energy: its gradient
    is CD-k's update, <v h>data - <v h>model (Hinton 2002), the hidden units summed out
    exactly. It returns the mean-field reconstruction of its input, which the log reports
    (no gradient flows through it)."""

    def __init__(self, hidden, gibbs_steps=1, sample_hidden=True, sample_visible=False,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.gibbs_steps, self.sample_hidden, self.sample_visible = (
            gibbs_steps, sample_hidden, sample_visible)
        self.generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.visible_bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                            name="visible_bias")

    def hidden_inputs(self, visible):
        inputs = ops.matmul(visible, self.hidden.kernel)
        return inputs + self.hidden.bias if self.hidden.use_bias else inputs

    def visible_probabilities(self, hidden):
        return ops.sigmoid(ops.matmul(hidden, ops.transpose(self.hidden.kernel))
                           + self.visible_bias)

    def free_energy(self, visible):
        return (-ops.sum(visible * self.visible_bias, axis=-1)
                - ops.sum(ops.softplus(self.hidden_inputs(visible)), axis=-1))

    def sample(self, probabilities):
        # drawn and compared in float32: under mixed_bfloat16, uniform draws of 8 bits
        # would round small probabilities away
        draws = keras.random.uniform(ops.shape(probabilities), seed=self.generator)
        return ops.cast(draws < ops.cast(probabilities, "float32"), probabilities.dtype)

    def negative_sample(self, visible):
        """The end of k steps of block Gibbs sampling started at the data."""
        for _ in range(self.gibbs_steps):
            hidden = ops.sigmoid(self.hidden_inputs(visible))
            visible = self.visible_probabilities(self.sample(hidden) if self.sample_hidden
                                                 else hidden)
            if self.sample_visible:
                visible = self.sample(visible)
        return ops.stop_gradient(visible)

    def call(self, visible, training=False):
        if training:
            surrogate = (ops.mean(self.free_energy(visible))
                         - ops.mean(self.free_energy(self.negative_sample(visible))))
            self.add_loss(ops.cast(surrogate, "float32"))
        return ops.stop_gradient(self.visible_probabilities(
            ops.sigmoid(self.hidden_inputs(visible))))


def _untied_decoder(encoder, encoder_input_shape, activation, name):
    if isinstance(encoder, keras.layers.Dense):
        return keras.layers.Dense(encoder_input_shape[-1], activation=activation, name=name)
    return keras.layers.Conv2DTranspose(encoder_input_shape[-1], encoder.kernel_size,
                                        strides=encoder.strides, padding=encoder.padding,
                                        activation=activation, name=name)


def pretrained_layers(spec, model: keras.Model) -> list[str]:
    """The layers `pretrain.layers` names (names or patterns such as hidden*), bottom-up, each
    checked to be a layer its method can pretrain: Dense or Conv2D for an autoencoder, Dense
    with sigmoid activation for an RBM."""
    patterns = spec.pretrain["layers"]
    names = layers_matching(model, patterns)
    rbm = pretrain_method(spec.pretrain["method"])[0] == "rbm"
    for index, pattern in enumerate(patterns):
        for name in layers_matching(model, patterns[index:index + 1]):
            problem = (_not_an_rbm(model.get_layer(name)) if rbm
                       else _not_an_autoencoder(model.get_layer(name)))
            if problem:
                raise patterns.error(index, f"'{name}' {problem}")
    return names


def _not_an_autoencoder(layer) -> str:
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
        return ""
    return f"is a {type(layer).__name__}; greedy pretraining takes Dense or Conv2D layers"


def _not_an_rbm(layer) -> str:
    if not isinstance(layer, keras.layers.Dense):
        return (f"is a {type(layer).__name__}; method rbm takes Dense layers with sigmoid "
                "activation")
    if layer.activation is not keras.activations.sigmoid:
        return (f"has activation {layer.activation.__name__}; an RBM's hidden units are "
                "binary, so method rbm takes Dense layers with sigmoid activation (method "
                "autoencoder takes any)")
    return ""


def stage_model(model: keras.Model, layer_name: str, options: dict, seed: int) -> keras.Model:
    """The model that pretrains one layer: outputs (reconstruction, clean codes)."""
    method, settings = pretrain_method(options["method"])
    if method == "rbm":
        return rbm_stage_model(model, layer_name, settings, seed)
    return autoencoder_stage_model(model, layer_name, options, seed)


def rbm_stage_model(model: keras.Model, layer_name: str, settings: dict, seed: int):
    layer = model.get_layer(layer_name)
    visible = layer.input
    rbm = RestrictedBoltzmannMachine(layer, **settings, seed=seed,
                                     name=f"{layer_name}_pretrain_rbm")
    return keras.Model(model.inputs, [rbm(visible), visible], name=f"pretrain_{layer_name}")


def autoencoder_stage_model(model: keras.Model, layer_name: str, options: dict, seed: int):
    layer = model.get_layer(layer_name)
    clean = layer.input
    noise = options.get("noise") or {}
    corrupted = clean
    if noise.get("masking") is not None:
        corrupted = MaskingNoise(noise["masking"], seed=seed,
                                 name=f"{layer_name}_pretrain_noise")(clean)
    elif noise.get("gaussian") is not None:
        corrupted = keras.layers.GaussianNoise(noise["gaussian"], seed=seed,
                                               name=f"{layer_name}_pretrain_noise")(clean)
    activation = options.get("decoder_activation") or (
        "sigmoid" if "crossentropy" in str(reconstruction_loss(options)) else None)
    decoder_name = f"{layer_name}_pretrain_decoder"
    decoder = (TiedDecoder(layer, clean.shape[1:], activation, name=decoder_name)
               if options.get("tied") is not False
               else _untied_decoder(layer, clean.shape[1:], activation, decoder_name))
    return keras.Model(model.inputs, [decoder(layer(corrupted)), clean],
                       name=f"pretrain_{layer_name}")


def reconstruction_loss(options):
    """What a stage's log reports as its loss: an autoencoder's is what it trains on; an RBM
    trains on the contrastive-divergence surrogate and reports its squared error."""
    if pretrain_method(options["method"])[0] == "rbm":
        return "mean_squared_error"
    return options.get("loss") or "binary_crossentropy"


def phases(spec, model: keras.Model, labeled: Splits, unlabeled: Splits) -> list[Phase]:
    """The phases a spec declares, in order: greedy stages, the head, fine-tuning."""
    everything = {layer.name for layer in model.layers}
    options = spec.pretrain
    if not options:
        return train_phases(spec, model, labeled)
    names = pretrained_layers(spec, model)
    seed = options["seed"] if options.get("seed") is not None else spec.train["seed"]
    # A stage trains like any phase; what is not the pretraining's own comes from `train`.
    stage_section = {**dict(spec.train), "schedule": None, "early_stopping": None,
                     "metrics": None, "weight_decay": 0.0, "target": "codes", "seed": seed,
                     "steps_per_epoch": None, "stages": None, "freeze": None,
                     "loss": reconstruction_loss(options),
                     **{key: options[key] for key in ("epochs", "batch_size", "optimizer")}}
    result, below = [], set()
    for index, name in enumerate(names, start=1):
        stage = stage_model(model, name, options, seed)
        lower = {layer.name for layer in stage.layers} & everything - {name}
        trainable = {name} if options["freeze_lower"] else {name} | lower
        result.append(Phase(f"pretrain-{index}-{name}", f"pretrain {name}",
                            stage_section, stage, trainable, unlabeled, options))
        below |= lower | {name}
    own = options.get("head") or {}
    head = {**dict(spec.train), **{key: value for key, value in own.items() if value is not None}}
    result.append(Phase("head", "classifier (encoder frozen)", head, model,
                        everything - below - set(names), labeled,
                        own if own.get("optimizer") is not None else spec.train))
    return result + train_phases(spec, model, labeled, "finetune", "fine-tuning")
