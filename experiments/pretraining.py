"""When does greedy layer-wise pretraining beat random initialization? (issue 4's experiment)

    python experiments/pretraining.py run --setting classical --threads 1 \
        --out experiments/results/classical.jsonl &
    python experiments/pretraining.py run --setting modern --threads 1 \
        --out experiments/results/modern.jsonl
    python experiments/pretraining.py table experiments/results/*.jsonl

    # the RBM stack (a deep belief net) in the classical 7-layer, 100-label cell (issue 22):
    python experiments/pretraining.py run --setting classical --method rbm --arms pretrained \
        --threads 1 --depths 7 --budgets 100 --pretrain-epochs 20 --head-epochs 60 \
        --finetune-epochs 140 --variant "RBM CD-1, 20 pretraining epochs" \
        --out experiments/results/dbn.jsonl
    python experiments/pretraining.py table experiments/results/classical_rate8.jsonl \
        experiments/results/dbn.jsonl

Data: the embedded `mnist_subset` (4,000 train / 1,000 test, fixed split). For a
label budget N, the first N training images are labeled; 80% of them train
and the other 20% are the validation set that picks the learning rate (so the
selection spends only the budget's own labels; the test set is never used to
choose anything). All 4,000 training images, labels ignored, pretrain.

Per (setting, seed) one stack of hidden layers, as deep as the deepest depth
asked for, is pretrained once as stacked denoising autoencoders through the
zoo's own `pretrain` phases; a network of depth d starts from its first d
layers (greedy training of a layer never sees the layers above it). Then for each
budget and each learning rate of the grid, two arms get the same number of
supervised epochs: pretrained (softmax on the frozen codes, then fine-tuning
of everything) and random initialization (all layers trained from the start).
Each arm keeps the learning rate with the best validation accuracy; its test
accuracy is recorded. Settings:

- classical: sigmoid units, SGD with momentum 0.9, tied-weight denoising
  autoencoders with 20% masking noise and cross-entropy reconstruction.
- modern: ReLU units, Adam, dropout 0.2 in the classifier; the autoencoders
  use 20% masking noise, tied weights and squared error (ReLU codes are not
  in [0, 1]).

`--method rbm` pretrains the stack as restricted Boltzmann machines instead
(`pretrain.method: rbm`, CD-k, SGD at 0.1 with momentum 0.9 as Hinton &
Salakhutdinov's code; sigmoid units, so the classical setting only); the
supervised part is the same, so its rows form a third arm of the same cell
(`--arms pretrained`: the random arm does not depend on the method and is
not run again). The table then also prints RBM stack vs autoencoder stack vs
random init for the cells that have RBM rows.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from zoo.data import load_split  # noqa: E402
from zoo.devices import use_threads  # noqa: E402
from zoo.pretrain import phases  # noqa: E402
from zoo.pipeline import load_splits  # noqa: E402
from zoo.training import run_phases  # noqa: E402
from experiments.report import command_line, mean_and_spread  # noqa: E402

SETTINGS = {
    "classical": {"activation": "sigmoid", "dropout": 0.0, "loss": "binary_crossentropy",
                  # Keras's cross-entropy averages over the 784 pixels (or 500 codes) where
                  # the papers sum, so their SGD rates are hundreds of times too small here;
                  # at 0.05 seven layers barely learned (README, third round).
                  "pretrain_optimizer": {"sgd": {"learning_rate": 8.0, "momentum": 0.9}},
                  "optimizer": "sgd", "extra": {"momentum": 0.9}, "rates": [0.005, 0.02, 0.05],
                  # Glorot & Bengio (2010): sigmoid layers need 4x the uniform range of
                  # Glorot's rule; with Keras's default, 3 and 7 sigmoid layers from random
                  # init stayed near chance (README). The pretrained arm starts its
                  # autoencoders from Keras's default instead.
                  "random_init": "{variance_scaling: {scale: 16.0, distribution: uniform}}"},
    "modern": {"activation": "relu", "dropout": 0.2, "loss": "mean_squared_error",
               "pretrain_optimizer": {"adam": {"learning_rate": 0.001}},
               "optimizer": "adam", "extra": {}, "rates": [0.0003, 0.001],
               "random_init": "glorot_uniform"},
}

SPEC = """\
model:
  vars: {{classes: 10, widths: {widths}}}
  inputs: {{image: [28, 28, 1]}}
  blocks:
    hidden:
      params: {{units: null}}
      layers:
        - dense: {{name: dense, units: "${{units}}", activation: {activation},
                   kernel_initializer: {initializer}}}
        - dropout: {{name: dropout, rate: {dropout}}}
  layers:
    - flatten: {{name: flatten}}
    - repeat: {{block: hidden, name: hidden, each: {{units: "${{widths}}"}}}}
    - dense: {{name: predictions, units: "${{classes}}", activation: softmax}}
