"""Every section of a spec, declared once: a table of keys, each with its kind of value, its
default, and what it means.

From these tables come the checks `zoo.spec` runs on every spec (unknown keys, wrong types,
`null` meaning the default), the defaults `zoo summary` shows, the JSON Schema (`zoo schema`),
the key tables of docs/spec-reference.md (`zoo schema --reference`), and a test for every key
(tests/test_sections.py). A key added here is checked, documented and tested at once.

The `model` section's own language (layers, blocks, repeat) is checked as it is expanded,
in `zoo.graph`; its keys are declared here too.
"""

from __future__ import annotations

from zoo.expressions import MAX_EXPRESSION_LENGTH, MAX_STRING_LENGTH
from zoo.source import (MAX_BYTES, MAX_DEPTH, MAX_INTEGER, MAX_NODES, Mapping, Sequence,
                        SpecError, normalize_name, suggest)
from zoo.tables import REQUIRED, Key, Section, Table, check_table, table_schema
from zoo.values import (Boolean, Choice, Either, Integer, KerasName, KerasObject, LayerName,
                        LayerPatterns, ListOf, Monitor, NameMap, Number, Range, Structure, Text,
                        Type,
                        name_location, split_call)


def walk(mapping: Mapping, table: Table):
    """(container, key, kind) of every value given in `mapping`, and in the sections and
    schedules inside it, by the kind its table declares: how checks that need the built model
    find every monitor, layer name and Keras object (zoo.preflight)."""
    for key in table.keys:
        value = mapping.get(key.name)
        if value is None:
            continue
        kind = key.kind
        if isinstance(kind, Schedule):
            name, kwargs = split_call(value, mapping, key.name, kind.words)
            if normalize_name(name) in EPOCH_SCHEDULES:
                yield from walk(kwargs, EPOCH_SCHEDULES[normalize_name(name)])
                continue
            kind = KERAS_SCHEDULE
        yield from _walk_value(mapping, key.name, kind)


def _walk_value(container, key, kind):
    yield container, key, kind
    value = container[key]
    if isinstance(kind, Section):
        yield from walk(value, kind.table)
    elif isinstance(kind, NameMap):
        for name in value:
            yield from _walk_value(value, name, kind.value)
    elif isinstance(kind, ListOf):
        for index in range(len(value)):
            yield from _walk_value(value, index, kind.item)


class Schedule(Type):
    """The learning rate over the epochs: one of the zoo's schedules counted in epochs (a
    table each), or any Keras LearningRateSchedule by name (counted in steps, starting from
    the optimizer's rate)."""

    words = "a learning-rate schedule: a name, or a mapping of one name to its keyword arguments"
    example, wrong = {"step": {"epochs": [2]}}, 5

    def check(self, value, container, key):
        name, kwargs = split_call(value, container, key, self.words)
        zoo_schedule = EPOCH_SCHEDULES.get(normalize_name(name))
        if zoo_schedule is not None:
            check_table(kwargs, zoo_schedule)
            return value
        from zoo import names

        if names.registry("schedule").find(name) is None:
            known = [*EPOCH_SCHEDULES, *names.registry("schedule").names]
            raise SpecError(name_location(value, container, key), container.child_path(key),
                            f"unknown learning-rate schedule '{name}'{suggest(name, known)}")
        return KERAS_SCHEDULE.check(value, container, key)

    def schema(self) -> dict:
        return KERAS_SCHEDULE.schema()


# Keras's schedules count in steps and start from the optimizer's rate, which the zoo supplies.
KERAS_SCHEDULE = KerasObject("schedule", "learning-rate schedule", "cosine_decay",
                             supplied=("initial_learning_rate",))


def _increasing_epochs(step: Mapping) -> None:
    epochs = step["epochs"]
    for index in range(1, len(epochs)):
        if epochs[index] <= epochs[index - 1]:
            raise epochs.error(index, f"expected epochs in increasing order, received "
                                      f"{epochs[index]} after {epochs[index - 1]}")


