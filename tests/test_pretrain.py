"""Greedy layer-wise pretraining: each phase trains what it should, and resumes mid-phase."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from conftest import ROOT, kill_after_epochs
from zoo.checkpoints import RunState
from zoo.pipeline import load_splits
from zoo.pretrain import RestrictedBoltzmannMachine, phases
from zoo.training import run_phases, set_trainable, train_phase

SDAE = """\
model:
  vars: {classes: 10}
  inputs: {image: [8, 8, 1]}
  layers:
    - flatten: {name: flatten}
    - dense: {name: hidden1, units: 32, activation: sigmoid}
    - dense: {name: hidden2, units: 16, activation: sigmoid}
    - dense: {name: predictions, units: "${classes}", activation: softmax}
data: {dataset: digits, preprocess: {rescale: 0.00392156862745098}}
pretrain:
  layers: ["hidden*"]
  epochs: 4
  optimizer: {sgd: {learning_rate: 0.1, momentum: 0.9}}
  noise: {masking: 0.2}
  head: {epochs: 2}
train: {batch_size: 32, epochs: 2, optimizer: {sgd: {learning_rate: 0.05}}, seed: 3}
"""


DBN = SDAE.replace("  noise: {masking: 0.2}\n", "").replace(
    "  epochs: 4\n", "  method: rbm\n  epochs: 4\n")


def weights_by_layer(model):
    return {layer.name: [np.array(w) for w in layer.weights] for layer in model.layers
            if layer.weights}


def changed(before, after):
    return {name for name in before
            if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))}


def model_and_phases(spec_file):
    """A two-layer pretrained classifier and its phases: two greedy stages, head, fine-tuning."""
    spec = zoo.load_spec(spec_file)
    splits = load_splits(spec, "train", download=False)
    model = zoo.build_model(spec)
    steps = phases(spec, model, splits, splits)
    assert [step.name for step in steps] == [
        "pretrain-1-hidden1", "pretrain-2-hidden2", "head", "finetune"]
    return model, steps


def test_each_phase_trains_its_layers_and_only_those(write_spec, tmp_path):
    model, steps = model_and_phases(write_spec(SDAE))
    expected = [{"hidden1"}, {"hidden2"}, {"predictions"}, {"hidden1", "hidden2", "predictions"}]
    strategy = tf.distribute.get_strategy()
    everything = {layer.name for layer in model.layers}
    for step, should_change in zip(steps, expected):
        before = weights_by_layer(model)
        set_trainable(model, step.trainable)
        history = train_phase(step, strategy, RunState(str(tmp_path / step.name), "test"),
                              log=lambda _: None)
        set_trainable(model, everything)
        assert changed(before, weights_by_layer(model)) == should_change, step.name
        if step.name.startswith("pretrain"):  # the reconstruction error falls
            losses = [epoch["loss"] for epoch in history]
            assert losses[-1] < losses[0], losses
    stage = steps[1].model  # the second stage encodes the first layer's codes with tied weights
    decoder = stage.get_layer("hidden2_pretrain_decoder")
    assert decoder.encoder is model.get_layer("hidden2")


@pytest.mark.parametrize("text", [SDAE, DBN], ids=["autoencoder", "rbm"])
def test_the_next_phase_starts_from_the_pretrained_weights_after_a_restart(write_spec, tmp_path,
                                                                           text):
    spec = zoo.load_spec(write_spec(text))
    splits = load_splits(spec, "train", download=False)
    strategy = tf.distribute.get_strategy()
    first = zoo.build_model(spec)
    run_phases(phases(spec, first, splits, splits)[:1], first, strategy, str(tmp_path), "f",
               True, log=lambda _: None)
    pretrained = np.array(first.get_layer("hidden1").kernel)
    tf.keras.utils.set_random_seed(99)  # a new process: a differently initialized model
    second = zoo.build_model(spec)
    assert not np.array_equal(np.array(second.get_layer("hidden1").kernel), pretrained)
    messages = []
    run_phases(phases(spec, second, splits, splits)[:1], second, strategy, str(tmp_path), "f",
               True, log=messages.append)
    assert messages == []  # nothing retrained
    np.testing.assert_array_equal(np.array(second.get_layer("hidden1").kernel), pretrained)


def test_an_rbm_stage_lowers_the_reconstruction_error_and_trains_its_layer(write_spec, tmp_path):
    model, steps = model_and_phases(write_spec(DBN))
    everything = {layer.name for layer in model.layers}
    for step, layer in zip(steps[:2], ("hidden1", "hidden2")):
        rbm = step.model.get_layer(f"{layer}_pretrain_rbm")
        assert rbm.hidden is model.get_layer(layer)  # its weights are the layer's own
        before = weights_by_layer(model)
        set_trainable(model, step.trainable)
        history = train_phase(step, tf.distribute.get_strategy(),
                              RunState(str(tmp_path / step.name), "test"), log=lambda _: None)
        set_trainable(model, everything)
        assert changed(before, weights_by_layer(model)) == {layer}
        errors = [epoch["val_loss"] for epoch in history]  # squared reconstruction error
        assert errors[-1] < 0.7 * errors[0], errors
    # the second RBM's data are the first layer's sigmoid probabilities
    assert steps[1].model.outputs[1] is model.get_layer("hidden1").output


def test_the_rbm_stage_follows_the_contrastive_divergence_gradient():
    # CD-1 with the hidden probabilities driving the reconstruction: the gradient of the
    # surrogate is -(<v h>data - <v h>reconstruction), averaged over the batch
    dense = keras.layers.Dense(4, activation="sigmoid", dtype="float32")
    dense.build((None, 6))
    rbm = RestrictedBoltzmannMachine(dense, sample_hidden=False, dtype="float32")
    visible = np.random.default_rng(0).random((5, 6)).astype("float32")
    rbm.build(visible.shape)
    rbm.visible_bias.assign(np.linspace(-1, 1, 6).astype("float32"))
    with tf.GradientTape() as tape:
        rbm(visible, training=True)
        surrogate = rbm.losses[0]
    gradient = tape.gradient(surrogate, dense.kernel)

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    kernel, bias = np.array(dense.kernel), np.array(dense.bias)
    hidden = sigmoid(visible @ kernel + bias)
    reconstruction = sigmoid(hidden @ kernel.T + np.array(rbm.visible_bias))
    expected = -(visible.T @ hidden - reconstruction.T @ sigmoid(reconstruction @ kernel + bias))
    np.testing.assert_allclose(gradient, expected / len(visible), rtol=1e-4, atol=1e-6)


def test_an_rbm_phase_resumes_after_its_last_epoch(write_spec, tmp_path):
    strategy = tf.distribute.get_strategy()
    spec = zoo.load_spec(write_spec(DBN), ["pretrain.epochs=2"])
    splits = load_splits(spec, "train", download=False)
    model = zoo.build_model(spec)
    stage = phases(spec, model, splits, splits)[0]
    first = train_phase(stage, strategy, RunState(str(tmp_path), "f"), log=lambda _: None)
    tf.keras.utils.set_random_seed(99)  # a new process, asked for 4 epochs
    spec = zoo.load_spec("spec.yaml", ["pretrain.epochs=4"])
    model = zoo.build_model(spec)
    stage = phases(spec, model, splits, splits)[0]
    messages = []
    history = train_phase(stage, strategy, RunState(str(tmp_path), "f"), log=messages.append)
    assert messages[0].startswith("resuming pretrain hidden1 after epoch 2 of 4")
    assert history[:2] == first and len(history) == 4
    assert history[-1]["val_loss"] < history[1]["val_loss"]


def test_tied_decoder_uses_the_transposed_encoder_kernel(write_spec):
    spec = zoo.load_spec(write_spec(SDAE))
    model = zoo.build_model(spec)
    stage = phases(spec, model, None, None)[0].model
    codes = np.random.default_rng(0).random((2, 32)).astype("float32")
    decoder = stage.get_layer("hidden1_pretrain_decoder")
    kernel = np.array(model.get_layer("hidden1").kernel)
    expected = 1 / (1 + np.exp(-(codes @ kernel.T + np.array(decoder.bias))))
    np.testing.assert_allclose(decoder(codes), expected, rtol=1e-5)
    assert len(stage.trainable_weights) == 3  # encoder kernel and bias, decoder bias


@pytest.mark.slow  # a kill in the middle of the phases and a resume: about 30 s
@pytest.mark.parametrize("text", [SDAE, DBN], ids=["autoencoder", "rbm"])
def test_pretraining_resumes_in_the_phase_and_epoch_where_it_stopped(tmp_path, text):
    (tmp_path / "sdae.yaml").write_text(text.replace("epochs: 4", "epochs: 30"))
    command = [sys.executable, str(ROOT / "train.py"), "sdae.yaml", "--output", "exports"]
    state = tmp_path / "exports" / "sdae" / "checkpoint" / "pretrain-2-hidden2" / "state.json"
    done, _, _ = kill_after_epochs(command, tmp_path, state, epochs=2)
    assert 2 <= done < 30

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "pretrain hidden1: epoch" not in resumed.stdout  # the finished phase is not redone
    assert "resuming pretrain hidden2 after epoch " in resumed.stdout
    after = int(resumed.stdout.split("resuming pretrain hidden2 after epoch ")[1].split()[0])
    assert after >= done and f"pretrain hidden2: epoch {after + 1}/30" in resumed.stdout
    history = json.loads((tmp_path / "exports" / "sdae" / "1" / "history.json").read_text())
    assert [len(history[name]) for name in ("pretrain-1-hidden1", "pretrain-2-hidden2",
                                            "head", "finetune")] == [30, 30, 2, 2]
    metadata = json.loads((tmp_path / "exports" / "sdae" / "1" / "metadata.json").read_text())
    assert [(phase["name"], phase["epochs"]) for phase in metadata["phases"]] == [
        ("pretrain-1-hidden1", 30), ("pretrain-2-hidden2", 30), ("head", 2), ("finetune", 2)]
    assert metadata["phases"][1]["val_loss"] == history["pretrain-2-hidden2"][-1]["val_loss"]


CONV = """\
model:
  vars: {classes: 10}
  inputs: {image: [8, 8, 1]}
  layers:
    - conv2d: {name: conv1, filters: 8, kernel_size: 3, padding: same, activation: sigmoid}
    - conv2d: {name: conv2, filters: 8, kernel_size: 3, strides: 2, padding: same,
               activation: sigmoid}
    - flatten
    - dense: {name: predictions, units: "${classes}", activation: softmax}