data:
  dataset: mnist_subset
  train_split: "train[:{fit}]"
  validation_split: "train[{fit}:{budget}]"
  preprocess: {{rescale: 0.00392156862745098}}
pretrain:
  layers: ["hidden*_dense"]
  unlabeled: train
  epochs: {pretrain_epochs}
  batch_size: 32
{method}
  head: {{epochs: {head_epochs}, optimizer: {head_optimizer}}}
train:
  batch_size: {batch}
  epochs: {epochs}
  optimizer: {optimizer}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  seed: {seed}
"""


# Each greedy method's own lines of the `pretrain` section.
AUTOENCODER = """\
  optimizer: {pretrain_optimizer}
  loss: {loss}
  noise: {{{noise_kind}: {noise_rate}}}
  tied: true"""
# Hinton & Salakhutdinov's (2006) RBM code: SGD at 0.1 with momentum 0.9 on the mean over the
# batch, CD-1, hidden states sampled, reconstructions as probabilities.
RBM = """\
  method: {{rbm: {{gibbs_steps: {gibbs_steps}}}}}
  optimizer: {{sgd: {{learning_rate: 0.1, momentum: 0.9}}}}"""


def method_lines(setting, args) -> str:
    options = SETTINGS[setting]
    if args.method == "rbm":
        return RBM.format(gibbs_steps=args.gibbs_steps)
    return AUTOENCODER.format(
        pretrain_optimizer=options["pretrain_optimizer"], loss=options["loss"],
        noise_kind=args.noise.split(":")[0], noise_rate=float(args.noise.split(":")[1]))


def spec_for(setting, depth, seed, budget, rate, args, pretrain=True):
    options = SETTINGS[setting]
    optimizer = {options["optimizer"]: {"learning_rate": rate, **options["extra"]}}
    fit = int(budget * 0.8)
    # Supervised epochs shrink for large budgets so every budget gets a similar number of
    # steps (4,000 labels: 1/8 of the epochs); both arms always get the same number.
    head_epochs, finetune_epochs = (max(2, round(epochs * min(1.0, 500 / budget)))
                                    for epochs in (args.head_epochs, args.finetune_epochs))
    text = SPEC.format(
        widths=[args.width] * depth, activation=options["activation"],
        dropout=options["dropout"], fit=fit,
        initializer=options["random_init"] if not pretrain else "glorot_uniform",
        budget=budget, seed=seed,
        pretrain_epochs=args.pretrain_epochs, method=method_lines(setting, args),
        head_epochs=head_epochs, head_optimizer=optimizer,
        batch=min(32, max(8, fit // 10)),
        epochs=finetune_epochs if pretrain else head_epochs + finetune_epochs,
        optimizer=optimizer)
    if not pretrain:
        text = text[:text.index("pretrain:")] + text[text.index("\ntrain:\n") + 1:]
    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=args.scratch)
    handle.write(text)
    handle.close()
    return zoo.load_spec(handle.name)


def test_accuracy(model) -> float:
    raw, _ = load_split("mnist_subset", "test")
    images, labels = zip(*raw.as_numpy_iterator())
    probabilities = model.predict(np.stack(images).astype("float32") / 255.0, verbose=0,
                                  batch_size=500)
    return float((probabilities.argmax(axis=1) == np.array(labels)).mean())


def quiet(_message):
    pass


def train_arm(spec, pretrained_weights, depth, args, strategy):
    """Train one arm; returns (best validation accuracy of its last epoch, test accuracy)."""
    tf.keras.utils.set_random_seed(spec.train["seed"])
    model = zoo.build_model(spec)
    labeled = load_splits(spec, spec.data["train_split"], download=False)
    steps = phases(spec, model, labeled, labeled)
    if pretrained_weights is not None:
        for name, weights in pretrained_weights.items():
            model.get_layer(name).set_weights(weights)
        steps = steps[depth:]  # the head, then fine-tuning
    with tempfile.TemporaryDirectory(dir=args.scratch) as checkpoints:
        histories = run_phases(steps, model, strategy, checkpoints, "experiment", True, quiet)
    return histories[steps[-1].name][-1]["val_accuracy"], test_accuracy(model)


def pretrain_layers(setting, depth, seed, args, strategy):
    spec = spec_for(setting, depth, seed, 100, SETTINGS[setting]["rates"][0], args)
    tf.keras.utils.set_random_seed(seed)
    model = zoo.build_model(spec)
    labeled = load_splits(spec, spec.data["train_split"], download=False)
    unlabeled = load_splits(spec, "train", download=False)
    steps = phases(spec, model, labeled, unlabeled)[:depth]
    with tempfile.TemporaryDirectory(dir=args.scratch) as checkpoints:
        histories = run_phases(steps, model, strategy, checkpoints, "experiment", True, quiet)
    reconstruction = [history[-1]["val_loss"] for history in histories.values()]
    weights = {f"hidden{i}_dense": model.get_layer(f"hidden{i}_dense").get_weights()
               for i in range(1, depth + 1)}
    return weights, reconstruction


def run(args):
    if args.threads:  # two settings side by side on a 2-core machine: one core each
        use_threads(args.threads)
    strategy = tf.distribute.get_strategy()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    for seed in args.seeds:
        # A greedy stack's lower layers do not depend on what is stacked above them, so one
        # stack of the deepest depth per seed serves every depth: depth d takes its first d.
        began = time.monotonic()
        stack, stack_reconstruction = pretrain_layers(args.setting, max(args.depths), seed,
                                                      args, strategy)
        pretrain_seconds = time.monotonic() - began
        for depth in args.depths:
            weights = {f"hidden{i}_dense": stack[f"hidden{i}_dense"] for i in range(1, depth + 1)}
            reconstruction = stack_reconstruction[:depth]
            for budget in args.budgets:
                for arm in args.arms:
                    trials = []
                    for rate in SETTINGS[args.setting]["rates"]:
                        spec = spec_for(args.setting, depth, seed, budget, rate, args,
                                        pretrain=arm != "random")
                        trial_began = time.monotonic()
                        val, test = train_arm(spec, weights if arm != "random" else None,
                                              depth, args, strategy)
                        trials.append({"rate": rate, "val_accuracy": val, "test_accuracy": test,
                                       "seconds": round(time.monotonic() - trial_began, 1)})
                    best = max(trials, key=lambda trial: trial["val_accuracy"])
                    row = {"setting": args.setting + (f" ({args.variant})" if args.variant else ""),
                           "depth": depth, "seed": seed,
                           "budget": budget, "arm": arm, "method": args.method,
                           **({"gibbs_steps": args.gibbs_steps} if args.method == "rbm" else {}),
                           "test_accuracy": best["test_accuracy"],
                           "chosen_rate": best["rate"], "trials": trials,
                           "pretrain_epochs": args.pretrain_epochs,
                           "supervised_epochs": spec.train["epochs"] + (
                               spec.pretrain["head"]["epochs"] if spec.pretrain else 0),
                           "reconstruction": reconstruction,
                           "pretrain_seconds": pretrain_seconds}
                    with open(args.out, "a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    print(f"{args.setting} depth {depth} seed {seed} budget {budget} {arm}: "
                          f"test {best['test_accuracy']:.3f} (lr {best['rate']})", flush=True)


def table(files) -> str:
    rows = [json.loads(line) for path in files for line in open(path) if line.strip()]
    cells = {}
    for row in rows:
        key = (row["setting"], row["depth"], row["budget"])
        cells.setdefault(key, {}).setdefault(row["arm"], []).append(row["test_accuracy"] * 100)
    lines = ["| setting | hidden layers | labels | pretrained + fine-tuned | random init | gain |",
             "|---|---|---|---|---|---|"]
    for (setting, depth, budget), arms in sorted(cells.items()):
        pre, rnd = arms.get("pretrained", []), arms.get("random", [])
        if not pre or not rnd:
            continue

        gain = statistics.mean(pre) - statistics.mean(rnd)
        lines.append(f"| {setting} | {depth} | {budget} | {mean_and_spread(pre)} | "
                     f"{mean_and_spread(rnd)} | "
                     f"{gain:+.1f} |")
    methods = methods_table(rows)
    return "\n".join(lines) + (f"\n\n{methods}" if methods else "")


def methods_table(rows) -> str:
    """RBM stack vs autoencoder stack vs random init, in the cells that have RBM rows: a cell
    is the setting (without the variant's label), depth, labels and supervised epochs, so the
    arms share everything but how the stack was pretrained."""
    cells = {}
    for row in rows:
        arm = row.get("method", "autoencoder") if row["arm"] == "pretrained" else row["arm"]
        key = (row["setting"].split(" (")[0], row["depth"], row["budget"],
               row["supervised_epochs"])
        cells.setdefault(key, {}).setdefault(arm, []).append(row["test_accuracy"] * 100)
    lines = ["| setting | hidden layers | labels | supervised epochs | RBM stack (DBN) | "
             "denoising-autoencoder stack | random init |", "|---|---|---|---|---|---|---|"]
    for (setting, depth, budget, epochs), arms in sorted(cells.items()):
        if "rbm" in arms:
            shown = [mean_and_spread(arms[arm]) if arm in arms else "-"
                     for arm in ("rbm", "autoencoder", "random")]
            lines.append(f"| {setting} | {depth} | {budget} | {epochs} | {' | '.join(shown)} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def add_run_arguments(runner) -> None:
    runner.add_argument("--setting", choices=SETTINGS, required=True)
    runner.add_argument("--out", required=True)
    runner.add_argument("--depths", type=int, nargs="+", default=[1, 3, 7])
    runner.add_argument("--budgets", type=int, nargs="+", default=[100, 500, 4000])
    runner.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    runner.add_argument("--width", type=int, default=500)
    runner.add_argument("--pretrain-epochs", type=int, default=30)
    runner.add_argument("--head-epochs", type=int, default=20)
    runner.add_argument("--finetune-epochs", type=int, default=30)
    runner.add_argument("--scratch", default=tempfile.gettempdir())
    runner.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: all)")
    runner.add_argument("--noise", default="masking:0.2",
                        help="the autoencoders' corruption: masking:RATE or gaussian:STDDEV")
    runner.add_argument("--method", choices=("autoencoder", "rbm"), default="autoencoder",
                        help="how the stack is pretrained (pretrain.method)")
    runner.add_argument("--gibbs-steps", type=int, default=1, help="k of the RBMs' CD-k")
    runner.add_argument("--arms", nargs="+", choices=("pretrained", "random"),
                        default=["pretrained", "random"],
                        help="the arms to run (the random arm does not depend on --method)")
    runner.add_argument("--variant", default="",
                        help="a label for a recipe that differs from the setting's default")


if __name__ == "__main__":
    command_line(__doc__, add_run_arguments, run, table)
