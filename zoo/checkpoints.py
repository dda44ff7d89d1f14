"""The state of one training phase on disk, so an interrupted run resumes where it stopped.

`OUTPUT/<spec name>/checkpoint/<phase>/` holds a TensorFlow checkpoint after
every epoch (and every `train.checkpoint_every` steps within one), the history
and loop state (`state.json`, replaced atomically; within an epoch, also the
epoch's running totals) with the fingerprint of the resolved spec the run was
started with, and, once the phase is done, the weights it ended with.
Re-running the same command resumes; a changed spec refuses to resume rather
than mixing two runs. The caller removes the checkpoints once the run's export
is complete.

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
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import tensorflow as tf

from zoo.files import atomic_path, write_failure, write_json_atomically
from zoo.source import SpecError, dotted_parts


@contextmanager
def one_run_at_a_time(checkpoints: str, log, busy: str | None = None):
    """Lock the spec's export folder, which holds the checkpoint directory: a second run of
    the same spec into the same output waits for the first (which exports, then removes the
    checkpoints) instead of both writing one checkpoint. The folder itself is never removed;
    the kernel releases the lock of a run that dies. `busy` is what to say while waiting (a
    sweep locks its folder the same way); the lock's descriptor is given to the block, for
    worker processes to inherit (the lock then lasts as long as the last of them)."""
    descriptor = os.open(os.path.dirname(checkpoints.rstrip(os.sep)), os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(busy or f"another run is using {checkpoints} (the same spec into the same "
                        "output); waiting for it to finish")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield descriptor
    finally:
        os.close(descriptor)


def spec_fingerprint(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


DIVERGED = "diverged.json"  # in the run's checkpoint folder: the key a divergence blames


def note_divergence(checkpoints: str, key: str, document: dict) -> None:
    """Remember that the run diverged at the rate `key` sets, with the fingerprint of the
    rest of the spec, so the same command with that one key changed may resume (a changed spec
    otherwise refuses to). Nothing is written when there is nothing to resume from."""
    if os.path.isdir(checkpoints) and os.listdir(checkpoints):
        write_json_atomically(os.path.join(checkpoints, DIVERGED), {
            "key": key, "rest": spec_fingerprint(_without(document, key))})


def adopt_lowered_rate(checkpoints: str, document: dict, fingerprint: str) -> str | None:
    """After a divergence, a spec that differs only in the key blamed takes the run over:
    each phase's state gets the new fingerprint and restores the new rate over the old one.
    Returns the key when it does."""
    note = os.path.join(checkpoints, DIVERGED)
    if not os.path.exists(note):
        return None
    with open(note) as handle:
        diverged = json.load(handle)
    if spec_fingerprint(_without(document, diverged["key"])) != diverged["rest"]:
        return None  # more than the rate changed: resuming is refused as for any change
    for phase in sorted(os.listdir(checkpoints)):
        state_file = os.path.join(checkpoints, phase, "state.json")
        if os.path.exists(state_file):
            with open(state_file) as handle:
                state = json.load(handle)
            state["fingerprint"] = fingerprint
            state.setdefault("extra", {})["rate_changed"] = True
            write_json_atomically(state_file, state)
    os.remove(note)
    return diverged["key"]


def _without(document: dict, dotted: str) -> dict:
    """A copy of a plain document without the value at a dotted path (train.stages[1].x)."""
    document = json.loads(json.dumps(document, default=str))
    *parents, last = dotted_parts(dotted)
    container = document
    for part in parents:
        try:
            container = container[part]
        except (KeyError, IndexError, TypeError):
            return document
    if isinstance(container, dict):
        container.pop(last, None)
    return document


@dataclass(frozen=True)
class Position:
    """Where a phase's training stands: the epochs done, and the steps done into the next."""

    epochs: int
    steps: int = 0


