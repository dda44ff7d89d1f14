"""Realistic mistakes in specs, as new users make them, and what the zoo must say about each.

    python reliability/mistakes.py            # run each through `train.py SPEC --dry-run`

Each case is a short spec (most extend a shipped one, as a user's first spec does) and
`--set` values, with the one located message `train.py --dry-run` must print (exit code 2,
no traceback) and the stage that catches it: `load` (the spec's own values), `build` (the
model's graph and Keras), `preflight` (names checked against the built model: zoo/preflight.py).
`MEANINGS` are specs that are right, with what they must mean once loaded (a YAML 1.2 number,
null as the default). tests/test_mistakes.py checks every case; run as a script, this prints
the table RELIABILITY.md shows, from real `train.py` processes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LENET = f"extends: {ROOT / 'specs' / 'lenet.yaml'}\n"
MLP = f"extends: {ROOT / 'specs' / 'mlp.yaml'}\n"
RESNET20 = f"extends: {ROOT / 'specs' / 'resnet20.yaml'}\n"
SDAE = f"extends: {ROOT / 'specs' / 'stacked_denoising_autoencoder.yaml'}\n"
UNET = f"extends: {ROOT / 'specs' / 'unet.yaml'}\n"
DBN = f"extends: {ROOT / 'specs' / 'dbn.yaml'}\n"
DIGITS = """\
model:
  inputs: {image: [8, 8, 1]}
  layers:
    - flatten
