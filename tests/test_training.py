"""The main job for real: train under tf.distribute, export, evaluate, resume, two workers."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo import cli

from conftest import ROOT, TINY, kill_after_epochs, kill_when, run

@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    return tmp_path


def picture_size(path: Path) -> tuple:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def tensorboard_steps(directory: Path, tag: str) -> list:
    import tensorflow as tf

    (events,) = directory.glob("events.out.tfevents.*")
    records = (tf.compat.v1.Event.FromString(record.numpy())
               for record in tf.data.TFRecordDataset(str(events)))
    return sorted(event.step for event in records
                  if any(value.tag == tag for value in event.summary.value))


def test_train_export_evaluate_predict(tiny):
    # float32: evaluate.py must then reproduce training's figures exactly. Under bfloat16
    # (the default on this CPU) sums are rounded differently at different batch sizes.
    result = run("train.py", "tiny.yaml", "--output", "exports", "--tensorboard", "logs",
                 "--set", "train.precision=float32", cwd=tiny)
    assert result.returncode == 0, result.stderr
    assert "training tiny on digits (1,437 train / 360 eval images)" in result.stdout
    assert "epoch 3/3" in result.stdout and result.stderr == ""
    version = tiny / "exports" / "tiny" / "1"
    for name in ("saved_model.pb", "variables", "model.keras", "spec.yaml", "labels.txt",
                 "metadata.json", "history.json", "metrics.json"):
        assert (version / name).exists(), name
    assert not (tiny / "exports" / "tiny" / "checkpoint").exists()  # removed once exported
    trained = json.loads((version / "metrics.json").read_text())
    assert trained["accuracy"] > 0.85  # 3 epochs of a small MLP on 8x8 digits
    assert json.loads((version / "metadata.json").read_text())["warnings"] == []
    assert "WARNING" not in result.stdout
    width, height = picture_size(version / "training.png")
    assert 600 <= width <= 2000 and 250 <= height <= 600
    for kind in ("train", "validation"):  # TensorBoard's two sides, each with every epoch
        assert tensorboard_steps(tiny / "logs" / "train" / kind, "accuracy") == [1, 2, 3]
    assert result.stdout.splitlines()[-1] == "recorded the result in exports/results.json"
    results = json.loads((tiny / "exports" / "results.json").read_text())
    assert results["tiny"]["accuracy"] == trained["accuracy"]
    assert results["tiny"]["command"] == ("python train.py tiny.yaml --output exports "
                                          "--tensorboard logs --set train.precision=float32")

    result = run("evaluate.py", version, "--json", "metrics.json", cwd=tiny)
    assert result.returncode == 0, result.stderr
    evaluated = json.loads((tiny / "metrics.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(trained["accuracy"], abs=1e-6)
    assert evaluated["examples"] == 360
    assert sum(map(sum, evaluated["confusion_matrix"]["rows_true_columns_predicted"])) == 360
    per_class = evaluated["per_class"].values()
    assert sum(row["support"] for row in per_class) == 360
    assert evaluated["macro_recall"] == pytest.approx(np.mean([row["recall"] for row in per_class]))
    assert "per class:           accuracy/recall  precision      f1  support" in result.stdout
    assert picture_size(version / "confusion_matrix-digits-test.png")[0] >= 500
    assert "confusion matrix (rows: true class, columns: predicted):" in result.stdout

    # a second run is a second version; the first stays as it was
    assert run("train.py", "tiny.yaml", "--output", "exports", "--set", "train.epochs=1",
               cwd=tiny).returncode == 0
    assert sorted(os.listdir(tiny / "exports" / "tiny")) == ["1", "2"]
    check_predictions(tiny, version)


def check_predictions(folder: Path, version: Path):
    """`zoo predict` on real digits saved as image files: a small grey one and a large RGB
    one (converted and resized to the export's 8x8x1), and a file that is no image."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images[:2] * 255 / 16).astype(np.uint8)
    (folder / "mine").mkdir()
    Image.fromarray(pixels[0]).save(folder / "mine" / "zero.png")
    Image.fromarray(pixels[1]).convert("RGB").resize((64, 64)).save(folder / "mine" / "one.jpg")
    result = subprocess.run([sys.executable, "-m", "zoo", "predict", str(version), "mine",
                             "--top", "3"], cwd=folder, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [lines[0], lines[4]] == ["mine/one.jpg", "mine/zero.png"]
    assert lines[5].split()[1] == "0"  # the most probable class of the zero is 0
    probabilities = [float(line.split()[0].rstrip("%")) for line in lines[5:8]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 100.01
    (folder / "notes.png").write_text("not a picture")
    result = subprocess.run([sys.executable, "-m", "zoo", "predict", str(version), "notes.png"],
                            cwd=folder, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: notes.png: not an image TensorFlow can read (PNG, JPEG, "
                             "GIF or BMP)\n")



def test_export_serves_in_a_process_that_never_imported_zoo(tiny):
    assert run("train.py", "tiny.yaml", "--output", "exports", "--set", "train.epochs=1",
               cwd=tiny).returncode == 0
    version = tiny / "exports" / "tiny" / "1"
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype(np.uint8)
    np.save(tiny / "images.npy", images)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"model = tf.saved_model.load({str(version)!r})\n"
        "serve = model.signatures['serving_default']\n"
        f"out = serve(image=tf.constant(np.load({str(tiny / 'images.npy')!r})))['probabilities']\n"
        "assert out.dtype == tf.float32, out.dtype  # whatever precision it was trained in\n"
        f"np.save({str(tiny / 'served.npy')!r}, out.numpy())\n"
        "assert 'zoo' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-I", "-c", script], cwd="/", capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    served = np.load(tiny / "served.npy")

    import keras
    model = keras.saving.load_model(version / "model.keras", safe_mode=True)
    expected = np.asarray(model(images.astype("float32") / 255.0), dtype=np.float32)
    # Trained under mixed_bfloat16 (this CPU's default): bfloat16 keeps about 3 significant
    # digits, and the SavedModel's graph may round in another order than eager Keras.
    np.testing.assert_allclose(served, expected, atol=1e-2)
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))


@pytest.mark.slow  # about 20 s
def test_saved_model_cli_shows_and_runs_the_export(tiny):
    assert run("train.py", "tiny.yaml", "--output", "exports", "--set", "train.epochs=1",
               cwd=tiny).returncode == 0
    version = str(tiny / "exports" / "tiny" / "1")
    cli = Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run([str(cli), "show", "--all", "--dir", version], capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "inputs['image'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, 8, 8, 1)" \
        in shown.stdout
    assert "outputs['probabilities'] tensor_info:" in shown.stdout
    np.save(tiny / "x.npy", np.zeros((2, 8, 8, 1), np.uint8))
    ran = subprocess.run([str(cli), "run", "--dir", version, "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs",
                          f"image={tiny / 'x.npy'}"], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "Result for output key probabilities:" in ran.stdout


def test_mirrored_strategy_on_two_logical_cpus_trains_like_one_device(tiny):
    results = {}
    two = ["--strategy", "mirrored", "--logical-cpus", "2", "--set", "train.threads=1"]
    for name, flags in (("one", []), ("two", two)):
        # float32: in bfloat16, splitting a batch over replicas rounds differently
        result = run("train.py", "tiny.yaml", "--output", name, "--set", "train.epochs=2",
                     "--set", "train.precision=float32", *flags, cwd=tiny)
        assert result.returncode == 0, result.stderr
        results[name] = result.stdout
    assert "MirroredStrategy over 2 replica(s), float32, 1 intra-op / 1 inter-op threads" in (
        results["two"])
    assert "threads" not in results["one"]  # TensorFlow's own pools
    import keras
    one, two = (keras.saving.load_model(tiny / name / "tiny" / "1" / "model.keras")
                for name in ("one", "two"))
    for a, b in zip(one.weights, two.weights):  # same data, seed and global batch
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-4)


@pytest.mark.slow  # a process of its own with two logical CPUs: about 8 s
def test_a_batch_that_does_not_split_over_the_replicas_is_a_located_error(tiny):
    result = run("train.py", "tiny.yaml", "--output", "exports", "--strategy", "mirrored",
                 "--logical-cpus", "2", "--set", "train.batch_size=33", cwd=tiny)
    assert (result.returncode, result.stderr) == (2, (
        "error: --set train.batch_size:1:1: train.batch_size: a global batch of 33 does not "
        "split evenly over 2 replicas: use a multiple of 2, e.g. 32\n"))


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_train_one_model(tiny):
    from zoo.data import load_split

    load_split("digits", "train")  # whichever worker prepares the dataset says so, chief or not
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "multiworker_worker.py"), "tiny.yaml",
             "exports", f"weights{index}.npz", "train.epochs=2",
             "train.threads=1"],  # collectives must not need a second thread
            cwd=tiny, env={**os.environ, "TF_CONFIG": json.dumps(config),
                           # the chief chooses the precision: the other worker takes it
                           "ZOO_TEST_BFLOAT16": "yes" if index == 0 else "no"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    assert "MultiWorkerMirroredStrategy over 2 replica(s)" in outputs[0][0]
    assert "precision auto: timing a few training steps of tiny" in outputs[0][0]
    assert "1 intra-op / 1 inter-op threads" in outputs[0][0]
    assert outputs[1][0] == ""  # only the chief reports
    assert os.listdir(tiny / "exports" / "tiny") == ["1"]  # one export, the chief's
    first, second = (np.load(tiny / f"weights{i}.npz") for i in range(2))
    assert f"over 2 replica(s), {first['precision']}" in outputs[0][0]
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])