def _smoothing_with_its_loss(train: Mapping) -> None:
    loss = train.get("loss")
    name = loss if isinstance(loss, str) else next(iter(loss or {"": None}))
    if train.get("label_smoothing") and normalize_name(name) != "sparsecategoricalcrossentropy":
        raise train.error("label_smoothing", "label smoothing turns the integer labels into "
                                             "smoothed one-hot vectors for "
                                             "sparse_categorical_crossentropy; with another "
                                             "loss, leave it at 0")


def _freeze_once(train: Mapping) -> None:
    if train.get("freeze") is not None and train.get("stages") is not None:
        raise train.key_error("freeze", "with stages, each stage says what it freezes "
                                        "(train.stages[i].freeze); train.freeze would be "
                                        "ambiguous")


def _one_noise(noise: Mapping) -> None:
    given = [key for key in ("masking", "gaussian") if noise.get(key) is not None]
    if len(given) > 1:
        raise SpecError(noise.location, noise.path, "expected one kind of noise, {masking: "
                        "rate} or {gaussian: stddev}, received "
                        f"{' and '.join(given) or 'none'}")


def _options_of_its_method(pretrain: Mapping) -> None:
    """An RBM has no corruption, decoder or reconstruction loss: the autoencoder's keys given
    with method rbm would be silently ignored, so they are refused."""
    if pretrain_method(pretrain["method"])[0] != "rbm":
        return
    for key in AUTOENCODER_KEYS:
        if pretrain.get(key) is not None:
            raise pretrain.key_error(key, f"'{key}' is an option of method autoencoder; an RBM "
                                          "is trained by contrastive divergence, its options "
                                          "in method: {rbm: {gibbs_steps: 1, ...}}; remove "
                                          f"'{key}' (null it where a base spec sets it)")
    if pretrain.get("freeze_lower") is False:
        raise pretrain.error("freeze_lower", "an RBM's data are the codes of the layers "
                                             "below it, which stay as trained; with method "
                                             "rbm, freeze_lower must be true")


# --- the limits of the language: each enforced where its constant is used, tested at its edge

MAX_PAD = 1000
MAX_THREADS = 1024
MAX_STEPS_PER_EXECUTION = 10_000
MAX_GIBBS_STEPS = 100  # each step is unrolled into the training step's graph
MAX_EXTENDS_DEPTH = 16
MAX_REPEAT = 1_000
MAX_LAYERS = 50_000
MAX_BLOCK_NESTING = 32
LIMITS = (  # (what, the most allowed, unit), for the reference
    ("a spec file's size", MAX_BYTES, "bytes"),
    ("nesting of mappings and lists", MAX_DEPTH, "levels"),
    ("values in a file once YAML aliases are expanded", MAX_NODES, "values"),
    ("an integer", MAX_INTEGER, ""),
    ("bases a spec extends, one over another", MAX_EXTENDS_DEPTH, "levels"),
    ("layers in a model", MAX_LAYERS, "layers"),
    ("`times` of one `repeat`", MAX_REPEAT, "repetitions"),
    ("blocks inside blocks", MAX_BLOCK_NESTING, "levels"),
    ("an expression `${...}`", MAX_EXPRESSION_LENGTH, "characters"),
    ("a string an expression makes", MAX_STRING_LENGTH, "characters"),
    ("`data.augment.pad_crop`", MAX_PAD, "pixels"),
    ("`train.threads`", MAX_THREADS, "threads per pool"),
    ("`train.steps_per_execution`", MAX_STEPS_PER_EXECUTION, "steps"),
    ("`pretrain.method.rbm.gibbs_steps`", MAX_GIBBS_STEPS, "steps"),
)

# --- the tables ------------------------------------------------------------------------------

# Keys users write in one section that belong in another (Keras's fit() and other zoos
# take them elsewhere).
IN_OPTIMIZER = {key: "to the optimizer: optimizer: {sgd: {learning_rate: 0.01, momentum: 0.9}}"
                for key in ("learning_rate", "lr", "momentum", "nesterov", "beta_1", "beta_2",
                            "epsilon", "clipnorm")}
IN_TRAIN = {key: f"in train: train: {{{key}: ...}}" for key in (
    "batch_size", "epochs", "optimizer", "loss", "metrics", "schedule", "seed",
    "early_stopping", "weight_decay", "steps_per_epoch")}
