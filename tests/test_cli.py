"""train.py as a user runs it: a layer table for a good spec, one message and exit 2 for a bad
one."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def run_train(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_dry_run_prints_layer_table_and_counts():
    result = run_train("specs/lenet.yaml", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "lenet (specs/lenet.yaml)"
    assert any(line.split() == ["conv1", "Conv2D", "(28,", "28,", "6)", "156", "117,600"]
               for line in lines)
    assert "Total params: 61,706   Trainable: 61,706   Non-trainable: 0" in lines
    assert result.stderr == ""  # TensorFlow's start-up noise is hidden


def test_dry_run_with_set_override():
    # `expect` describes the model the files define: a --set of the model's vars builds
    # another one (ResNet-56), which is not held to ResNet-20's counts
    result = run_train("specs/resnet20.yaml", "--dry-run", "--set", "model.vars.n=9")
    assert result.returncode == 0, result.stderr
    assert "Trainable: 853,018" in result.stdout
    assert result.stdout.splitlines()[-1] == ("expect: not checked (it describes the model the "
                                              "files define; --set changed it)")
    assert result.stderr == ""


def test_expect_that_does_not_hold_fails_the_dry_run(write_spec):
    spec = write_spec("extends: " + str(ROOT / "specs" / "resnet20.yaml") + "\n"
                      "model: {vars: {n: 9}}\n")
    result = run_train(spec, "--dry-run", cwd=Path(spec).resolve().parent)
    assert result.returncode == 2
    assert result.stderr == ("expect mismatch: " + str(ROOT / "specs" / "resnet20.yaml") +
                             ":6:28: expect.trainable_params: expected 269,722, the model has "
                             "853,018\n"
                             "expect mismatch: " + str(ROOT / "specs" / "resnet20.yaml") +
                             ":6:50: expect.total_params: expected 271,098, the model has "
                             "857,082\n")


def test_bad_spec_prints_one_message_and_exits_2(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "model:\n  inputs: {image: [28, 28, 1]}\n  layers:\n"
        "    - dense: {units: 10, activaton: relu}\n")
    result = run_train("bad.yaml", "--dry-run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == ("error: bad.yaml:4:26: model.layers[0].dense.activaton: layer "
                             "'dense': "
                             "Dense has no argument 'activaton' (did you mean 'activation'?)\n")


def test_missing_spec_file_exits_2(tmp_path):
    result = run_train("nowhere.yaml", "--dry-run", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, "error: nowhere.yaml: no such spec file\n")


def test_bad_arguments_exit_2():
    result = run_train("--no-such-flag")
    assert result.returncode == 2 and "usage: train.py" in result.stderr


def test_ctrl_c_says_what_the_interrupted_command_leaves(capsys):
    """Only train and sweep keep a checkpoint to resume from; convert leaves the export as it
    was (its files are written beside it under temporary names, tests/test_conversion.py)."""
    from zoo.cli import INTERRUPTED, _run

    def interrupted():
        raise KeyboardInterrupt

    said = {}
    for command in ("train", "convert", "predict", "evaluate"):
        assert _run(interrupted, False, INTERRUPTED.get(command)) == 130
        said[command] = capsys.readouterr().err
    assert said == {
        "train": "interrupted: the last checkpoint is kept; run the same command again to "
                 "resume from it\n",
        "convert": "interrupted: no file was left half-written and the export is as it was; "
                   "the formats converted before the interruption are kept\n",
        "predict": "interrupted: the pictures written before the interruption are whole, none "
                   "is half-written\n",
        "evaluate": "interrupted\n"}