def test_killed_run_resumes_where_it_stopped(tiny):
    command = [sys.executable, str(ROOT / "train.py"), "tiny.yaml", "--output", "exports",
               "--set", "train.epochs=8", "--set", "train.batch_size=8"]
    state = tiny / "exports" / "tiny" / "checkpoint" / "train" / "state.json"
    done, _, _ = kill_after_epochs(command, tiny, state, epochs=2)
    assert 2 <= done < 8

    changed = run("train.py", "tiny.yaml", "--output", "exports", "--set", "train.epochs=9",
                  "--set", "train.batch_size=8", cwd=tiny)
    assert changed.returncode == 2
    assert "holds an unfinished run of a different version of this spec" in changed.stderr

    resumed = run("train.py", "tiny.yaml", "--output", "exports", "--set", "train.epochs=8",
                  "--set", "train.batch_size=8", cwd=tiny)
    assert resumed.returncode == 0, resumed.stderr
    resumed_after = int(resumed.stdout.split("resuming tiny after epoch ")[1].split()[0])
    assert resumed_after >= done
    assert f"epoch {resumed_after + 1}/8" in resumed.stdout
    assert f"epoch {resumed_after}/8" not in resumed.stdout
    history = json.loads((tiny / "exports" / "tiny" / "1" / "history.json").read_text())
    assert len(history["train"]) == 8


def test_batches_are_preprocessed_whole_with_tf_data_autotuning_off(tiny):
    # With autotuning on, an epoch's last batch can wait for the autotuning thread's next
    # wake-up (benchmarks/epoch_end.py); the option set on the raw split must reach what
    # train() feeds. Batches are preprocessed whole: the same values as image by image.
    import tensorflow as tf

    from zoo.data import preprocess
    from zoo.pipeline import evaluation_batches, load_splits, training_batches
    from zoo.training import Plan

    spec = zoo.load_spec(tiny / "tiny.yaml")
    splits = load_splits(spec, "train", download=False)
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)
    training = training_batches(splits, (8, 8, 1), plan)
    evaluation = evaluation_batches(splits, (8, 8, 1), plan)
    assert training.options().autotune.enabled is evaluation.options().autotune.enabled is False
    # training: endless (the loop takes each epoch's steps); evaluation: one pass, 360 images
    assert training.cardinality() == tf.data.INFINITE_CARDINALITY
    assert evaluation.cardinality() == 12
    images, labels = next(iter(evaluation))
    one_by_one = [(preprocess(image, (8, 8, 1), splits.options["preprocess"]), label)
                  for image, label in splits.eval.take(32)]
    np.testing.assert_array_equal(images, tf.stack([image for image, _ in one_by_one]))
    np.testing.assert_array_equal(labels, [label for _, label in one_by_one])