class RunState:
    """Checkpoint, history and loop state of one run; `chief` decides who writes where."""

    def __init__(self, directory: str, fingerprint: str, chief: bool = True):
        self.directory = directory
        self.chief = chief
        self.fingerprint = fingerprint
        self.history: list = []
        self.extra: dict = {}
        self.partial: dict = {}  # within an epoch: its position and running totals
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
        self.partial = saved.get("partial", {})

    def _writable_directory(self) -> str:
        if self.chief:
            return self.directory
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="zoo-worker-checkpoint-")
        return self._scratch

    def _track(self, model, optimizer) -> None:
        if self._checkpoint is None:
            self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
            self._checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                                   epoch=self._epoch, step=self._step)
            self._manager = tf.train.CheckpointManager(self._checkpoint,
                                                       self._writable_directory(), max_to_keep=2)

    def restore(self, model, optimizer) -> Position:
        """Restore the latest checkpoint into model and optimizer; where it stands."""
        self._track(model, optimizer)
        kept = tf.train.get_checkpoint_state(self.directory)
        if kept is None:
            self.history, self.extra, self.partial = [], {}, {}
            return Position(0)
        # Newest first, the first that state.json describes: a kill between a checkpoint and
        # the state.json written after it leaves the state of the checkpoint before.
        for path in reversed(kept.all_model_checkpoint_paths):
            self._checkpoint.restore(path).assert_existing_objects_matched()
            position = Position(int(self._epoch.numpy()), int(self._step.numpy()))
            described = self._describes(position)
            if described:
                break
        self.history = self.history[:position.epochs]
        if not position.steps or not described:
            self.partial = {}  # the running totals then start again with the steps left
        return position

    def _describes(self, position: Position) -> bool:
        """Whether the loop state read from state.json belongs to a checkpoint at `position`."""
        return len(self.history) >= position.epochs and (
            not position.steps or self.partial.get("position") == [position.epochs,
                                                                   position.steps])

    @property
    def partial_totals(self) -> dict:
        """The running totals of the epoch a mid-epoch checkpoint stopped in."""
        return dict(self.partial.get("totals", {}))

    def save(self, model, optimizer, position: Position, steps_per_epoch: int,
             totals: dict | None = None) -> None:
        """A checkpoint at `position`; within an epoch, `totals` are its running totals."""
        self._track(model, optimizer)
        self._epoch.assign(position.epochs)
        self._step.assign(position.steps)
        self.partial = {"position": [position.epochs, position.steps],
                        "totals": totals or {}} if position.steps else {}
        where = (f"epoch {position.epochs + 1}, step {position.steps}" if position.steps
                 else f"epoch {position.epochs}")
        try:
            os.makedirs(self._writable_directory(), exist_ok=True)
            self._manager.save(checkpoint_number=position.epochs * steps_per_epoch
                               + position.steps)
            if self.chief:  # the checkpoint first, then the state that points past it
                self._write_state()
        except (OSError, tf.errors.OpError) as exc:  # a full disk shows up as either
            raise write_failure(f"the checkpoint of {where} into {self.directory}",
                                exc, "Earlier checkpoints are kept: the same command, run "
                                "again once there is room, resumes after the last of "
                                "them") from None

    def drop(self, position: Position, steps_per_epoch: int) -> bool:
        """Delete the checkpoint at `position` (its weights gave the next step a NaN loss);
        whether an older one remains to resume from. Without one, the phase's folder goes,
        and the run's checkpoint folder too if nothing else is in it."""
        kept = tf.train.get_checkpoint_state(self.directory)
        number = f"-{position.epochs * steps_per_epoch + position.steps}"
        older = [path for path in (kept.all_model_checkpoint_paths if kept else [])
                 if not path.endswith(number)]
        if not self.chief:
            return bool(older)
        if not older:
            shutil.rmtree(self.directory, ignore_errors=True)
            with suppress(OSError):  # other phases' checkpoints are in it
                os.rmdir(os.path.dirname(self.directory))
            return False
        for file in tf.io.gfile.glob(os.path.join(self.directory, f"ckpt{number}.*")):
            tf.io.gfile.remove(file)
        tf.compat.v1.train.update_checkpoint_state(self.directory, older[-1], older)
        return True

    def _write_state(self) -> None:
        write_json_atomically(os.path.join(self.directory, "state.json"), {
            "fingerprint": self.fingerprint, "history": self.history, "extra": self.extra,
            "partial": self.partial})

    @property
    def best_weights(self) -> str:
        return os.path.join(self._writable_directory(), "best.weights.h5")

    def save_best(self, model) -> None:
        """Keep the model's weights, the best so far (every worker keeps its own copy, so all
        of them can take it back and stay in step)."""
        os.makedirs(self._writable_directory(), exist_ok=True)
        with atomic_path(self.best_weights, suffix=".weights.h5") as partial:
            model.save_weights(partial)

    def restore_best(self, model) -> bool:
        """Put the kept best weights back into `model`; whether there were any."""
        if not os.path.exists(self.best_weights):
            return False
        model.load_weights(self.best_weights)
        return True

    @property
    def final_weights(self) -> str:
        return os.path.join(self.directory, "final.weights.h5")

    def complete(self, model) -> None:
        """Record that this phase is done, with the weights it ended with."""
        self.extra["complete"] = True
        if self.chief:
            with atomic_path(self.final_weights, suffix=".weights.h5") as partial:
                model.save_weights(partial)
            self._write_state()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    @property
    def is_complete(self) -> bool:
        return bool(self.extra.get("complete")) and os.path.exists(self.final_weights)