IN_DATA = {key: f"in data: data: {{{key}: ...}}" for key in (
    "dataset", "preprocess", "augment", "validation_split", "eval_split", "train_split")}
IN_MODEL = {key: f"in model: model: {{{key}: ...}}" for key in (
    "inputs", "layers", "outputs", "blocks", "vars", "defaults")}

POSITIVE = Integer(1)

PREPROCESS = Table("data.preprocess", (
    Key("rescale", Number(0, example=0.00392156862745098), 1.0,
        "multiply pixels by this (`0.00392156862745098` = 1/255)"),
    Key("mean", ListOf(Number(), "a list of numbers, one per channel"), None,
        "subtract per channel, after rescaling"),
    Key("std", ListOf(Number(0, above=True), "a list of numbers > 0, one per channel"), None,
        "divide per channel, after subtracting the mean"),
    Key("resize", Choice("bilinear", "nearest", "bicubic", "area"), "bilinear",
        "how images are resized to the model's input"),
    Key("resize_shorter", POSITIVE, None, "resize each image so that its shorter side has "
        "this many pixels, keeping its aspect (ImageNet evaluation: 256)"),
    Key("center_crop", POSITIVE, None, "then cut out the center square of this many pixels "
        "(ImageNet: 224); `zoo evaluate --crops 10` takes AlexNet's ten crops instead"),
), "how raw pixels become the model's input, in training and inside the export")

RANDOM_RESIZED_CROP = Table("data.augment.random_resized_crop", (
    Key("scale", Range(Number(0, 1, above=True), [0.08, 1.0]), [0.08, 1.0],
        "the fractions of the image's area a crop may cover"),
    Key("ratio", Range(Number(0, above=True), [0.75, 1.333]), [0.75, 1.3333333333333333],
        "the aspect ratios (width / height) a crop may have, drawn on a log scale"),
), "train on a random part of each image, resized to the model's input, as Inception and "
   "the ImageNet ResNets do")

RANDAUGMENT = Table("data.augment.randaugment", (
    Key("num_ops", Integer(1, 10), 2, "how many ops each batch goes through, one after another "
        "(the paper's N)"),
    Key("magnitude", Number(0, 10, example=9), 9, "how strong the ops may be, from 0 to 10 (the "
        "paper's M): each op's strength is drawn up to this tenth of its range"),
), "Keras's RandAugment on pixels, its draws seeded by each batch (Cubuk et al. 2020; their "
   "ImageNet ResNet-50: N 2, M 9): shear, translation, rotation, brightness, colour, "
   "contrast, sharpness, posterize, solarize, autocontrast, equalize")

AUGMENT = Table("data.augment", (
    Key("flip", Choice("horizontal", "vertical", "both"), None, "random flips while training"),
    Key("random_resized_crop", Section(RANDOM_RESIZED_CROP, optional=True), None,
        "a random part of each image, resized to the model's input (in place of "
        "resize_shorter and center_crop while training)", "none"),
    Key("randaugment", Section(RANDAUGMENT, optional=True), None,
        "random ops of a fixed list at a chosen strength, before the pixels are normalized",
        "none"),
    Key("pad_crop", Integer(1, MAX_PAD), None,
        "pad by this many pixels, then crop back at a random place"),
    Key("pca_lighting", Number(0, example=0.1), None, "AlexNet's colour noise: each image "
        "shifted along the principal components of ImageNet's RGB pixels, this deviation "
        "(Krizhevsky et al. 2012: 0.1)"),
    Key("random_erasing", Number(0, 1, above=True, example=0.25), None, "the probability "
        "that an image gets a rectangle of noise (Zhong et al. 2020)"),
    Key("mixup", Number(0, above=True, example=0.2), None, "mix pairs of images and their "
        "labels in a proportion drawn from Beta(a, a), a this value (Zhang et al. 2018)"),
    Key("cutmix", Number(0, above=True, example=1.0), None, "paste a rectangle of one image "
        "into another, labels mixed by area; Beta(a, a) draws the area (Yun et al. 2019); "
        "with mixup too, a coin picks one for each batch"),
), "random changes to each training image")

