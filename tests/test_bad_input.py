"""Bad data, damaged exports, a full disk and two runs at once: clear errors, nothing lost."""

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TINY, run

DIGITS = [str(digit) for digit in range(10)]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs of one spec, started together, exporting into one folder."""
    directory = tmp_path_factory.mktemp("two_runs")
    (directory / "tiny.yaml").write_text(TINY)
    command = [sys.executable, str(ROOT / "train.py"), "tiny.yaml", "--output", "exports",
               "--set", "train.epochs=1"]
    # A TFDS folder of their own: both find the embedded dataset missing and must not both
    # prepare it (TFDS refuses to prepare into a folder another process has just written).
    environment = {**os.environ, "TFDS_DATA_DIR": str(directory / "tfds")}
    processes = [subprocess.Popen(command, cwd=directory, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=environment)
                 for _ in range(2)]
    results = [(process.wait(timeout=300), *process.communicate()) for process in processes]
    return directory, results


def test_two_runs_at_once_export_two_distinct_complete_versions(two_runs):
    from zoo.evaluation import evaluate_export

    directory, results = two_runs
    assert [code for code, _, _ in results] == [0, 0], results
    outputs = sorted(stdout for _, stdout, _ in results)
    assert sum("preparing the embedded dataset 'digits'" in stdout for stdout in outputs) == 1
    assert sum("waiting for it to finish" in stdout for stdout in outputs) == 1
    assert sorted(line for stdout in outputs for line in stdout.splitlines()
                  if line.startswith("exported")) == ["exported exports/tiny/1",
                                                      "exported exports/tiny/2"]
    spec_directory = directory / "exports" / "tiny"
    assert sorted(os.listdir(spec_directory)) == ["1", "2"]
    for version in ("1", "2"):
        metrics = evaluate_export(str(spec_directory / version))
        assert metrics["examples"] == 360


def _photos(root: Path, count: int = 4) -> Path:
    from PIL import Image

    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            Image.fromarray(np.full((6, 5, 3), index * 40, np.uint8)).save(
                root / label / f"{index}.png")
    return root


def test_damaged_images_are_named_before_any_training_step(tmp_path):
    photos = _photos(tmp_path / "photos")
    (photos / "dogs" / "notes.png").write_text("not an image at all")
    whole = (photos / "cats" / "1.png").read_bytes()
    (photos / "cats" / "1.png").write_bytes(whole[:len(whole) // 2])  # a cut download
    result = run("train.py", ROOT / "specs" / "lenet.yaml", "--output", "exports",
                 "--set", "data.dataset=photos", "--set", "data.train_split=all", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: --set data.dataset:1:1: data.dataset: 2 of the 9 images of the 'all' split of "
        "'photos' cannot be decoded: photos/cats/1.png, photos/dogs/notes.png; replace or remove "
        "them\n")
    assert result.stdout == ""


def test_files_that_are_not_images_are_skipped_and_counted(tmp_path, monkeypatch):
    from zoo.data import load_split

    monkeypatch.chdir(tmp_path)
    photos = _photos(Path("photos"))
    (photos / "cats" / "README.txt").write_text("taken in 2019")
    (photos / "dogs" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    dataset, info = load_split("photos", "all")
    assert info.skipped == ["photos/cats/README.txt", "photos/dogs/.DS_Store"]
    assert len(list(dataset)) == 8


def test_a_model_whose_input_is_not_an_image_is_refused_before_training(write_spec):
    import zoo
    from zoo.data import DataInfo
    from zoo.run import check_model_fits_data

    path = write_spec("model:\n  inputs: {image: [64]}\n  layers:\n    - dense: {units: 10}\n"
                      "data: {dataset: digits}\n")
    message = ("spec.yaml:2:19: model.inputs.image: training feeds images, resized and "
               "converted to the model's input: it must be [height, width, channels], received "
               "[64] (a dense network starts with flatten)")
    spec = zoo.load_spec(path)
    with pytest.raises(zoo.SpecError) as caught:
        check_model_fits_data(spec, zoo.build_model(spec), DataInfo("digits", (8, 8, 1), DIGITS))
    assert str(caught.value) == message
    summary = run("train.py", path, "--dry-run", cwd=".")  # --dry-run refuses it as training does
    assert (summary.returncode, summary.stderr) == (2, f"error: {message}\n")


def test_a_model_whose_channels_the_data_cannot_give_is_refused_before_training(write_spec):
    import zoo
    from zoo.data import DataInfo
    from zoo.run import check_model_fits_data

    spec = zoo.load_spec(write_spec(
        "model:\n  inputs: {image: [8, 8, 5]}\n  layers:\n    - flatten\n"
        "    - dense: {units: 10}\n"))
    with pytest.raises(zoo.SpecError) as caught:
        check_model_fits_data(spec, zoo.build_model(spec), DataInfo("digits", (8, 8, 1), DIGITS))
    assert str(caught.value) == (
        "spec.yaml:2:19: model.inputs.image: dataset 'digits' yields images of shape [8, 8, 1], "
        "which are resized and converted to the model's input: it must be [height, width, "
        "channels] with 1 or 3 channels, received [8, 8, 5]")


def _damage(version: Path, target: Path, how) -> str:
    shutil.copytree(version, target)
    how(target)
    return str(target.relative_to(target.parent.parent))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


DAMAGES = {
    "not a SavedModel": (
        lambda d: [p.unlink() for p in d.glob("*.pb")],
        "bad/export: not a SavedModel (no saved_model.pb); give an export version such as "
        "exports/lenet/1, the spec's folder (exports/lenet) for its newest version, or a "
        "model.onnx or model.tflite file in a version"),
    "variables deleted": (
        lambda d: (d / "variables" / "variables.data-00000-of-00001").unlink(),
        "bad/export: the SavedModel cannot be loaded, it is damaged or incomplete (copy it "
        "again, or train again): bad/export/variables/variables.data-00000-of-00001; No such "
        "file or directory"),
    "variables truncated": (
        lambda d: _truncate(d / "variables" / "variables.data-00000-of-00001"),
        "bad/export: the SavedModel cannot be loaded, it is damaged or incomplete (copy it "
        "again, or train again): Read less bytes than requested"),
    "variables index truncated": (
        lambda d: _truncate(d / "variables" / "variables.index"),
        "bad/export: the SavedModel cannot be loaded, it is damaged or incomplete (copy it "
        "again, or train again): not an sstable (bad magic number)"),
    "metadata without the input": (
        lambda d: (d / "metadata.json").write_text("{}"),
        "bad/export: metadata.json has no 'input' entry holding name, shape; was this written "
        "by train.py?"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_export_is_a_clear_error(two_runs, tmp_path, monkeypatch, damage):
    import zoo
    from zoo.evaluation import evaluate_export

    how, message = DAMAGES[damage]
    monkeypatch.chdir(tmp_path)
    damaged = _damage(two_runs[0] / "exports" / "tiny" / "1", tmp_path / "bad" / "export", how)
    with pytest.raises(zoo.SpecError) as caught:
        evaluate_export(damaged)
    assert str(caught.value) == message


def test_evaluate_py_refuses_a_truncated_saved_model_with_exit_2(two_runs, tmp_path):
    damaged = _damage(two_runs[0] / "exports" / "tiny" / "1", tmp_path / "bad" / "export",
                      lambda d: _truncate(d / "saved_model.pb"))
    result = run("evaluate.py", damaged, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: bad/export: the SavedModel cannot be loaded, it is damaged or incomplete (copy it "
        "again, or train again): ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_an_export_given_images_of_another_shape_is_a_clear_error(two_runs, tmp_path,
                                                                  monkeypatch):
    import zoo
    from zoo.evaluation import evaluate_export

    monkeypatch.chdir(tmp_path)
    _photos(Path("photos"))
    with pytest.raises(zoo.SpecError) as caught:
        evaluate_export(str(two_runs[0] / "exports" / "tiny" / "1"), "photos", "all")
    assert str(caught.value) == ("--dataset: dataset 'photos' yields images of shape "
                                 "[None, None, 3] but the export takes [8, 8, 1]")


# --- a full disk while exporting -------------------------------------------------------------


@contextmanager
def file_size_limit(directory):
    """fill() makes writes past a few kilobytes fail with EFBIG, as a full disk fails with
    ENOSPC (RLIMIT_FSIZE: needs no root)."""
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a kill

    def fill():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, previous_limit[1]))
    try:
        yield fill
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)


@contextmanager
def small_tmpfs(directory):
    """A real full disk (ENOSPC): a 1 MB tmpfs on `directory` (root only) that fill() fills."""
    directory.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the file size limit case covers the rest")

    def fill():
        with open(directory / "filler", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(bytes(4096))
            except OSError:  # ENOSPC: the disk is full
                pass
    try:
        yield fill
    finally:
        subprocess.run(["umount", "--lazy", str(directory)], check=True)


def _tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        digest.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("full_disk", [file_size_limit, small_tmpfs])
def test_a_full_disk_during_export_keeps_earlier_versions_and_publishes_nothing(
        write_spec, tmp_path, full_disk):
    import zoo
    from zoo.data import DataInfo
    from zoo.export import export
    from zoo.files import RunFailure

    spec = zoo.load_spec(write_spec(TINY, "tiny.yaml"))
    model = zoo.build_model(spec)
    output = tmp_path / "disk"
    arguments = dict(history={}, metrics={}, dataset={"name": "digits"})
    info = DataInfo("digits", (8, 8, 1), DIGITS)
    with full_disk(output) as fill:
        first = Path(export(spec, model, info, str(output), **arguments))
        before = _tree_digest(first)
        fill()
        with pytest.raises(RunFailure) as caught:
            export(spec, model, info, str(output), **arguments)
        assert os.listdir(output / "tiny") == ["1"]
        assert _tree_digest(first) == before
    assert str(caught.value).startswith(f"could not write the export into {output}/tiny: ")
    assert str(caught.value).endswith(
        ". No version was published and earlier ones are untouched; the trained weights stay in "
        "the checkpoint, so the same command, run again once there is room, exports without "
        "training again")