data: {dataset: digits, preprocess: {rescale: 0.00392156862745098}}
pretrain:
  layers: [conv1, conv2]
  epochs: 3
  optimizer: adam
  tied: TIED
train: {batch_size: 32, epochs: 1, optimizer: adam}
"""


@pytest.mark.parametrize("tied", [True, False])
def test_convolutional_layers_pretrain_the_same_way(write_spec, tmp_path, tied):
    spec = zoo.load_spec(write_spec(CONV.replace("TIED", str(tied).lower())))
    splits = load_splits(spec, "train", download=False)
    model = zoo.build_model(spec)
    steps = phases(spec, model, splits, splits)
    for step in steps[:2]:  # the two convolutional autoencoders
        reconstruction, clean = step.model.outputs
        assert reconstruction.shape[1:] == clean.shape[1:]
        set_trainable(model, step.trainable)
        history = train_phase(step, tf.distribute.get_strategy(),
                              RunState(str(tmp_path / step.name), "test"), log=lambda _: None)
        set_trainable(model, {layer.name for layer in model.layers})
        assert history[-1]["loss"] < history[0]["loss"]


def test_stages_train_with_the_runs_settings_and_their_own(write_spec):
    # A stage is a phase like any other: what is not the pretraining's own (xla, precision,
    # threads) comes from `train`; its seed follows train.seed unless pretrain.seed is given
    spec = zoo.load_spec(write_spec(SDAE), ["train.xla=false", "pretrain.tied=null",
                                            "pretrain.freeze_lower=null"])
    splits = load_splits(spec, "train", download=False)
    steps = phases(spec, zoo.build_model(spec), splits, splits)
    stage = steps[0].section
    assert (stage["xla"], stage["seed"], stage["epochs"], stage["target"]) == (False, 3, 4, "codes")
    assert stage["schedule"] is None and stage["weight_decay"] == 0.0
    assert steps[1].trainable == {"hidden2"}  # freeze_lower: null is its default, true
    decoder = steps[1].model.get_layer("hidden2_pretrain_decoder")
    assert type(decoder).__name__ == "TiedDecoder"  # tied: null is its default, true


def test_a_pretraining_stage_that_diverges_is_located_at_pretrainings_optimizer(write_spec,
                                                                               capsys):
    from zoo import cli

    spec = write_spec(SDAE)
    code = cli.main(["train", spec, "--output", "exports", "--set", "pretrain.epochs=1",
                     "--set", "pretrain.loss=mean_squared_error",
                     "--set", "pretrain.optimizer.sgd.learning_rate=1.0e+30"])
    assert (code, capsys.readouterr().err) == (2, (
        "error: --set pretrain.optimizer.sgd.learning_rate:1:1: "
        "pretrain.optimizer.sgd.learning_rate: the loss became infinite in epoch 1 at training "
        "step 2 of 44, with the learning rate at 1e+30: training diverged and stopped. No "
        "export was written; no epoch had finished, so no checkpoint is kept. Lower the rate, "
        "e.g. to a tenth: --set pretrain.optimizer.sgd.learning_rate=1e+29\n"))