"""


@dataclass(frozen=True)
class Mistake:
    kind: str  # what the user got wrong, in a few words
    spec: str
    message: str  # what follows "error: " on stderr; SPEC stands for the spec's file name
    caught: str  # load, build or preflight
    sets: tuple = ()


@dataclass(frozen=True)
class Meaning:
    kind: str
    spec: str
    path: str  # a dotted path into the loaded spec's document, or `layer NAME.attribute`
    value: object  # what it must be
    sets: tuple = ()


MISTAKES = (
    # --- train: misspelt keys and arguments -------------------------------------------------
    Mistake("a misspelt optimizer argument",
            LENET + "train: {optimizer: {sgd: {learning_rat: 0.1}}}\n",
            "SPEC:2:27: train.optimizer.sgd.learning_rat: SGD has no argument 'learning_rat' "
            "(did you mean 'learning_rate'?)", "load"),
    Mistake("a Keras 2 argument name",
            LENET + "train:\n  optimizer: {adam: {lr: 0.001}}\n",
            "SPEC:3:22: train.optimizer.adam.lr: Adam has no argument 'lr' (Keras 3 calls it "
            "'learning_rate')", "load"),
    Mistake("a misspelt key of a step schedule",
            LENET + "train: {schedule: {step: {epoch: [10, 15]}}}\n",
            "SPEC:2:27: train.schedule.step.epoch: unknown key 'epoch' (did you mean 'epochs'?); "
            "valid keys here: epochs, factor, warmup_epochs", "load"),
    Mistake("a misspelt key of a plateau schedule",
            LENET + "train:\n  schedule:\n    plateau: {patince: 3}\n",
            "SPEC:4:15: train.schedule.plateau.patince: unknown key 'patince' (did you mean "
            "'patience'?); valid keys here: monitor, patience, factor", "load"),
    Mistake("a misspelt optimizer",
            LENET + "train: {optimizer: adamm}\n",
            "SPEC:2:20: train.optimizer: unknown optimizer 'adamm' (did you mean 'Adam' or "
            "'Nadam' or 'AdamW'?)", "load"),
    Mistake("a misspelt loss",
            LENET + "train: {loss: sparse_categorical_crossentropyy}\n",
            "SPEC:2:15: train.loss: unknown loss 'sparse_categorical_crossentropyy' (did you "
            "mean 'sparse_categorical_crossentropy' or 'categorical_crossentropy' or "
            "'categorical_focal_crossentropy'?)", "load"),
    Mistake("a Keras schedule without its required argument",
            LENET + "train: {schedule: cosine_decay}\n",
            "SPEC:2:19: train.schedule: CosineDecay needs the argument 'decay_steps'", "load"),
    Mistake("the learning rate written in train",
            LENET + "train: {learning_rate: 0.01}\n",
            "SPEC:2:9: train.learning_rate: unknown key 'learning_rate'; it belongs to the "
            "optimizer: optimizer: {sgd: {learning_rate: 0.01, momentum: 0.9}}; valid keys "
            "here: batch_size, epochs, steps_per_epoch, optimizer, schedule, loss, metrics, "
            "weight_decay, label_smoothing, ema, accumulate, seed, checkpoint_every, "
            "early_stopping, freeze, stages, target, precision, xla, steps_per_execution, "
            "threads", "load"),
    Mistake("epochs written at the top level",
            LENET + "epochs: 5\n",
            "SPEC:2:1: epochs: unknown key 'epochs'; it belongs in train: train: {epochs: ...}; "
            "valid keys here: extends, description, family, model, data, init, pretrain, train, "
            "export, expect", "load"),
    Mistake("a misspelt key given with --set",
            LENET, "--set train.epoch:1:1: train.epoch: unknown key 'epoch' (did you mean "
                   "'epochs'?); valid keys here: batch_size, epochs, steps_per_epoch, "
                   "optimizer, schedule, loss, metrics, weight_decay, label_smoothing, ema, "
                   "accumulate, seed, checkpoint_every, early_stopping, freeze, stages, "
                   "target, precision, xla, steps_per_execution, threads", "load",
            ("train.epoch=3",)),
    # --- train: values of the wrong kind ---------------------------------------------------
    Mistake("a batch size of zero",
            LENET + "train: {batch_size: 0}\n",
            "SPEC:2:21: train.batch_size: expected a positive integer, received the integer 0",
            "load"),
    Mistake("a fractional number of epochs",
            LENET + "train: {epochs: 2.5}\n",
            "SPEC:2:17: train.epochs: expected a positive integer, received the number 2.5",
            "load"),
    Mistake("a metric by Keras 2's short name",
            LENET + "train: {metrics: [acc]}\n",
            "SPEC:2:19: train.metrics[0]: expected one of accuracy, top5, received the string "
            "'acc'", "load"),
    Mistake("a precision by another name",
            LENET + "train: {precision: bf16}\n",
            "SPEC:2:20: train.precision: expected one of auto, float32, mixed_bfloat16, "
            "mixed_float16, received the string 'bf16'", "load"),
    Mistake("an optimizer argument Keras refuses",
            LENET + "train: {optimizer: {sgd: {momentum: 1.5}}}\n",
            "SPEC:2:37: train.optimizer.sgd.momentum: `momentum` must be a float between [0, "
            "1].", "preflight"),
    Mistake("an optimizer argument of the wrong kind",
            LENET + "train: {optimizer: {sgd: {nesterov: 'yes'}}}\n",
            "SPEC:2:37: train.optimizer.sgd.nesterov: SGD's argument 'nesterov' takes true or "
            "false, received the string 'yes'", "load"),
    Mistake("a step schedule's epochs out of order",
            LENET + "train: {schedule: {step: {epochs: [15, 10]}}}\n",
            "SPEC:2:40: train.schedule.step.epochs[1]: expected epochs in increasing order, "
            "received 10 after 15", "load"),
    Mistake("accuracy asked of an autoencoder",
            f"extends: {ROOT / 'specs' / 'autoencoder.yaml'}\ntrain: {{metrics: [accuracy]}}\n",
            "SPEC:2:18: train.metrics: accuracy and top5 compare predicted classes with labels; "
            "with target: input the run measures the loss alone, so leave metrics out",
            "preflight"),
    Mistake("a threads count of zero", LENET + "train: {threads: 0}\n",
            "SPEC:2:18: train.threads: expected auto or a number of threads from 1 to 1,024, "
            "received the integer 0", "load"),
    Mistake("steps per call written as a word Keras does not know",
            LENET + "train: {steps_per_execution: many}\n",
            "SPEC:2:30: train.steps_per_execution: expected auto or a number of steps from 1 "
            "to 10,000, received the string 'many'", "load"),
    # --- monitors the run never logs -------------------------------------------------------
    Mistake("an early-stopping monitor the run never logs",
            LENET + "train: {early_stopping: {monitor: val_acc, patience: 3}}\n",
            "SPEC:2:35: train.early_stopping.monitor: the run never logs 'val_acc' (did you "
            "mean 'val_accuracy'?); each epoch it logs loss, accuracy, val_loss, val_accuracy",
            "preflight"),
    Mistake("a plateau monitor the run never logs",
            LENET + "train: {schedule: {plateau: {monitor: val_top5}}}\n",
            "SPEC:2:39: train.schedule.plateau.monitor: the run never logs 'val_top5' (did you "
            "mean 'val_loss'?); each epoch it logs loss, accuracy, val_loss, val_accuracy",
            "preflight"),
    Mistake("an accuracy monitor on an autoencoder",
            f"extends: {ROOT / 'specs' / 'autoencoder.yaml'}\n"
            "train: {early_stopping: {monitor: val_accuracy}}\n",
            "SPEC:2:35: train.early_stopping.monitor: the run never logs 'val_accuracy'; each "
            "epoch it logs loss, val_loss", "preflight"),
    Mistake("a loss for one-hot labels on integer labels",
            LENET + "train: {loss: categorical_crossentropy}\n",
            "SPEC:2:15: train.loss: the loss cannot compare integer labels, one class per image "
            "(shape []) with the model's output (shape [10]): Arguments `target` and `output` "
            "must have the same rank (ndim). Received: target.shape=(2,), output.shape=(2, "
            "10); for integer labels use sparse_categorical_crossentropy", "preflight"),
    # --- data ---------------------------------------------------------------------------------
    Mistake("a misspelt dataset",
            LENET + "data: {dataset: mnist-subset}\n",
            "SPEC:2:17: data.dataset: unknown dataset 'mnist-subset' (did you mean "
            "'mnist_subset' or 'ag_news_subset'?); use a TFDS name (e.g. mnist, cifar10), an "
            "embedded one (mnist_subset, digits) or a folder of images with one sub-folder "
            "per class", "preflight"),
    Mistake("a rescale written as a fraction",
            LENET + "data: {preprocess: {rescale: 1/255}}\n",
            "SPEC:2:30: data.preprocess.rescale: expected a number >= 0, received the string "
            "'1/255'", "load"),
    Mistake("flip: true",
            LENET + "data: {augment: {flip: true}}\n",
            "SPEC:2:24: data.augment.flip: expected one of horizontal, vertical, both, received "
            "the boolean True", "load"),
    Mistake("a standard deviation of zero",
            LENET + "data: {preprocess: {std: [0]}}\n",
            "SPEC:2:27: data.preprocess.std[0]: expected a number > 0, received the integer 0",
            "load"),
    Mistake("the batch size written in data",
            LENET + "data: {batch_size: 32}\n",
            "SPEC:2:8: data.batch_size: unknown key 'batch_size'; it belongs in train: train: "
            "{batch_size: ...}; valid keys here: dataset, train_split, eval_split, "
            "validation_split, preprocess, augment, shuffle_buffer", "load"),
    Mistake("mixup on an autoencoder",
            f"extends: {ROOT / 'specs' / 'autoencoder.yaml'}\ndata: {{augment: {{mixup: 0.2}}}}\n",
            "SPEC:2:25: data.augment.mixup: mixup mixes the labels of two images, so it needs "
            "target: label and the loss sparse_categorical_crossentropy", "preflight"),
    Mistake("a random crop's scale written largest first",
            LENET + "data: {augment: {random_resized_crop: {scale: [1.0, 0.5]}}}\n",
            "SPEC:2:47: data.augment.random_resized_crop.scale: expected two numbers (number "
            "above 0 to 1), the least first, such as [0.08, 1.0], received [1.0, 0.5]", "load"),
    Mistake("label smoothing with another loss",
            LENET + "train: {loss: mean_squared_error, label_smoothing: 0.1}\n",
            "SPEC:2:52: train.label_smoothing: label smoothing turns the integer labels into "
            "smoothed one-hot vectors for sparse_categorical_crossentropy; with another loss, "
            "leave it at 0", "load"),
    # --- pretrain -------------------------------------------------------------------------------
    Mistake("both kinds of noise",
            SDAE + "pretrain: {noise: {gaussian: 0.1}}\n",
            "SPEC:2:19: pretrain.noise: expected one kind of noise, {masking: rate} or "
            "{gaussian: stddev}, received masking and gaussian", "load"),
    Mistake("a masking rate in percent",
            SDAE + "pretrain: {noise: {masking: 20}}\n",
            "SPEC:2:29: pretrain.noise.masking: expected a number from 0 to below 1, received "
            "the integer 20", "load"),
    Mistake("a pretrain pattern that matches no layer",
            SDAE + "pretrain: {layers: [hiden*]}\n",
            "SPEC:2:21: pretrain.layers[0]: no layer of the model matches 'hiden*'; its layers: "
            "flatten, hidden1_dense, hidden2_dense, hidden3_dense, hidden4_dense, "
            "hidden5_dense, hidden6_dense, hidden7_dense, predictions", "preflight"),
    Mistake("pretraining a layer that has no weights to pretrain",
            SDAE + "pretrain: {layers: [flatten]}\n",
            "SPEC:2:21: pretrain.layers[0]: 'flatten' is a Flatten; greedy pretraining takes "
            "Dense or Conv2D layers", "preflight"),
    Mistake("pretrain layers as one string",
            SDAE + "pretrain: {layers: hidden*}\n",
            "SPEC:2:20: pretrain.layers: expected a non-empty list of layer names or patterns "
            "(hidden*), received the string 'hidden*'", "load"),
    Mistake("tied: \"false\"",
            SDAE + "pretrain: {tied: \"false\"}\n",
            "SPEC:2:18: pretrain.tied: expected true or false, received the string 'false'",
            "load"),
    Mistake("an RBM on the softmax output layer",
            DBN + "pretrain: {layers: [hidden*_dense, predictions]}\n",
            "SPEC:2:36: pretrain.layers[1]: 'predictions' has activation softmax; an RBM's "
            "hidden units are binary, so method rbm takes Dense layers with sigmoid activation "
            "(method autoencoder takes any)", "preflight"),
    Mistake("autoencoder noise with method rbm",
            DBN + "pretrain: {noise: {masking: 0.2}}\n",
            "SPEC:2:12: pretrain.noise: 'noise' is an option of method autoencoder; an RBM is "
            "trained by contrastive divergence, its options in method: {rbm: {gibbs_steps: 1, "
            "...}}; remove 'noise' (null it where a base spec sets it)", "load"),
    Mistake("a misspelt pretraining method",
            DBN + "pretrain: {method: rmb}\n",
            "SPEC:2:20: pretrain.method: unknown pretraining method 'rmb' (did you mean "
            "'rbm'?); valid methods: autoencoder, rbm", "load"),
    Mistake("CD-0",
            DBN + "pretrain: {method: {rbm: {gibbs_steps: 0}}}\n",
            "SPEC:2:40: pretrain.method.rbm.gibbs_steps: expected a positive integer, received "
            "the integer 0", "load"),
    Mistake("RBMs that also train the layers below",
            DBN + "pretrain: {freeze_lower: false}\n",
            "SPEC:2:26: pretrain.freeze_lower: an RBM's data are the codes of the layers below "
            "it, which stay as trained; with method rbm, freeze_lower must be true", "load"),
    # --- starting from weights ----------------------------------------------------------------
    Mistake("weights from a file that is not there",
            LENET + "init: {from: exports/lenet/1/model.kera}\n",
            "SPEC:2:14: init.from: no such file or folder: exports/lenet/1/model.kera (paths "
            "are relative to the working folder)", "preflight"),
    Mistake("a frozen layer that is not in the model",
            LENET + "train: {freeze: [conv1, conv3]}\n",
            "SPEC:2:25: train.freeze[1]: no layer of the model matches 'conv3' (did you mean "
            "'conv2' or 'conv1'?); its layers: conv1, pool1, conv2, pool2, flatten, fc1, fc2, "
            "predictions", "preflight"),
    Mistake("freeze for the whole run and stages too",
            LENET + "train:\n  freeze: [conv1]\n  stages: [{epochs: 2}]\n",
            "SPEC:3:3: train.freeze: with stages, each stage says what it freezes "
            "(train.stages[i].freeze); train.freeze would be ambiguous", "load"),
    # --- export and expect ------------------------------------------------------------------
    Mistake("an export output naming no layer",
            LENET + "export: {outputs: {probabilities: predictionz}}\n",
            "SPEC:2:35: export.outputs.probabilities: no layer named 'predictionz' in the model "
            "(did you mean 'predictions'?)", "preflight"),
    Mistake("export outputs as a list",
            LENET + "export: {outputs: [probabilities]}\n",
            "SPEC:2:19: export.outputs: expected a mapping of output names to layer names, "
            "received a list", "load"),
    Mistake("a misspelt expect key",
            LENET + "expect: {params: 61706}\n",
            "SPEC:2:10: expect.params: unknown key 'params' (did you mean 'total_params'?); "
            "valid keys here: total_params, trainable_params, output_shape", "load"),
    # --- the model ------------------------------------------------------------------------------
    Mistake("use_bias: \"false\"",
            DIGITS + "    - dense: {units: 10, use_bias: \"false\"}\n",
            "SPEC:5:26: model.layers[1].dense.use_bias: layer 'dense': Dense's argument "
            "'use_bias' takes true or false, received the string 'false'", "build"),
    Mistake("filters: \"64\"",
            "model:\n  inputs: {image: [8, 8, 1]}\n  layers:\n"
            "    - conv2d: {filters: \"64\", kernel_size: 3}\n",
            "SPEC:4:16: model.layers[0].conv2d.filters: layer 'conv2d': Conv2D's argument "
            "'filters' takes a positive integer, received the string '64'", "build"),
    Mistake("a dropout rate in percent",
            DIGITS + "    - dropout: {rate: 50}\n",
            "SPEC:5:17: model.layers[1].dropout.rate: layer 'dropout': Dropout's argument "
            "'rate' takes a number from 0 to below 1, received the integer 50", "build"),
    Mistake("a layer without its required argument",
            DIGITS + "    - dense: {activation: relu}\n",
            "SPEC:5:7: model.layers[1].dense: layer 'dense': Dense needs the argument 'units'",
            "build"),
    Mistake("a misspelt initializer",
            DIGITS + "    - dense: {units: 10, kernel_initializer: he_normall}\n",
            "SPEC:5:26: model.layers[1].dense.kernel_initializer: layer 'dense': unknown "
            "initializer 'he_normall' (did you mean 'he_normal' or 'lecun_normal' or "
            "'he_uniform'?)", "build"),
    Mistake("a regularizer's factor as a string",
            DIGITS + "    - dense: {units: 10, kernel_regularizer: {l2: {l2: \"1e-4\"}}}\n",
            "SPEC:5:26: model.layers[1].dense.kernel_regularizer: layer 'dense': L2's argument "
            "'l2' takes a number, received the string '1e-4'", "build"),
    Mistake("a misspelt input dtype",
            "model:\n  inputs: {image: {shape: [8, 8, 1], dtype: float23}}\n  layers: "
            "[flatten]\n",
            "SPEC:2:45: model.inputs.image.dtype: unknown dtype 'float23' (did you mean "
            "'float32' or 'float64' or 'float16'?); the dtypes: float16, float32, float64, "
            "uint8, uint16, uint32, uint64, int8, int16, int32, int64, bfloat16, bool, string, "
            "float8_e4m3fn, float8_e5m2, complex64, complex128", "build"),
    Mistake("an input name with a slash",
            "model:\n  inputs: {digits/image: [8, 8, 1]}\n  layers: [flatten]\n",
            "SPEC:2:12: model.inputs.digits/image: an input's name is letters, digits and '_', "
            "starting with a letter (e.g. image), received the string 'digits/image'",
            "build"),
    Mistake("a layer too large to allocate",
            DIGITS + "    - dense: {units: 1000000000000000000}\n",
            "SPEC:5:7: model.layers[1].dense: layer 'dense': Keras could not apply it to its "
            "input(s) of shape (None, 64): Shape [64,1000000000000000000] would have more than "
            "2**63 - 1 elements", "build"),
    Mistake("an integer of thousands of digits",
            DIGITS + "    - dense: {units: " + "9" * 5000 + "}\n",
            "SPEC:5:22: model.layers[1].dense.units: an integer of 5000 digits is larger than "
            "any size, count or seed a spec can use (at most 9,223,372,036,854,775,807)",
            "load"),
    Mistake("a misspelt variable given with --set",
            LENET, "--set model.vars.clases:1:1: model.vars.clases: the spec has no variable "
                   "'clases' (did you mean 'classes'?); --set changes the spec's variables "
                   "(classes), it cannot add one that nothing reads", "load",
            ("model.vars.clases=5",)),
    Mistake("extends changed with --set",
            LENET, "--set extends:1:1: extends: a base spec is merged when the file is read, "
                   "before --set applies, so --set cannot change it; write a spec that "
                   "extends the base you want (a variant is a few lines)", "load",
            ("extends=specs/mlp.yaml",)),
    # --- blocks with several outputs and inputs (U-Net's skip connections) ------------------
    Mistake("a misspelt output of a block",
            UNET, "--set model.layers[4].expand.inputs:1:1: model.layers[4].expand.inputs: "
                  "block 'contract' (here 'enc2') has no output 'skp' (did you mean 'skip'?); "
                  "its outputs: enc2.down, enc2.skip", "build",
            ("model.layers[4].expand.inputs=[bottom, enc2.skp]",)),
    Mistake("a block's output named as its Keras layer",
            UNET, "--set model.layers[4].expand.inputs:1:1: model.layers[4].expand.inputs: "
                  "undefined node 'enc2_skip' (did you mean 'enc2.skip' or 'enc1.skip' or "
                  "'enc2'?); defined above: image, noise, enc1, enc1.down, enc1.skip, enc2, "
                  "enc2.down, enc2.skip, bottom", "build",
            ("model.layers[4].expand.inputs=[bottom, enc2_skip]",)),
    Mistake("a block of two inputs given one",
            UNET, "--set model.layers[4].expand.inputs:1:1: model.layers[4].expand.inputs: "
                  "block 'expand' takes 2 inputs (below, skip), received 1; give them in that "
                  "order: inputs: [node, ...]", "build",
            ("model.layers[4].expand.inputs=bottom",)),
    Mistake("a block's outputs naming a node it lacks",
            DIGITS.replace("  layers:\n", "  blocks:\n    pair:\n      outputs: [first, secnd]\n"
                           "      layers:\n        - dense: {name: first, units: 4}\n"
                           "        - dense: {name: second, units: 4}\n  layers:\n")
            + "    - pair\n",
            "SPEC:5:24: model.blocks.pair.outputs[1]: undefined node 'secnd' (did you mean "
            "'second'?)", "build"),
    # --- editing a base's layers by name ----------------------------------------------------
    Mistake("a misspelt layer name when editing a base's block",
            RESNET20 + "model:\n  blocks:\n    basic:\n      layers: {shortcut_pol: null}\n",
            "SPEC:5:16: model.blocks.basic.layers.shortcut_pol: the base's layers have no layer "
            "named 'shortcut_pol' (did you mean 'shortcut_pool' or 'shortcut_pad'?); named "
            "layers there: conv1, bn1, relu1, conv2, bn2, shortcut_pool, shortcut_pad, add, out",
            "load"),
    Mistake("a shortcut dropped while the add still takes it",
            RESNET20 + "model:\n  blocks:\n    basic:\n      layers: {shortcut_pool: null, "
            "shortcut_pad: null}\n",
            f"SPEC:5:51: model.blocks.basic.layers.shortcut_pad: layer 'shortcut_pad' is dropped, "
            f"but 'add' ({ROOT / 'specs' / 'templates' / 'resnet_cifar.yaml'}:32:36) takes it as "
            "input; change 'add' too, e.g. add: {add: {inputs: ...}}, or drop it", "load"),
    Mistake("shapes that cannot be added",
            "model:\n  inputs: {image: [8, 8, 1]}\n  layers:\n    - flatten: {name: flat}\n"
            "    - dense: {units: 10, name: a}\n    - dense: {units: 5, name: b, inputs: flat}\n"
            "    - add: {inputs: [a, b]}\n",
            "SPEC:7:7: model.layers[3].add: layer 'add': Keras could not apply it to its "
            "input(s) of shape (None, 10), (None, 5): Inputs have incompatible shapes. "
            "Received shapes (10,) and (5,)", "build"),
)

MEANINGS = (
    Meaning("a learning rate written 1e-3 (YAML 1.2 reads a number)",
            LENET + "train: {optimizer: {adam: {learning_rate: 1e-3}}}\n",
            "train.optimizer", {"adam": {"learning_rate": 0.001}}),
    Meaning("weight decay written 5e-4", LENET + "train: {weight_decay: 5e-4}\n",
            "train.weight_decay", 0.0005),
    Meaning("padding: null is Keras's default",
            "model:\n  inputs: {image: [8, 8, 1]}\n  layers:\n"
            "    - conv2d: {filters: 4, kernel_size: 3, padding: null}\n",
            "layer conv2d.padding", "valid"),
    Meaning("a layer type's defaults set to null are Keras's",
            f"extends: {ROOT / 'specs' / 'resnet20.yaml'}\n", "layer bn1.epsilon", 0.001,
            ("model.defaults.batch_normalization=null",)),
    Meaning("tied: null is the default (a tied decoder)", SDAE + "pretrain: {tied: null}\n",
            "pretrain.tied", None),
    Meaning("method: null is autoencoder", SDAE + "pretrain: {method: null}\n",
            "pretrain.method", "autoencoder"),
    Meaning("freeze_lower: null is true", SDAE + "pretrain: {freeze_lower: null}\n",
            "pretrain.freeze_lower", True),
    Meaning("unlabeled: null is the training split", SDAE + "pretrain: {unlabeled: null}\n",
            "pretrain.unlabeled", None),
    Meaning("monitor: null is val_loss",
            LENET + "train: {early_stopping: {monitor: null, patience: 3}}\n",
            "train.early_stopping.monitor", "val_loss"),
    Meaning("patience: null is 5", LENET + "train: {early_stopping: {patience: null}}\n",
            "train.early_stopping.patience", 5),
    Meaning("another optimizer than the base spec's replaces it",
            LENET + "train: {optimizer: {adam: {learning_rate: 0.001}}}\n",
            "train.optimizer", {"adam": {"learning_rate": 0.001}}),
)


def dry_run(spec_text: str, sets=(), folder: Path = Path(".")):
    """Run `train.py spec.yaml --dry-run` as a user would: (exit code, stdout, stderr)."""
    import subprocess

    (folder / "spec.yaml").write_text(spec_text)
    command = [sys.executable, str(ROOT / "train.py"), "spec.yaml", "--dry-run"]
    for assignment in sets:
        command += ["--set", assignment]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


def main() -> int:
    """Each mistake through a real train.py process: the table RELIABILITY.md shows."""
    import tempfile

    failures = 0
    print("| mistake | caught at | exit | as expected |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for case in MISTAKES:
            code, _, stderr = dry_run(case.spec, case.sets, Path(folder))
            expected = "error: " + case.message.replace("SPEC", "spec.yaml") + "\n"
            ok = code == 2 and stderr == expected
            failures += not ok
            print(f"| {case.kind} | {case.caught} | {code} | {'yes' if ok else 'NO'} |")
            if not ok:
                print(f"    got: {stderr.strip()}", file=sys.stderr)
    print(f"\n{len(MISTAKES) - failures} of {len(MISTAKES)} as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
