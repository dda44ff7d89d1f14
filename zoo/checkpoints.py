"""The state of one training phase on disk, so an interrupted run resumes where it stopped.

`OUTPUT/<spec name>/checkpoint/<phase>/` holds a TensorFlow checkpoint after
every epoch, the history and loop state (`state.json`, replaced atomically)
with the fingerprint of the resolved spec the run was started with, and, once
the phase is done, the weights it ended with. Re-running the same command
resumes; a changed spec refuses to resume rather than mixing two runs. The
caller removes the checkpoints once the run's export is complete.

Under MultiWorkerMirroredStrategy every worker must take part in saving; only
the chief writes into the directory, the others into a scratch directory that
is thrown away (the pattern in TensorFlow's multi-worker guide).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager

import tensorflow as tf

from zoo.files import atomic_path, write_failure, write_json_atomically
from zoo.source import SpecError


@contextmanager
def one_run_at_a_time(checkpoints: str, log):
    """Lock the spec's export folder, which holds the checkpoint directory: a second run of
    the same spec into the same output waits for the first (which exports, then removes the
    checkpoints) instead of both writing one checkpoint. The folder itself is never removed;
    the kernel releases the lock of a run that dies."""
    descriptor = os.open(os.path.dirname(checkpoints.rstrip(os.sep)), os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another run is using {checkpoints} (the same spec into the same output); "
                "waiting for it to finish")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def spec_fingerprint(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


class RunState:
    """Checkpoint, history and loop state of one run; `chief` decides who writes where."""

    def __init__(self, directory: str, fingerprint: str, chief: bool = True):
        self.directory = directory
        self.chief = chief
        self.fingerprint = fingerprint
        self.history: list = []
        self.extra: dict = {}
        self._checkpoint = None
        self._manager = None
        self._scratch = None
        self._check_fingerprint()

    def _check_fingerprint(self) -> None:
        state_file = os.path.join(self.directory, "state.json")
        if not os.path.exists(state_file):
            return
        with open(state_file) as handle:
            saved = json.load(handle)
        if saved.get("fingerprint") != self.fingerprint:
            raise SpecError(None, "", f"{self.directory} holds an unfinished run of a different "
                                      "version of this spec (it changed since, or other --set "
                                      "values were given); re-run with the same spec and "
                                      "options to resume it, or add --restart to discard it")
        self.history = saved.get("history", [])
        self.extra = saved.get("extra", {})

    def _writable_directory(self) -> str:
        if self.chief:
            return self.directory
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="zoo-worker-checkpoint-")
        return self._scratch

    def _track(self, model, optimizer) -> None:
        if self._checkpoint is None:
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                                   epoch=self._epoch)
            self._manager = tf.train.CheckpointManager(self._checkpoint,
                                                       self._writable_directory(), max_to_keep=2)

    def restore(self, model, optimizer) -> int:
        """Restore the latest checkpoint into model and optimizer; the epochs already done."""
        self._track(model, optimizer)
        kept = tf.train.get_checkpoint_state(self.directory)
        if kept is None:
            self.history, self.extra = [], {}
            return 0
        paths = list(kept.all_model_checkpoint_paths)  # oldest first
        done = self._restore(paths[-1])
        if len(self.history) < done and len(paths) > 1:
            # Killed between a checkpoint and the state.json written after it: the checkpoint
            # before has its history and loop state on disk.
            done = self._restore(paths[-2])
        self.history = self.history[:done]
        return done

    def _restore(self, path: str) -> int:
        self._checkpoint.restore(path).assert_existing_objects_matched()
        return int(self._epoch.numpy())

    def save(self, model, optimizer, epochs_done: int) -> None:
        self._track(model, optimizer)
        self._epoch.assign(epochs_done)
        try:
            os.makedirs(self._writable_directory(), exist_ok=True)
            self._manager.save(checkpoint_number=epochs_done)
            if self.chief:  # the checkpoint first, then the state that points past it
                write_json_atomically(os.path.join(self.directory, "state.json"), {
                    "fingerprint": self.fingerprint, "history": self.history,
                    "extra": self.extra})
        except (OSError, tf.errors.OpError) as exc:  # a full disk shows up as either
            raise write_failure(f"the checkpoint of epoch {epochs_done} into {self.directory}",
                                exc, "Checkpoints of earlier epochs are kept: the same "
                                "command, run again once there is room, resumes after the last "
                                "of them") from None

    @property
    def final_weights(self) -> str:
        return os.path.join(self.directory, "final.weights.h5")

    def complete(self, model) -> None:
        """Record that this phase is done, with the weights it ended with."""
        self.extra["complete"] = True
        if self.chief:
            with atomic_path(self.final_weights, suffix=".weights.h5") as partial:
                model.save_weights(partial)
            write_json_atomically(os.path.join(self.directory, "state.json"), {
                "fingerprint": self.fingerprint, "history": self.history, "extra": self.extra})
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    @property
    def is_complete(self) -> bool:
        return bool(self.extra.get("complete")) and os.path.exists(self.final_weights)