def test_every_epoch_evaluates_the_whole_eval_split_once_from_one_endless_iterator(tiny):
    # train_phase keeps one iterator over the endless evaluation batches for all epochs,
    # taking a pass of ceil(360 / 32) = 12 batches an epoch, the last of 8 images: each
    # epoch must see exactly the 360 images of one pass, in the same order.
    import tensorflow as tf

    from zoo.optimization import make_loss, make_optimizer
    from zoo.pipeline import distribute, evaluation_batches, evaluation_passes, load_splits
    from zoo.training import Plan, Trainer

    spec = zoo.load_spec(tiny / "tiny.yaml")
    splits = load_splits(spec, "train", download=False)
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)
    model = zoo.build_model(spec)
    strategy = tf.distribute.get_strategy()
    trainer = Trainer(strategy, model, make_optimizer(spec.train, plan.steps_per_epoch,
                                                      plan.epochs), make_loss(spec.train), plan)
    endless, steps = evaluation_passes(splits, (8, 8, 1), plan)
    assert steps == 12
    batches = distribute(strategy, endless)
    epochs = [trainer.evaluate(batches, steps) for _ in range(3)]
    losses = [make_loss(spec.train)(labels, model(images, training=False)).numpy()
              for images, labels in evaluation_batches(splits, (8, 8, 1), plan)]
    assert sum(len(batch) for batch in losses) == 360
    assert epochs[0] == epochs[1] == epochs[2]
    assert epochs[0]["loss"] == pytest.approx(np.concatenate(losses).mean(), rel=1e-5)


@pytest.mark.parametrize("augment", ["{flip: horizontal, pad_crop: 1}",
                                     "{randaugment: {num_ops: 3}, random_erasing: 0.5}"])
def test_each_epoch_is_shuffled_anew_and_a_resumed_run_sees_the_same_epochs(tiny, monkeypatch,
                                                                            augment):
    import zoo.pipeline
    from zoo.pipeline import load_splits, training_batches
    from zoo.training import Plan

    monkeypatch.setattr(zoo.pipeline, "CHAINED_EPOCHS", 2)  # tiny's 3 epochs take 2 iterators
    spec = zoo.load_spec(tiny / "tiny.yaml", [f"data.augment={augment}"])
    splits = load_splits(spec, "train", download=False)
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)
    steps = plan.steps_per_epoch

    def epochs(first, count):
        fed = training_batches(splits, (8, 8, 1), plan, first_epoch=first)
        return [np.concatenate([images.numpy().ravel(), labels.numpy()]) for images, labels
                in fed.take(count * steps)]

    every_epoch = epochs(0, 2) + epochs(2, 1)  # as train_phase() takes them
    resumed = epochs(1, 2)  # a run resumed after epoch 1
    np.testing.assert_array_equal(resumed, every_epoch[steps:])
    assert not np.array_equal(every_epoch[0], every_epoch[steps])


def test_each_worker_prepares_its_own_share_of_every_step_and_an_epoch_covers_the_data(tiny):
    import tensorflow as tf

    from zoo.pipeline import load_splits, training_batches
    from zoo.training import Plan

    spec = zoo.load_spec(tiny / "tiny.yaml", ["train.batch_size=16"])
    splits = load_splits(spec, "train", download=False)
    plan = Plan.from_section(spec.train, splits.info, splits.train_size)
    steps = plan.steps_per_epoch

    def rows(first_step=0, worker=None):
        context = None if worker is None else tf.distribute.InputContext(2, worker, 2)
        fed = training_batches(splits, (8, 8, 1), plan, 0, first_step, context)
        return [np.concatenate([images.numpy().reshape(len(labels), -1),
                                labels.numpy()[:, None]], axis=1)
                for images, labels in fed.take(steps - first_step)]

    one_device, first, second = rows(), rows(worker=0), rows(worker=1)
    assert first[0].shape == (8, 65)  # half a batch each, of 8x8 pixels and a label
    for whole, mine, theirs in zip(one_device, first, second):  # a step takes the same images
        both = np.concatenate([mine, theirs])
        np.testing.assert_array_equal(np.unique(both, axis=0), np.unique(whole, axis=0))
    seen = np.concatenate(first + second)
    assert len(np.unique(seen, axis=0)) == len(seen) == steps * 16  # distinct, the whole epoch
    assert len(seen) == splits.train_size // 16 * 16
    np.testing.assert_array_equal(rows(3, worker=1), second[3:])  # a resumed worker's share


def test_several_steps_per_call_train_the_same_weights_as_one_on_one_device(tiny):
    import keras

    weights = []
    for steps in (1, 5):  # calls end at each checkpoint (every 7 steps) and at epochs' ends
        model = zoo.train(tiny / "tiny.yaml", output=str(tiny / f"per-call-{steps}"),
                          overrides=["train.epochs=2", "train.checkpoint_every=7",
                                     f"train.steps_per_execution={steps}"],
                          log=lambda message: None).model
        weights.append(model.get_weights())
        keras.backend.clear_session()
    for one, several in zip(*weights):
        np.testing.assert_array_equal(one, several)