DATA = Table("data", (
    Key("dataset", Text("mnist_subset"), None,
        "a TFDS name (`mnist`, `cifar10`, `imagenet2012`), an embedded one (`mnist_subset`, "
        "`digits`), or a folder with one sub-folder of images per class", "required to train"),
    Key("train_split", Text("train"), "train",
        "the split trained on; TFDS slicing works (`train[:90%]`)"),
    Key("eval_split", Text("test"), "test", "the split evaluated by default (`zoo evaluate`), "
        "and reported every epoch when there is no `validation_split`"),
    Key("validation_split", Text("train[90%:]"), None, "if given, reported every epoch "
        "instead of `eval_split` (keeps the test split out of plateau and early stopping)"),
    Key("preprocess", Section(PREPROCESS), None, "see below", "each key's default"),
    Key("augment", Section(AUGMENT), None, "see below", "each key's default"),
    Key("shuffle_buffer", POSITIVE, 10_000, "examples in the shuffle buffer"),
), "the dataset and how its images are prepared", elsewhere=IN_TRAIN)

EARLY_STOPPING = Table("train.early_stopping", (
    Key("monitor", Monitor(), "val_loss", "the figure watched (a name the run logs)"),
    Key("patience", POSITIVE, 5, "epochs without improvement before training stops"),
    Key("restore_best", Boolean(), True, "at the end of the phase (stopped early or not), "
        "the weights of the epoch with the best `monitor` come back, and the export has them; "
        "false keeps the last epoch's"),
), "stop when a figure has stopped improving")

STEP = Table("train.schedule.step", (
    Key("epochs", ListOf(POSITIVE, "a non-empty list of epoch numbers", min_items=1), REQUIRED,
        "the epochs at whose start the rate is multiplied by `factor`"),
    Key("factor", Number(0, above=True, example=0.1), 0.1, "the multiplier"),
    Key("warmup_epochs", Integer(0), 0, "epochs of a linear warm-up from 0 to the rate first"),
), "multiply the learning rate at the start of given epochs", example={"epochs": [2]},
    checks=(_increasing_epochs,))

PLATEAU = Table("train.schedule.plateau", (
    Key("monitor", Monitor(), "val_loss", "the figure watched (a name the run logs)"),
    Key("patience", POSITIVE, 5, "epochs without improvement before the rate changes"),
    Key("factor", Number(0, above=True, example=0.1), 0.1, "the multiplier"),
), "multiply the learning rate when a figure has stopped improving")

COSINE = Table("train.schedule.cosine", (
    Key("warmup_epochs", Integer(0), 0, "epochs of a linear warm-up from 0 to the rate first"),
    Key("min_rate", Number(0), 0.0, "the rate at the end of the run"),
), "the rate falls along half a cosine from the optimizer's rate to `min_rate` over the run "
   "(after the warm-up)")

EPOCH_SCHEDULES = {"step": STEP, "plateau": PLATEAU, "cosine": COSINE}

RBM = Table("pretrain.method.rbm", (
    Key("gibbs_steps", Integer(1, MAX_GIBBS_STEPS), 1, "k of CD-k: steps of block Gibbs "
        "sampling from the data to the negative sample (Hinton 2002; Hinton et al. 2006: 1)"),
    Key("sample_hidden", Boolean(), True, "each Gibbs step draws binary hidden states from "
        "their probabilities (Hinton's practical guide); false: the probabilities drive it"),
    Key("sample_visible", Boolean(), False, "each Gibbs step draws binary visible states; "
        "false: the chain's visibles are probabilities, as in Hinton and Salakhutdinov's "
        "MNIST code"),
), "a binary restricted Boltzmann machine whose weights are the layer's kernel and bias (the "
   "hidden bias) and a visible bias of its own, trained by contrastive divergence; the log's "
   "loss is the reconstruction error")

# How a layer is pretrained; None: the method's options are pretrain's own keys.
PRETRAIN_METHODS = {"autoencoder": None, "rbm": RBM}
AUTOENCODER_KEYS = ("noise", "tied", "loss", "decoder_activation")


