"""`zoo train --track mlflow`: what a run logs to MLflow, read back with MLflow's own client
from a store in a temporary folder."""

import json
import signal
import sys

import pytest

import zoo

from conftest import ROOT, TINY, kill_after_epochs, run

mlflow = pytest.importorskip("mlflow")


def store(folder) -> str:
    return f"sqlite:///{folder}/mlflow.db"


def runs_of(uri: str, experiment: str) -> list:
    client = mlflow.tracking.MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def steps(uri: str, run_id: str, key: str) -> list:
    history = mlflow.tracking.MlflowClient(uri).get_metric_history(run_id, key)
    return sorted(metric.step for metric in history)


def artifacts(uri: str, run_id: str, folder: str | None = None) -> list:
    client = mlflow.tracking.MlflowClient(uri)
    return sorted(entry.path for entry in client.list_artifacts(run_id, folder))


def test_a_tracked_run_logs_its_spec_epochs_export_and_final_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the store's artifacts go to ./mlruns
    lines = []
    long_description = "a" * 7000
    result = zoo.train(f"description: {long_description}\n{TINY}", output="out",
                       log=lines.append, track="mlflow", track_uri=store(tmp_path),
                       tags={"zoo.command": "a notebook"},
                       overrides=["train.epochs=2", "train.steps_per_epoch=5"])
    (run_,) = runs_of(store(tmp_path), "spec")
    run_id = run_.info.run_id
    assert run_.info.status == "FINISHED" and run_.info.run_name == "spec on digits"
    params = run_.data.params
    assert params["train.optimizer.adam.learning_rate"] == "0.01"
    assert params["train.epochs"] == "2" and params["model.vars.classes"] == "10"
    assert params["model.inputs.image"] == "[8, 8, 1]"
    assert params["data.dataset"] == "digits"
    assert len(params["description"]) == 6000
    assert params["description"].endswith(" ...[truncated]")
    assert ("mlflow: parameter description cut to 6,000 of its 7,000 characters (the whole "
            "spec is the artifact spec.yaml)") in lines
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert steps(store(tmp_path), run_id, key) == [1, 2], key
    assert run_.data.metrics["val_loss"] == pytest.approx(result.history["train"][-1]["val_loss"])
    assert run_.data.metrics["final/accuracy"] == pytest.approx(result.metrics["accuracy"])
    tags = run_.data.tags
    assert (tags["zoo.spec"], tags["zoo.dataset"], tags["zoo.command"]) == (
        "spec", "digits", "a notebook")
    assert tags["zoo.export"] == str(tmp_path / "out" / "spec" / "1")
    assert artifacts(store(tmp_path), run_id) == ["export", "metadata.json", "spec.yaml",
                                                  "training.png"]
    exported = sorted(f"export/{path.name}" for path in (tmp_path / "out" / "spec" / "1").iterdir())
    assert artifacts(store(tmp_path), run_id, "export") == exported
    assert "export/saved_model.pb" in exported


class Interrupted(Exception):
    pass


def test_phases_are_kept_apart_each_epoch_is_logged_once_and_a_run_id_is_continued(tmp_path):
    from zoo.tracking import MlflowRun

    spec = zoo.spec_from_text(TINY)
    checkpoints, export = tmp_path / "checkpoint", tmp_path / "export"
    export.mkdir()
    (export / "training.png").write_bytes(b"png")
    first = {"loss": 1.0, "val_loss": 1.5}
    second = {"loss": 0.5, "val_loss": 0.7}

    def tracked(fingerprint="spec"):
        return MlflowRun(spec, ["stage-1", "stage-2"], str(checkpoints), "digits", fingerprint,
                         uri=store(tmp_path), log=lambda _: None)

    with pytest.raises(Interrupted), tracked() as tracker:
        tracker.epoch("stage-1", 1, first)
        tracker.epoch("stage-1", 1, first)  # a second time: not logged again
        raise Interrupted
    (failed,) = runs_of(store(tmp_path), "spec")
    assert failed.info.status == "FAILED"
    with pytest.raises(KeyboardInterrupt), tracked() as tracker:
        assert tracker.run_id == failed.info.run_id
        raise KeyboardInterrupt
    assert runs_of(store(tmp_path), "spec")[0].info.status == "KILLED"
    with tracked() as tracker:
        tracker.epoch("stage-2", 1, first)
        # stage-1's epoch 2 was checkpointed and never logged (a kill in between): finish
        # logs it from the history
        tracker.finish(str(export), {"loss": 0.7}, {"stage-1": [first, second],
                                                    "stage-2": [first]})
    (finished,) = runs_of(store(tmp_path), "spec")
    assert finished.info.status == "FINISHED"
    assert {key: steps(store(tmp_path), finished.info.run_id, key)
            for key in finished.data.metrics} == {
        "stage-1/loss": [1, 2], "stage-1/val_loss": [1, 2], "stage-2/loss": [1],
        "stage-2/val_loss": [1], "final/loss": [3]}
    assert artifacts(store(tmp_path), finished.info.run_id) == ["export", "training.png"]
    with tracked("another spec") as tracker:  # a changed spec, killed before its checkpoint
        assert tracker.run_id != finished.info.run_id


@pytest.mark.slow
def test_a_killed_tracked_run_resumes_into_the_same_mlflow_run(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    command = [sys.executable, str(ROOT / "train.py"), "tiny.yaml", "--output", "exports",
               "--track", "mlflow", "--track-uri", store(tmp_path),
               "--set", "train.epochs=6", "--set", "train.batch_size=8"]
    state = tmp_path / "exports" / "tiny" / "checkpoint" / "train" / "state.json"
    done, code, _ = kill_after_epochs(command, tmp_path, state, epochs=2)
    assert code == -signal.SIGKILL and 2 <= done < 6
    (killed,) = runs_of(store(tmp_path), "tiny")
    assert killed.info.status == "RUNNING"  # killed -9: nothing could end it
    kept = json.loads((state.parent.parent / "mlflow-run.json").read_text())
    assert (kept["run_id"], kept["uri"]) == (killed.info.run_id, store(tmp_path))

    resumed = run(*command[1:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"mlflow: continuing run {killed.info.run_id} in {store(tmp_path)}" in resumed.stdout
    (finished,) = runs_of(store(tmp_path), "tiny")
    assert finished.info.run_id == killed.info.run_id and finished.info.status == "FINISHED"
    for key in ("loss", "val_accuracy"):
        assert steps(store(tmp_path), finished.info.run_id, key) == [1, 2, 3, 4, 5, 6]
    assert finished.data.tags["zoo.command"] == "python train.py " + " ".join(command[2:])


def test_tracking_needs_a_known_tracker_and_mlflow(tmp_path, monkeypatch):
    from zoo.tracking import check_tracker

    (tmp_path / "tiny.yaml").write_text(TINY)
    result = run("train.py", "tiny.yaml", "--track", "wandb", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == ("train.py: error: argument --track: invalid "
                                              "choice: 'wandb' (choose from 'mlflow')")
    with pytest.raises(zoo.SpecError) as error:
        check_tracker(None, "sqlite:///runs.db")
    assert str(error.value) == ("--track-uri: a tracking store is given but no tracker; add "
                                "--track mlflow")
    with pytest.raises(zoo.SpecError) as error:
        check_tracker("wandb")
    assert str(error.value) == "track: unknown tracker 'wandb'; choose one of mlflow"
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    with pytest.raises(zoo.SpecError) as error:
        check_tracker("mlflow")
    assert str(error.value) == ("--track: tracking with mlflow needs the mlflow package, which "
                                "is not installed: pip install keras-zoo[track]")
