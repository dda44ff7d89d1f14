"""Experiment tracking: a run's spec, every epoch's figures, its export and final metrics in
MLflow (`zoo train --track mlflow`, `zoo.train(..., track="mlflow")`).

    zoo train specs/lenet.yaml --set data.dataset=mnist_subset --track mlflow
    mlflow ui --backend-store-uri sqlite:///mlflow.db      # then http://127.0.0.1:5000

The store is `--track-uri`, else $MLFLOW_TRACKING_URI, else `sqlite:///mlflow.db` in the
current folder (MLflow 3's own default: its `./mlruns` file store refuses new runs unless
MLFLOW_ALLOW_FILE_STORE=true), with the artifacts in `./mlruns/`. The experiment is the
spec's name. Parameters are the resolved spec flattened to dotted keys
(`train.optimizer.sgd.learning_rate`); metrics are each epoch's figures at step = epoch,
named `phase/key` when the run has phases other than `train` (`stage-1/loss`,
`pretrain-1-dense/loss`); `final/<key>` are the figures the export was evaluated with.

Only the chief tracks. The run's id is kept beside its checkpoints, so a killed run resumed
by the same command (the same resolved spec) continues the same MLflow run; an epoch already
logged is never logged twice, and one checkpointed but not logged (a kill in between) is
logged at the end. A run that fails ends FAILED, one stopped by Ctrl-C ends KILLED. mlflow
is imported only here, only when asked for (it takes a second or more to import).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time

from zoo.files import write_json_atomically
from zoo.source import SpecError, plain

TRACKERS = ("mlflow",)
DEFAULT_URI = "sqlite:///mlflow.db"
RUN_FILE = "mlflow-run.json"  # in the run's checkpoint folder: the MLflow run to continue
TRUNCATED = " ...[truncated]"
SHOWN_ARTIFACTS = ("training.png", "metadata.json", "spec.yaml")  # also at the run's top


def check_tracker(name: str | None, uri: str | None = None) -> None:
    """Fail before any training if the tracker is unknown or not installed."""
    if name is None:
        if uri:
            raise SpecError(None, "--track-uri", "a tracking store is given but no tracker; "
                                                 "add --track mlflow")
        return
    if name not in TRACKERS:
        raise SpecError(None, "track", f"unknown tracker '{name}'; choose one of "
                                       f"{', '.join(TRACKERS)}")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise SpecError(None, "--track", "tracking with mlflow needs the mlflow package, which "
                                         "is not installed: pip install keras-zoo[track]"
                        ) from None


def tracking_uri(uri: str | None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def flatten(value, prefix: str = "") -> dict:
    """A nested mapping as {dotted.key: text}; lists and scalars are values (JSON text)."""
    if isinstance(value, dict) and value:
        flat = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value if isinstance(value, str) else json.dumps(value, default=str)}


def fit(text: str, limit: int) -> str:
    """`text` cut to MLflow's `limit`, saying so at its end."""
    return text if len(text) <= limit else text[:limit - len(TRUNCATED)] + TRUNCATED