def pretrain_method(value) -> tuple[str, dict]:
    """`autoencoder`, `rbm` or `{rbm: {options}}` (checked) -> the name and the options, with
    their defaults."""
    name, options = (value, {}) if isinstance(value, str) else next(iter(value.items()))
    table = PRETRAIN_METHODS[name]
    defaults = {key.name: key.default for key in table.keys} if table else {}
    return name, {**defaults, **{key: option for key, option in (options or {}).items()
                                 if option is not None}}


class PretrainMethod(Type):
    """`autoencoder`, `rbm`, or `{rbm: {options}}` (its table checks them)."""

    words = "a pretraining method: autoencoder, rbm, or {rbm: {options}}"
    example, wrong = "rbm", 5

    def check(self, value, container, key):
        name, options = split_call(value, container, key, self.words)
        if name not in PRETRAIN_METHODS:
            raise SpecError(name_location(value, container, key), container.child_path(key),
                            f"unknown pretraining method '{name}'"
                            f"{suggest(name, list(PRETRAIN_METHODS))}; valid methods: "
                            f"{', '.join(PRETRAIN_METHODS)}")
        if PRETRAIN_METHODS[name] is None:
            if options:
                raise value.error(name, "the autoencoder's options are pretrain's own keys: "
                                        f"{', '.join(AUTOENCODER_KEYS)}")
            return value
        check_table(options, PRETRAIN_METHODS[name])
        return value

    def schema(self) -> dict:
        return {"anyOf": [{"enum": list(PRETRAIN_METHODS)}, {
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": False, "properties": {
                name: table_schema(table) for name, table in PRETRAIN_METHODS.items() if table}}]}

STAGE = Table("train.stages[]", (
    Key("epochs", POSITIVE, None, "epochs of this stage", "train's"),
    Key("freeze", LayerPatterns(), None, "layers that keep their weights in this stage "
        "(BatchNormalization among them runs in inference mode)", "none"),
    Key("optimizer", KerasObject("optimizer", "optimizer", "sgd"), None,
        "this stage's optimizer (a lower rate to fine-tune)", "train's"),
    Key("schedule", Schedule(), None, "this stage's learning-rate schedule", "train's"),
    Key("batch_size", POSITIVE, None, "this stage's batch size", "train's"),
    Key("weight_decay", Number(0, example=1e-4), None, "this stage's weight decay", "train's"),
    Key("early_stopping", Section(EARLY_STOPPING, optional=True), None,
        "this stage's early stopping", "train's"),
), "one stage of a recipe in stages: train's settings, changed where the stage says",
    elsewhere=IN_OPTIMIZER)