def test_augmentation_draws_a_flip_and_a_crop_for_each_image_of_a_batch():
    import tensorflow as tf

    from zoo.augment import augment

    images = tf.reshape(tf.range(64 * 5 * 4, dtype=tf.float32), (64, 5, 4, 1))  # all distinct
    labels = tf.zeros([64], tf.int64)
    options = {"flip": "horizontal", "pad_crop": 2}

    def draw(seed):
        return augment(images, labels, options, seed, classes=10)[0].numpy()

    augmented = draw((3, 0))
    np.testing.assert_array_equal(augmented, draw((3, 0)))
    assert not np.array_equal(augmented, draw((3, 1)))
    padded = np.pad(images.numpy(), [(0, 0), (2, 2), (2, 2), (0, 0)])
    draws = set()
    for index, image in enumerate(augmented):
        found = [(flipped, top, left) for flipped in (False, True) for top in range(5)
                 for left in range(5) if np.array_equal(image, (
                     padded[index, :, ::-1] if flipped else padded[index])[top:top + 5,
                                                                           left:left + 4])]
        assert found, f"image {index} is not a flipped or unflipped window of its padding"
        draws.add(found[0])
    assert {flipped for flipped, _, _ in draws} == {False, True}
    assert len({(top, left) for _, top, left in draws}) > 10  # of the 25 places


def test_dataset_problems_are_clear(tiny, tfds_data_dir, monkeypatch, capsys):
    monkeypatch.chdir(tiny)

    def train_with(setting):  # `zoo train` in this process: four new processes took 30 s
        assert cli.main(["train", "tiny.yaml", "--set", setting]) == 2
        return capsys.readouterr().err

    assert train_with("data.dataset=mnist") == (
        f"error: --set data.dataset:1:1: data.dataset: dataset 'mnist' is not in {tfds_data_dir} "
        "(set TFDS_DATA_DIR if it is elsewhere); run again with --download to fetch it (needs "
        "network), or try the spec offline with --set data.dataset=mnist_subset (5,000 embedded "
        "MNIST digits) or digits\n")
    assert train_with("data.dataset=mnsit") == (
        "error: --set data.dataset:1:1: data.dataset: unknown dataset 'mnsit' (did you mean "
        "'mnist' or 'kmnist' or 'emnist'?); use a TFDS name (e.g. mnist, cifar10), an embedded one "
        "(mnist_subset, digits) or a folder of images with one sub-folder per class\n")
    assert train_with("data.train_split=training").startswith(
        "error: --set data.train_split:1:1: data.train_split: dataset 'digits' has no split "
        "'training' (did you mean 'train'?); its splits: train, test; name one with --set "
        "data.train_split=train (")
    assert train_with("data.validation_split=val").startswith(
        "error: --set data.validation_split:1:1: data.validation_split: dataset 'digits' has no "
        "split 'val'; its splits: train, test; name one with --set data.validation_split=test (")


def test_any_spec_runs_on_any_dataset_resizing_and_converting_channels(tmp_path, monkeypatch,
                                                                      capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, colour in (("red", 0), ("blue", 2)):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for index in range(20):
            pixels = rng.integers(0, 60, (12, 10, 3)).astype(np.uint8)
            pixels[..., colour] = 200
            Image.fromarray(pixels).save(tmp_path / "photos" / label / f"{index}.png")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", str(ROOT / "specs" / "lenet.yaml"), "--output", "exports",
                     "--set", "data.dataset=photos", "--set", "train.epochs=2",
                     "--set", "data.train_split=all", "--set", "data.eval_split=test"]) == 0
    assert ("model.vars.classes = 2 (dataset photos has 2 classes; the spec said 10)"
            in capsys.readouterr().out)
    metadata = json.loads((tmp_path / "exports" / "lenet" / "1" / "metadata.json").read_text())
    assert metadata["input"]["shape"] == [None, None, None, 3]
    assert metadata["class_names"] == ["blue", "red"]
    wide = np.zeros((7, 30, 3), np.uint8)
    wide[..., 0] = 200
    Image.fromarray(wide).save(tmp_path / "photos" / "red" / "wide.png")  # another size
    assert cli.main(["evaluate", "exports/lenet", "--split", "all"]) == 0
    assert "photos / all: 41 examples" in capsys.readouterr().out