class MlflowRun:
    """One run of a spec in MLflow, as a context manager around training and export:
    `epoch` is the run's `on_epoch`; `finish` logs the export and the final figures."""

    def __init__(self, spec, phases: list, checkpoints: str, dataset: str, fingerprint: str, *,
                 uri: str | None = None, tags: dict | None = None, log=print):
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # their INFO lines (creating the database ...)
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri = tracking_uri(uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.spec, self.dataset, self.fingerprint, self.log = spec, dataset, fingerprint, log
        self.prefixed = list(phases) != ["train"]
        self.run_file = os.path.join(checkpoints, RUN_FILE)
        self.tags = {"zoo.spec": spec.name, "zoo.spec_file": str(spec.file or ""),
                     "zoo.dataset": dataset, "zoo.command": shlex.join(sys.argv),
                     **(tags or {})}
        self.run_id = None
        self.logged: dict = {}  # phase -> the epochs the run holds

    def __enter__(self):
        from mlflow.exceptions import MlflowException

        run_id = self._kept_run_id()
        if run_id:
            try:
                self.client.update_run(run_id, status="RUNNING")
                self.run_id = run_id
                self.log(f"mlflow: continuing run {run_id} in {self.uri}")
                return self
            except MlflowException:  # deleted since, or another store
                pass
        experiment = self.client.get_experiment_by_name(self.spec.name)
        experiment_id = (experiment.experiment_id if experiment else
                         self.client.create_experiment(self.spec.name))
        run = self.client.create_run(experiment_id, tags=self.tags,
                                     run_name=f"{self.spec.name} on {self.dataset}")
        self.run_id = run.info.run_id
        os.makedirs(os.path.dirname(self.run_file), exist_ok=True)
        write_json_atomically(self.run_file, {"run_id": self.run_id, "uri": self.uri,
                                              "fingerprint": self.fingerprint})
        self._log_params()
        self.log(f"mlflow: run {self.run_id} in experiment '{self.spec.name}' of {self.uri}")
        return self

    def __exit__(self, kind, exc, traceback):
        if kind is None:
            status = "FINISHED"
        else:
            status = "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"
        self.client.set_terminated(self.run_id, status=status)
        return False

    def _kept_run_id(self) -> str | None:
        try:
            with open(self.run_file) as handle:
                kept = json.load(handle)
        except (OSError, ValueError):
            return None
        # A run killed before its first checkpoint leaves no state to refuse a changed spec:
        # a changed spec (its parameters) is a new MLflow run.
        same = kept.get("uri") == self.uri and kept.get("fingerprint") == self.fingerprint
        return kept.get("run_id") if same else None

    def _log_params(self) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import (MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH,
                                             MAX_PARAMS_TAGS_PER_BATCH)

        params = []
        for key, value in flatten(plain(self.spec.document)).items():
            if len(value) > MAX_PARAM_VAL_LENGTH:
                self.log(f"mlflow: parameter {key} cut to {MAX_PARAM_VAL_LENGTH:,} of its "
                         f"{len(value):,} characters (the whole spec is the artifact "
                         "spec.yaml)")
            params.append(Param(fit(key, MAX_ENTITY_KEY_LENGTH), fit(value, MAX_PARAM_VAL_LENGTH)))
        for start in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[start:start
                                                             + MAX_PARAMS_TAGS_PER_BATCH])

    def key(self, phase: str, name: str) -> str:
        return f"{phase}/{name}" if self.prefixed else name

    def _logged_epochs(self, phase: str) -> set:
        if phase not in self.logged:
            history = self.client.get_metric_history(self.run_id, self.key(phase, "loss"))
            self.logged[phase] = {metric.step for metric in history}
        return self.logged[phase]

    def _log_metrics(self, figures: dict, step: int, phase: str | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(self.key(phase, name) if phase else name, float(value), now, step)
            for name, value in figures.items()])

    def epoch(self, phase: str, number: int, metrics: dict) -> None:
        """Log one epoch of `phase` (the run's `on_epoch`), unless the run holds it already."""
        logged = self._logged_epochs(phase)
        if number not in logged:
            self._log_metrics(metrics, number, phase)
            logged.add(number)

    def finish(self, export: str, final: dict, histories: dict) -> None:
        """The epochs checkpointed but never logged (a kill in between), the final figures,
        and the export as artifacts."""
        for phase, epochs in histories.items():
            for number, metrics in enumerate(epochs, start=1):
                self.epoch(phase, number, metrics)
        self._log_metrics({f"final/{name}": value for name, value in final.items()},
                          sum(len(epochs) for epochs in histories.values()))
        self.client.set_tag(self.run_id, "zoo.export", os.path.abspath(export))
        self.client.log_artifacts(self.run_id, export, "export")
        for name in SHOWN_ARTIFACTS:
            if os.path.exists(os.path.join(export, name)):
                self.client.log_artifact(self.run_id, os.path.join(export, name))
        self.log(f"mlflow: logged the export and its metrics to run {self.run_id}")