TRAIN = Table("train", (
    Key("batch_size", POSITIVE, 32, "the global batch, over all devices and machines"),
    Key("epochs", POSITIVE, 10, "passes over the training split"),
    Key("steps_per_epoch", POSITIVE, None, "batches per epoch (shorter or longer epochs "
        "than one pass)", "split size / batch size"),
    Key("optimizer", KerasObject("optimizer", "optimizer", "sgd"), "adam",
        "a Keras optimizer, with its arguments: `{sgd: {learning_rate: 0.1, momentum: 0.9}}`"),
    Key("schedule", Schedule(), None, "the learning rate over time: `step`, `plateau` (in "
        "epochs) or a Keras schedule (in steps)", "constant"),
    Key("loss", KerasObject("loss", "loss", "categorical_crossentropy"),
        "sparse_categorical_crossentropy", "a Keras loss, with its arguments"),
    Key("metrics", ListOf(Choice("accuracy", "top5"), "a list of accuracy, top5"), None,
        "figures logged besides the loss",
        "accuracy, and top5 when there are more than 5 classes"),
    Key("weight_decay", Number(0, example=1e-4), 0.0, "the papers' L2 term: this times the "
        "sum of squared kernel weights, halved, is added to the loss"),
    Key("label_smoothing", Number(0, 1, below=True, example=0.1), 0.0, "the labels as one-hot "
        "vectors with this much of the mass spread over every class (Szegedy et al. 2016); "
        "with sparse_categorical_crossentropy"),
    Key("ema", Number(0, 1, below=True, above=True, example=0.999), None, "keep an "
        "exponential moving average of the weights with this momentum; each epoch is "
        "evaluated, and the run exported, with the averaged weights", "off"),
    Key("accumulate", POSITIVE, 1, "apply the gradients of this many batches at once: a "
        "paper's batch of 256 is 4 batches of 64 here (steps_per_epoch counts the small ones)"),
    Key("seed", Integer(), 0, "initial weights, shuffling, augmentation"),
    Key("checkpoint_every", POSITIVE, None, "also checkpoint every this many steps (counted "
        "over the run), so that a kill within a long epoch loses at most these and the run "
        "resumes at the step it reached", "each epoch's end only"),
    Key("early_stopping", Section(EARLY_STOPPING, optional=True), None,
        "stop when `monitor` has not improved for `patience` epochs", "none"),
    Key("freeze", LayerPatterns(), None, "layers that keep their weights (names or patterns; "
        "BatchNormalization among them runs in inference mode, as Keras fine-tunes)", "none"),
    Key("stages", ListOf(Section(STAGE), "a non-empty list of stages", min_items=1), None,
        "train in stages, one after another, each with its own epochs, frozen layers and "
        "optimizer (e.g. the head alone, then everything at a lower rate)", "one stage"),
    Key("target", Choice("label", "input"), "label",
        "`input`: learn to reproduce the input (autoencoders)"),
    Key("precision", Choice("auto", "float32", "mixed_bfloat16", "mixed_float16"), "auto",
        "a Keras dtype policy; variables, and the layers that produce the model's outputs, "
        "stay float32; `auto`: the device's fastest, measured for the model on a CPU with "
        "bfloat16 instructions (zoo/precision.py)"),
    Key("xla", Choice("auto", True, False), "auto", "compile the training step with XLA"),
    Key("steps_per_execution", Either(Choice("auto"), Integer(1, MAX_STEPS_PER_EXECUTION),
                                      words="auto or a number of steps from 1 to "
                                      f"{MAX_STEPS_PER_EXECUTION:,}"), "auto",
        "training steps per call of the compiled loop (fewer round trips from Python); "
        "checkpoints, a NaN loss and the progress bar still see each step, Ctrl-C stops "
        "between calls; `auto`: 8 with several replicas, 1 on one device "
        "(zoo/devices.py)"),
    Key("threads", Either(Choice("auto"), Integer(1, MAX_THREADS), words="auto or a number "
        f"of threads from 1 to {MAX_THREADS:,}"), "auto", "TensorFlow's intra-op and inter-op "
        "pools get this many threads each (train on N cores of a shared machine)"),
), "how to train", elsewhere={**IN_OPTIMIZER, **IN_DATA},
    checks=(_freeze_once, _smoothing_with_its_loss))

NOISE = Table("pretrain.noise", (
    Key("masking", Number(0, 1, below=True, example=0.2), None,
        "zero this fraction of the inputs (not rescaled)"),
    Key("gaussian", Number(0, example=0.1), None, "add Gaussian noise of this deviation"),
), "how a stage corrupts its input: one kind at most", checks=(_one_noise,))

HEAD = Table("pretrain.head", (
    Key("epochs", POSITIVE, None, "epochs of the head phase", "train's"),
    Key("batch_size", POSITIVE, None, "its batch size", "train's"),
    Key("optimizer", KerasObject("optimizer", "optimizer", "sgd"), None, "its optimizer",
        "train's"),
    Key("schedule", Schedule(), None, "its learning-rate schedule", "train's"),
), "the phase that trains the rest of the network with the pretrained layers frozen",
    elsewhere=IN_OPTIMIZER)