def test_autoencoder_exports_reconstruction_and_code(tmp_path, monkeypatch, capsys):
    (tmp_path / "ae.yaml").write_text("""\
model:
  inputs: {image: [8, 8, 1]}
  layers:
    - flatten
    - dense: {name: code, units: 16, activation: sigmoid}
    - dense: {units: 64, activation: sigmoid}
    - reshape: {name: reconstruction, target_shape: [8, 8, 1]}
data: {dataset: digits, preprocess: {rescale: 0.00392156862745098}}
train: {batch_size: 32, epochs: 2, optimizer: adam, loss: binary_crossentropy, target: input}
export:
  outputs: {reconstruction: reconstruction, code: code}
""")
    assert run("train.py", "ae.yaml", "--output", "exports", cwd=tmp_path).returncode == 0
    version = tmp_path / "exports" / "ae" / "1"
    import tensorflow as tf
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    outputs = serve(image=tf.zeros([3, 8, 8, 1], tf.uint8))
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {
        "reconstruction": (3, 8, 8, 1), "code": (3, 16)}
    result = run("evaluate.py", version, "--json", "m.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    trained = json.loads((version / "metrics.json").read_text())
    assert metrics["binary_crossentropy"] == pytest.approx(trained["loss"], rel=1e-4)
    assert 0 < metrics["mean_squared_error"] < 0.2

    assert json.loads((version / "metadata.json").read_text())["image_outputs"] == [
        "reconstruction"]
    check_reconstructions(tmp_path, version, serve, monkeypatch, capsys)


def check_reconstructions(folder: Path, version: Path, serve, monkeypatch, capsys):
    """`zoo predict` on an autoencoder: each reconstruction becomes a PNG of the export's pixels
    (named after its input; two inputs named alike get their folders in the name), the code
    is printed; an --out that cannot be a folder is refused."""
    import tensorflow as tf
    from PIL import Image
    from sklearn.datasets import load_digits

    from zoo import cli

    monkeypatch.chdir(folder)
    pixels = (load_digits().images[:2] * 255 / 16).astype(np.uint8)
    for name, image in (("mine", pixels[0]), ("theirs", pixels[1])):
        (folder / name).mkdir()
        Image.fromarray(image).save(folder / name / "digit.png")
    assert cli.main(["predict", str(version), "mine", "theirs/digit.png", "--out", "out"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0::3] == ["mine/digit.png", "theirs/digit.png"]
    assert lines[2::3] == ["  reconstruction: out/mine_digit_png-reconstruction.png",
                           "  reconstruction: out/theirs_digit_png-reconstruction.png"]
    assert re.fullmatch(r"  code: 16 values \[[0-9. ]+\.\.\.[0-9. ]+\]", lines[1]), lines[1]
    assert sorted(os.listdir(folder / "out")) == ["mine_digit_png-reconstruction.png",
                                                   "theirs_digit_png-reconstruction.png"]
    reconstructions = serve(image=tf.constant(pixels[..., None]))["reconstruction"].numpy()
    for image, name in zip(reconstructions, ("mine", "theirs")):
        written = np.array(Image.open(folder / "out" / f"{name}_digit_png-reconstruction.png"))
        assert np.array_equal(written, np.round(image[..., 0] * 255).astype(np.uint8))
    (folder / "taken").write_text("a file, not a folder")
    assert cli.main(["predict", str(version), "mine", "--out", "taken"]) == 2
    assert capsys.readouterr().err == ("error: --out: taken is a file; give a folder for the "
                                       "pictures (it is made if missing)\n")


def test_an_unwritable_output_fails_before_training(tiny):
    (tiny / "taken").write_text("a file, not a folder")
    result = run("train.py", "tiny.yaml", "--output", "taken", cwd=tiny)
    assert result.returncode == 2
    assert result.stderr == "error: --output: cannot write exports to taken/tiny: Not a directory\n"
    assert result.stdout == ""


# With a checkpoint after step 1, whose weights made step 2's loss NaN: it is not kept.
@pytest.mark.parametrize("every", [None, 1])
def test_a_loss_that_becomes_nan_is_a_located_error_at_the_learning_rate(tiny, capsys,
                                                                         monkeypatch, every):
    monkeypatch.chdir(tiny)
    code = cli.main(["train", "tiny.yaml", "--output", "exports", "--set",
                     "train.optimizer={sgd: {learning_rate: 1.0e+30}}", "--set",
                     f"train.checkpoint_every={every or 'null'}"])
    assert (code, capsys.readouterr().err) == (2, (
        "error: --set train.optimizer:1:23: train.optimizer.sgd.learning_rate: the loss became "
        "NaN in epoch 1 at training step 2 of 44, with the learning rate at 1e+30: training "
        "diverged and stopped. No export was written; no epoch had finished, so no checkpoint "
        "is kept. Lower the rate, e.g. to a tenth: --set "
        "train.optimizer.sgd.learning_rate=1e+29\n"))
    assert not (tiny / "exports").exists()  # no checkpoint to keep: no empty folders either


@pytest.mark.slow  # a process of its own with two logical CPUs: about 10 s
def test_a_loss_that_becomes_nan_stops_every_replica_of_a_mirrored_run(tiny):
    result = run("train.py", "tiny.yaml", "--output", "exports", "--strategy", "mirrored",
                 "--logical-cpus", "2", "--set", "train.optimizer={sgd: {learning_rate: 1.0e+30}}",
                 cwd=tiny)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: --set train.optimizer:1:23: train.optimizer.sgd.learning_rate: the loss became "
        "NaN in epoch 1 at training step 2 of 44, with the learning rate at 1e+30")
    assert "over 2 replica(s)" in result.stdout and not (tiny / "exports").exists()


# The rate is multiplied by 1e30 from the third epoch: two good epochs, then NaN at its step
# 2, just after a checkpoint (step 89 of the run) whose weights gave it, which is not kept.
SOARING = ["--set", "train.optimizer={sgd: {learning_rate: 0.1}}",
           "--set", "train.schedule={step: {epochs: [2], factor: 1.0e+30}}",
           "--set", "train.checkpoint_every=89"]


def test_a_diverged_run_says_the_rate_in_force_and_resumes_once_the_rate_is_lowered(
        tiny, capsys, monkeypatch):
    monkeypatch.chdir(tiny)
    code = cli.main(["train", "tiny.yaml", "--output", "exports", *SOARING])
    assert (code, capsys.readouterr().err) == (2, (
        "error: --set train.optimizer:1:23: train.optimizer.sgd.learning_rate: the loss became "
        "NaN in epoch 3 at training step 2 of 44, with the learning rate at 1e+29: training "
        "diverged and stopped. No export was written; the last checkpoint is kept in "
        "exports/tiny/checkpoint: the same command with the lower rate resumes from it. Lower "
        "the rate, e.g. to a tenth: --set train.optimizer.sgd.learning_rate=0.01\n"))
    assert not (tiny / "exports" / "tiny" / "1").exists()
    code = cli.main(["train", "tiny.yaml", "--output", "exports", *SOARING,
                     "--set", "train.optimizer.sgd.learning_rate=1e-31"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert ("the last run of tiny diverged: it resumes with train.optimizer.sgd.learning_rate "
            "changed\nresuming tiny after epoch 2 of 3") in printed.out
    history = json.loads((tiny / "exports" / "tiny" / "1" / "history.json").read_text())
    assert len(history["train"]) == 3 and history["train"][2]["loss"] < 2.0


def test_a_run_diverged_with_other_changes_too_refuses_to_resume(tiny, capsys, monkeypatch):
    monkeypatch.chdir(tiny)
    assert cli.main(["train", "tiny.yaml", "--output", "exports", *SOARING]) == 2
    code = cli.main(["train", "tiny.yaml", "--output", "exports", *SOARING, "--set",
                     "train.optimizer.sgd.learning_rate=1e-31", "--set", "train.batch_size=16"])
    assert code == 2
    assert capsys.readouterr().err.endswith("holds an unfinished run of a different version of "
                                            "this spec (it changed since, or other --set values "
                                            "were given); re-run with the same spec and options "
                                            "to resume it, or add --restart to discard it\n")


def test_a_stage_that_diverges_is_located_at_its_own_optimizer(tiny, capsys, monkeypatch):
    monkeypatch.chdir(tiny)
    (tiny / "staged.yaml").write_text(TINY.replace("  seed: 1\n", """\
  seed: 1
  stages:
    - {epochs: 1}
    - {epochs: 1, optimizer: {sgd: {learning_rate: 1.0e+30}}}
"""))
    code = cli.main(["train", "staged.yaml", "--output", "exports"])
    assert (code, capsys.readouterr().err) == (2, (
        "error: staged.yaml:19:52: train.stages[1].optimizer.sgd.learning_rate: the loss became "
        "NaN in epoch 1 at training step 2 of 44, with the learning rate at 1e+30: training "
        "diverged and stopped. No export was written; the phases before it (stage 1/2) are kept "
        "in exports/staged/checkpoint: the same command with the lower rate resumes after them. "
        "Lower the rate, e.g. to a tenth: --set train.stages[1].optimizer.sgd.learning_rate=1e+29"
        "\n"))


def test_an_export_at_chance_level_says_so_in_the_log_and_its_metadata(tiny):
    result = run("train.py", "tiny.yaml", "--output", "exports", "--results", "", "--set",
                 "train.epochs=1", "--set", "train.optimizer={sgd: {learning_rate: 0.0}}",
                 cwd=tiny)
    assert result.returncode == 0, result.stderr
    metadata = json.loads((tiny / "exports" / "tiny" / "1" / "metadata.json").read_text())
    warning, = metadata["warnings"]
    assert warning.startswith("the accuracy reached, 0.") and warning.endswith(
        ", is at chance level (0.1000 for 10 classes): the network learned nothing. Look at the "
        "loss per epoch: a learning rate too large or too small, too few epochs, or "
        "preprocessing the export does not match are the usual causes")
    assert f"WARNING: {warning}\n" in result.stdout  # a trained one: test_train_export_...


@pytest.mark.slow  # two trainings: about 20 s
def test_ctrl_c_exits_cleanly_and_the_same_command_resumes(tiny):
    command = [sys.executable, str(ROOT / "train.py"), "tiny.yaml", "--output", "exports",
               "--set", "train.epochs=6", "--set", "train.batch_size=8"]
    state = tiny / "exports" / "tiny" / "checkpoint" / "train" / "state.json"
    done, code, stderr = kill_after_epochs(command, tiny, state, epochs=1, sig=signal.SIGINT)
    assert code == 130
    assert stderr == ("interrupted: the last checkpoint is kept; run the same command again to "
                      "resume from it\n")
    resumed = subprocess.run(command, cwd=tiny, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming tiny after epoch {done} of 6" in resumed.stdout


@pytest.mark.slow  # about 18 s
def test_a_terminal_gets_a_bar_of_each_epochs_steps_and_a_log_file_one_line_an_epoch(tiny):
    import pty

    command = [sys.executable, str(ROOT / "train.py"), "tiny.yaml", "--output", "exports",
               "--set", "train.epochs=1"]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: train.py with a terminal as its output
        os.chdir(tiny)
        os.execv(sys.executable, command)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the child is gone
            break
        if not chunk:
            break
        shown += chunk
    assert os.waitpid(pid, 0)[1] == 0, shown.decode()
    bar = re.sub(r"\x1b\[[0-9;]*m|\x08", "", shown.decode()).split("\r")  # colours, backspaces
    assert any(part.startswith(" 1/44 ") for part in bar), bar
    # Keras writes the time per step in s, ms or us, whichever reads best at this speed
    assert any(re.match(r"44/44 .* \d+(s|ms|us)/step - loss: .* - accuracy: ", part)
               for part in bar), bar
    logged = run("train.py", "tiny.yaml", "--output", "again", "--set", "train.epochs=1",
                 "--set", "train.precision=float32", cwd=tiny)  # no probe's lines
    assert [line.split("  ")[0] for line in logged.stdout.splitlines()] == [
        logged.stdout.splitlines()[0].split("  ")[0], "tiny: epoch 1/1", "exported again/tiny/1",
        "recorded the result in again/results.json"]


def test_threads_cannot_change_once_tensorflow_runs(tiny):
    import tensorflow as tf

    tf.config.list_logical_devices()  # starts TensorFlow's runtime, as any earlier work does
    other = tf.config.threading.get_intra_op_parallelism_threads() + 3
    with pytest.raises(zoo.SpecError, match="train.threads: TensorFlow is already running in "
                                            "this process and its thread pools are fixed"):
        zoo.train(tiny / "tiny.yaml", output=str(tiny / "exports"),
                  overrides=[f"train.threads={other}"])
    assert not (tiny / "exports").exists()


def test_a_kill_between_checkpoint_and_state_resumes_from_the_epoch_before(tmp_path):
    import shutil

    import keras

    from zoo.checkpoints import Position, RunState

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD()
    state = RunState(str(tmp_path), "spec")
    for epoch in (1, 2):
        state.history.append({"loss": float(epoch)})
        state.save(model, optimizer, Position(epoch), steps_per_epoch=10)
        if epoch == 1:
            shutil.copy(tmp_path / "state.json", tmp_path / "after-1.json")
    # the kill landed after epoch 2's checkpoint, before its state.json
    shutil.copy(tmp_path / "after-1.json", tmp_path / "state.json")
    resumed = RunState(str(tmp_path), "spec")
    assert resumed.restore(model, optimizer) == Position(1)
    assert resumed.history == [{"loss": 1.0}]


def test_a_kill_between_a_mid_epoch_checkpoint_and_its_state_resumes_at_the_one_before(
        tmp_path):
    import shutil

    import keras

    from zoo.checkpoints import Position, RunState

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD()
    state = RunState(str(tmp_path), "spec")
    state.history.append({"loss": 1.0})
    state.save(model, optimizer, Position(1), steps_per_epoch=10)
    state.save(model, optimizer, Position(1, 4), 10, totals={"loss": 2.0, "count": 32.0})
    shutil.copy(tmp_path / "state.json", tmp_path / "at-4.json")
    state.save(model, optimizer, Position(1, 8), 10, totals={"loss": 3.0, "count": 64.0})
    shutil.copy(tmp_path / "at-4.json", tmp_path / "state.json")  # killed before step 8's state
    resumed = RunState(str(tmp_path), "spec")
    assert resumed.restore(model, optimizer) == Position(1, 4)
    assert resumed.partial_totals == {"loss": 2.0, "count": 32.0}
    assert resumed.history == [{"loss": 1.0}]


@pytest.mark.slow  # about 35 s
def test_a_run_killed_within_an_epoch_resumes_at_its_last_step_checkpoint_exactly(tiny):
    import keras

    def command(output):
        return [sys.executable, str(ROOT / "train.py"), "tiny.yaml", "--output", output,
                "--set", "train.epochs=3", "--set", "train.batch_size=8",
                "--set", "train.checkpoint_every=10", "--set", "data.augment={flip: horizontal}",
                "--set", "train.steps_per_execution=4"]  # calls of 4, 4 and 2 steps

    state_file = tiny / "exports" / "tiny" / "checkpoint" / "train" / "state.json"
    state, code, _ = kill_when(command("exports"), tiny, state_file, lambda state: state.get(
        "partial", {}).get("position", [0, 0])[1] >= 30 and state["history"])
    assert code == -signal.SIGKILL
    epochs, steps = state["partial"]["position"]
    resumed = subprocess.run(command("exports"), cwd=tiny, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming tiny in epoch {epochs + 1}/3 after step {steps} of 179" in resumed.stdout
    uninterrupted = subprocess.run(command("again"), cwd=tiny, capture_output=True, text=True,
                                   timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    weights = [keras.saving.load_model(tiny / folder / "tiny" / "1" / "model.keras",
                                       compile=False).get_weights()
               for folder in ("exports", "again")]
    for killed, whole in zip(*weights):
        np.testing.assert_allclose(killed, whole, rtol=0, atol=1e-6)
    histories = [json.loads((tiny / folder / "tiny" / "1" / "history.json").read_text())
                 for folder in ("exports", "again")]
    for killed, whole in zip(histories[0]["train"], histories[1]["train"]):
        assert killed["loss"] == pytest.approx(whole["loss"], rel=1e-5)


def test_the_python_api_trains_a_spec_given_as_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = []
    result = zoo.train(TINY, overrides=["train.epochs=2", "train.precision=float32"],
                       output="out", log=lines.append)
    assert result.export == os.path.join("out", "spec", "1") and result.spec.name == "spec"
    assert lines[0].startswith("training spec on digits (1,437 train / 360 eval images)")
    assert [len(epochs) for epochs in result.history.values()] == [2]
    assert result.metrics["accuracy"] > 0.8
    exported = json.loads((tmp_path / result.export / "metrics.json").read_text())
    assert exported == pytest.approx(result.metrics)
    assert result.dataset == {"name": "digits", "train_split": "train", "eval_split": "test",
                              "evaluated": "test"}
    assert not (tmp_path / "out" / "results.json").exists()  # recording is `zoo train`'s job
    with pytest.raises(zoo.SpecError) as error:
        zoo.train(TINY.replace("epochs: 3", "epochs: many"), output="out")
    assert str(error.value) == ("<spec>:13:11: train.epochs: expected a positive integer, "
                                "received the string 'many'")
    model = zoo.build_model(TINY, ["model.vars.classes=3"])  # text, as zoo.train takes it
    assert (model.name, model.output_shape) == ("spec", (None, 3))


def test_figures_on_a_validation_split_are_labelled_with_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = zoo.train(TINY, output="out", log=lambda _: None, overrides=[
        "train.epochs=1", "data.train_split=train[:80%]", "data.validation_split=train[80%:]"])
    assert result.dataset == {"name": "digits", "train_split": "train[:80%]",
                              "eval_split": "test", "evaluated": "train[80%:]"}


@pytest.mark.slow  # tracing a step of 1,000 layers takes minutes
def test_a_chain_of_a_thousand_layers_builds_trains_and_exports(tiny):
    layers = "".join("    - dense: {units: 16, activation: relu}\n" for _ in range(1000))
    (tiny / "deep.yaml").write_text(
        TINY.replace("    - dense: {units: 32, activation: relu}\n", layers))
    result = run("train.py", "deep.yaml", "--output", "exports", "--set", "train.epochs=1",
                 "--set", "train.steps_per_epoch=1", "--set", "data.eval_split=test[:32]",
                 cwd=tiny, timeout=1200)
    assert result.returncode == 0, result.stderr
    assert "training deep on digits" in result.stdout
    import tensorflow as tf

    serve = tf.saved_model.load(str(tiny / "exports" / "deep" / "1")).signatures[
        "serving_default"]
    probabilities = serve(image=tf.zeros([2, 8, 8, 1], tf.uint8))["probabilities"]
    assert probabilities.shape == (2, 10)


def test_a_diverging_very_deep_network_is_told_what_the_papers_did():
    import keras

    from zoo.divergence import DEEP, deep_network_advice

    def chain(depth):
        return keras.Sequential([keras.Input((4,))] + [keras.layers.Dense(4)
                                                       for _ in range(depth)])

    assert deep_network_advice(chain(DEEP - 1)) == ""
    assert deep_network_advice(chain(DEEP)) == (
        f" ({DEEP} weighted layers: He et al. 2015 trained ResNet-110 and ResNet-1202 at 0.01 "
        "until the training error fell below 80%, about 400 steps, then at 0.1)")


@pytest.mark.slow  # AlexNet and ResNet-50 at 227 and 224 pixels: about a minute each
@pytest.mark.parametrize("name", ["alexnet", "resnet50"])
def test_the_papers_imagenet_recipes_train_offline_on_the_embedded_digits(tmp_path, name):
    result = run("train.py", str(ROOT / "specs" / f"{name}.yaml"), "--output", "exports",
                 "--set", "data.dataset=mnist_subset", "--set", "train.epochs=1",
                 "--set", "train.steps_per_epoch=2", "--set", "train.batch_size=8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    crop = {"alexnet": 227, "resnet50": 224}[name]
    assert (f"mnist_subset's images are 28x28 pixels, smaller than data.preprocess's "
            f"resize_shorter 256 and center_crop {crop}: they are scaled up") in result.stdout
    assert ("mnist_subset has no 'validation' split: each epoch and the export are evaluated "
            "on 'test'") in result.stdout
    metadata = json.loads((tmp_path / "exports" / name / "1" / "metadata.json").read_text())
    assert metadata["dataset"]["eval_split"] == "test"


@pytest.mark.parametrize("optimizer, line, path, fix", [
    (None, 12, "train.optimizer", '--set "train.optimizer={adam: {learning_rate: 0.0001}}"'),
    ("{sgd: {momentum: 0.9}}", 14, "train.optimizer.sgd",
     "--set train.optimizer.sgd.learning_rate=0.001"),
    ("{sgd: {learning_rate: 1, momentum: 0.9}}", 14, "train.optimizer.sgd.learning_rate",
     "--set train.optimizer.sgd.learning_rate=0.1")])
def test_the_rate_a_divergence_blames_is_where_the_spec_gives_it_or_keras_default(
        write_spec, optimizer, line, path, fix):
    """Without an optimizer, the rate is Adam's default, blamed on the train section."""
    from zoo.divergence import rate_setting

    text = TINY.replace("  optimizer: {adam: {learning_rate: 0.01}}\n",
                        f"  optimizer: {optimizer}\n" if optimizer else "")
    setting = rate_setting(zoo.load_spec(write_spec(text)).train)
    assert (setting.location.line, setting.path, setting.lowered()) == (line, path, fix)


def test_a_diverged_run_resumed_trains_at_the_lowered_rate_not_the_checkpoints(tiny,
                                                                              monkeypatch):
    from zoo.checkpoints import note_divergence
    from zoo.source import plain

    monkeypatch.chdir(tiny)

    def stop(phase, epoch, metrics):  # after the first epoch's checkpoint, as a divergence
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.train("tiny.yaml", output="exports", log=lambda _: None, on_epoch=stop)
    note_divergence("exports/tiny/checkpoint", "train.optimizer.adam.learning_rate",
                    plain(zoo.load_spec("tiny.yaml").document))
    result = zoo.train("tiny.yaml", output="exports", log=lambda _: None,
                       overrides=["train.optimizer.adam.learning_rate=0.001"])
    assert [epoch["lr"] for epoch in result.history["train"]] == pytest.approx(
        [0.01, 0.001, 0.001])


def test_early_stopping_ends_with_the_best_epochs_weights_also_after_a_resume(tiny,
                                                                            monkeypatch):
    """A rate too high for the tiny net makes its last epoch worse than the one before; the
    export has that best epoch's weights though the run was interrupted just after it."""
    from zoo.evaluation import evaluate_export

    monkeypatch.chdir(tiny)
    overrides = ["train.epochs=5", "train.optimizer.adam.learning_rate=0.05",
                 "train.early_stopping={monitor: val_loss, patience: 6}"]

    def stop(phase, epoch, metrics):
        if epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zoo.train("tiny.yaml", output="exports", log=lambda _: None, overrides=overrides,
                  on_epoch=stop)
    lines = []
    result = zoo.train("tiny.yaml", output="exports", log=lines.append, overrides=overrides)
    losses = [epoch["val_loss"] for epoch in result.history["train"]]
    best = losses.index(min(losses))
    assert best < len(losses) - 1  # the test's premise: the last epoch is not the best
    assert (f"tiny: the weights of epoch {best + 1} come back, its val_loss the best "
            f"({min(losses):.4g})") in lines
    assert result.metrics["loss"] == min(losses)
    assert evaluate_export(result.export)["loss"] == pytest.approx(min(losses), rel=1e-4)


@pytest.mark.slow  # about 15 s: two exports and a fresh TensorFlow process
def test_an_export_with_batch_norm_folded_serves_what_the_unfolded_one_did(tmp_path):
    from test_layers import FOLDABLE, foldable_model
    from zoo.data import DataInfo
    from zoo.export import export
    from zoo.spec import as_spec

    spec, model = as_spec(FOLDABLE), foldable_model()
    info = DataInfo("digits", (8, 8, 1), [str(digit) for digit in range(10)])
    versions = [export(spec, model, info, str(tmp_path / name), history={}, metrics={},
                       dataset={"name": "digits"}, fold_batch_norm=fold)
                for name, fold in (("folded", True), ("unfolded", False))]
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype(np.uint8)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"images = tf.constant(np.load({str(tmp_path / 'images.npy')!r}))\n"
        f"for name, version in zip(('folded', 'unfolded'), {versions!r}):\n"
        "    model = tf.saved_model.load(version)\n"
        "    out = model.signatures['serving_default'](image=images)['probabilities']\n"
        f"    np.save({str(tmp_path)!r} + f'/{{name}}.npy', out.numpy())\n"
        "    print(len(model.variables))\n"
        "assert 'zoo' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-I", "-c", script], cwd="/", capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    folded, unfolded = (np.load(tmp_path / f"{name}.npy") for name in ("folded", "unfolded"))
    np.testing.assert_allclose(folded, unfolded, atol=1e-6)
    np.testing.assert_allclose(folded, model(images / 255.0, training=False), atol=1e-6)
    # two normalizations' four weights each became two biases (bn3 follows a ReLU)
    assert [int(count) for count in result.stdout.split()][::-1] == [18, 12]
