"""Shared helpers: the repository root, and writing small specs into a temporary folder."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The precision probe's figures (zoo.precision) are remembered for this test session only:
# the tests neither read nor change the user's cache.
os.environ["ZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-test-cache-")

# A classifier of the embedded 8x8 digits small enough to train in seconds.
TINY = """\
model:
  vars: {classes: 10}
  inputs: {image: [8, 8, 1]}
  layers:
    - flatten
    - dense: {units: 32, activation: relu}
    - dense: {units: "${classes}", activation: softmax, name: predictions}
data:
  dataset: digits
  preprocess: {rescale: 0.00392156862745098}
train:
  batch_size: 32
  epochs: 3
  optimizer: {adam: {learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy
  seed: 1
"""


def run(script, *args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def zoo_command(*args, cwd, timeout=300):
    """`zoo ARGS...` run in `cwd`, with this checkout's zoo."""
    return subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture
def write_spec(tmp_path, monkeypatch):
    """write_spec(text, name="spec.yaml") -> relative path of a new spec file.

    The test runs inside tmp_path, so error messages name the file as 'spec.yaml'.
    """
    monkeypatch.chdir(tmp_path)

    def write(text: str, name: str = "spec.yaml") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return name

    return write


@pytest.fixture(scope="session", autouse=True)
def tfds_data_dir(tmp_path_factory):
    """Datasets are prepared into a fresh folder: tests never download and never see ~/."""
    directory = os.environ.get("ZOO_TEST_TFDS_DIR") or str(tmp_path_factory.mktemp("tfds"))
    os.environ["TFDS_DATA_DIR"] = directory
    return directory


def kill_when(command, cwd, state_file: Path, reached, sig=signal.SIGKILL):
    """Start a training command, send it `sig` (kill -9 by default) once `reached(state)`
    holds for the run state in `state_file`; returns (the run state then, exit code,
    stderr)."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if state_file.exists() and reached(json.loads(state_file.read_text())):
            break
        time.sleep(0.05)
    os.kill(process.pid, sig)
    stdout, stderr = process.communicate(timeout=120)
    assert state_file.exists(), f"no checkpoint after the signal:\n{stdout}\n{stderr}"
    return json.loads(state_file.read_text()), process.returncode, stderr


def kill_after_epochs(command, cwd, state_file: Path, epochs: int, sig=signal.SIGKILL):
    """kill_when the run state records `epochs` epochs; returns (epochs its checkpoint holds,
    exit code, stderr)."""
    state, code, stderr = kill_when(command, cwd, state_file,
                                    lambda state: len(state["history"]) >= epochs, sig)
    return len(state["history"]), code, stderr