INIT = Table("init", (
    Key("from", Text("exports/lenet/1"), REQUIRED, "an export (`exports/lenet/1`, or "
        "`exports/lenet` for its newest version), a `.keras` file, a Keras weights file "
        "(`.weights.h5`) or a legacy `.h5` weights file as keras.applications ships; relative "
        "to the working folder"),
    Key("layers", LayerPatterns(), None, "load only these layers (names or patterns)", "all"),
    Key("rename", NameMap(LayerName(), "a mapping of the source's layer names to this "
                                       "model's"), None,
        "the source's layer `key` loads into this model's layer `value`"),
    Key("strict", Boolean(), False, "every layer must load and every layer of the source be "
        "used; otherwise a mismatch only starts that layer fresh"),
), "the weights training starts from, matched by layer name", example={"from": "model.keras"})

PRETRAIN = Table("pretrain", (
    Key("layers", LayerPatterns(), REQUIRED,
        "Dense or Conv2D layers, bottom-up, by name or pattern (method rbm: Dense layers with "
        "sigmoid activation)"),
    Key("method", PretrainMethod(), "autoencoder", "`autoencoder`: each layer learns to "
        "reconstruct its input (the keys noise, tied, loss, decoder_activation); `rbm`: each "
        "layer is a restricted Boltzmann machine trained by contrastive divergence on the "
        "sigmoid probabilities of the layers below (a deep belief net, Hinton et al. 2006), "
        "or `{rbm: {gibbs_steps: 10}}` with its options"),
    Key("unlabeled", Text("train"), None, "the split whose images pretrain them (labels "
        "ignored)", "data.train_split"),
    Key("epochs", POSITIVE, 10, "epochs per layer"),
    Key("batch_size", POSITIVE, 32, "batch size per layer"),
    Key("optimizer", KerasObject("optimizer", "optimizer", "sgd"), "adam", "as in `train`"),
    Key("loss", KerasObject("loss", "loss", "mean_squared_error"), None,
        "the autoencoder's reconstruction loss (`mean_squared_error` for ReLU codes)",
        "binary_crossentropy"),
    Key("noise", Section(NOISE, optional=True), None,
        "`{masking: rate}` or `{gaussian: stddev}`", "none"),
    Key("tied", Boolean(), None, "the autoencoder's decoder uses the transposed encoder "
        "kernel", "true"),
    Key("freeze_lower", Boolean(), True, "layers below the one in training keep their weights"),
    Key("decoder_activation", KerasName("activation", "an activation's name", "sigmoid"), None,
        "the decoder's activation", "sigmoid with a cross-entropy loss, else linear"),
    Key("seed", Integer(), None, "noise draws (an RBM's Gibbs sampling)", "train.seed"),
    Key("head", Section(HEAD, optional=True), None, "the head phase's settings, over train's",
        "train's"),
), "greedy layer-wise pretraining before `train`", example={"layers": ["hidden*"]},
    elsewhere=IN_OPTIMIZER, checks=(_options_of_its_method,))

CONVERTED_FORMATS = ("onnx", "litert", "litert_int8")  # zoo.conversion.FORMATS
EXPORT_FORMATS = ("saved_model", *CONVERTED_FORMATS)
EXPORT = Table("export", (
    Key("formats", ListOf(Choice(*EXPORT_FORMATS), "a list of " + ", ".join(EXPORT_FORMATS),
                          min_items=1), ["saved_model"],
        "what the export holds: the SavedModel always, and each other format converted from "
        "it beside it (model.onnx, model.tflite, model_int8.tflite: int8 weights and "
        "activations), checked to agree with it on eval images (zoo/conversion.py)"),
    Key("outputs", NameMap(LayerName(), "a mapping of output names to layer names"), None,
        "the serving signature's outputs, each named after a layer of the model",
        "probabilities (the model's output), or reconstruction for target: input"),
), "what the export holds and its serving signature returns")

EXPECT = Table("expect", (
    Key("total_params", POSITIVE, None, "every weight, trainable or not"),
    Key("trainable_params", POSITIVE, None, "the weights training changes"),
    Key("output_shape", ListOf(Either(POSITIVE, Choice(None), words="a size or null"),
                               "a list of sizes (null for any)"), None,
        "the first output's shape without the batch axis"),
), "counts the model built from the files must have (not checked when --set changes the "
   "model)")

# The model section's own language, as JSON Schema for editors (zoo/graph.py checks it).
_SHAPE = {"type": "array", "items": {"type": ["integer", "null"]}}
_NODE = {"anyOf": [
    {"type": "string", "description": "a layer type or block with no arguments, e.g. flatten"},
    {"type": "object", "minProperties": 1, "maxProperties": 1,
     "description": "a layer type or block mapped to its arguments, e.g. dense: {units: 10}",
     "properties": {"repeat": {"type": "object", "required": ["block"], "additionalProperties":
                               False, "properties": {key: {} for key in (
                                   "block", "times", "name", "start", "with", "each", "at",
                                   "inputs", "when")}}}}]}
_NODES = {"anyOf": [
    {"type": "array", "minItems": 1, "items": _NODE},
    {"type": "object", "description": "in a spec that extends another: the base's layers "
     "edited by name, each name -> a layer merged into it, or null to drop it",
     "additionalProperties": {"anyOf": [{"type": "null"}, _NODE]}}]}
_INPUT = {"anyOf": [_SHAPE, {"type": "object", "additionalProperties": False, "properties": {
    "shape": _SHAPE, "dtype": {"type": "string"}}}]}
_BLOCK = {"type": "object", "additionalProperties": False, "properties": {
    "params": {"type": "object"}, "layers": _NODES, "output": {"type": "string"},
    "outputs": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "inputs": {"type": "array", "items": {"type": "string"}}, "description": {"type": "string"}}}

MODEL = Table("model", (
    Key("inputs", Structure(Mapping, "a mapping of input names to shapes", {
        "type": "object", "additionalProperties": _INPUT}), REQUIRED,
        "input name -> shape without the batch axis, or {shape, dtype}"),
    Key("layers", Structure(Sequence, "a non-empty list of layers", _NODES), REQUIRED,
        "the nodes, applied in order; in a spec that extends another, a mapping edits the "
        "base's list by layer name (`{add: null}` drops `add`)"),
    Key("outputs", Either(Text("predictions"), ListOf(Text("predictions")),
                          words="a node name or a list of them"), None,
        "the node or nodes the model returns", "the last node"),
    Key("blocks", Structure(Mapping, "a mapping", {"type": "object",
                                                   "additionalProperties": _BLOCK}), None,
        "sub-graphs used by name in layers"),
    Key("vars", Structure(Mapping, "a mapping", {"type": "object"}), None,
        "values for ${...} expressions"),
    Key("defaults", Structure(Mapping, "a mapping", {"type": "object", "additionalProperties": {
        "type": ["object", "null"]}}), None,
        "layer type -> arguments every layer of that type starts from"),
), "the network: inputs, layers (any Keras layer by name), blocks, vars, defaults")

TOP = Table("", (
    Key("extends", Text("base.yaml"), None, "a base spec, relative to this file"),
    Key("description", Text("A LeNet-style CNN."), None, "text; `zoo summary` prints it"),
    Key("family", Text("CNN"), None, "the group `zoo list` shows, e.g. ResNet"),
    Key("model", Section(MODEL), REQUIRED, "the network"),
    Key("data", Section(DATA), None, "the dataset and its preprocessing", "each key's default"),
    Key("init", Section(INIT, optional=True), None, "the weights training starts from",
        "random (each layer's initializer)"),
    Key("pretrain", Section(PRETRAIN, optional=True), None, "greedy layer-wise pretraining "
        "before `train`", "none"),
    Key("train", Section(TRAIN), None, "how to train", "each key's default"),
    Key("export", Section(EXPORT), None, "what the export returns", "each key's default"),
    Key("expect", Section(EXPECT, optional=True), None, "counts the built model must have",
        "none"),
), elsewhere={**IN_TRAIN, **IN_DATA, **IN_MODEL})

# Every table, in the order the reference documents them.
TABLES = (TOP, MODEL, DATA, PREPROCESS, AUGMENT, RANDOM_RESIZED_CROP, RANDAUGMENT, TRAIN,
          EARLY_STOPPING, STEP, COSINE, PLATEAU, STAGE, INIT, PRETRAIN, RBM, NOISE, HEAD, EXPORT,
          EXPECT)
