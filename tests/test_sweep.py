"""`zoo sweep`: trials, the best spec that retrains, kill -9 and resume, bad --param values,
failed trials, and never the test split."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY, kill_after_epochs
from zoo import cli
from zoo.spec import load_spec

SWEEP = ["-m", "zoo", "sweep", "spec.yaml", "--output", "out", "--set", "train.epochs=2"]
STUDY = "out/spec/sweep/study.db"


def zoo(*args, timeout=300):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def states(database=STUDY) -> list:
    """Each trial's (number, state) in the SQLite study, as Optuna stores them."""
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


@pytest.fixture
def tiny(write_spec, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the zoo of this checkout, in subprocesses
    return write_spec(TINY)


def test_a_sweep_writes_its_table_plot_and_a_best_spec_that_retrains_to_its_figure(tiny):
    result = zoo(*SWEEP, "--trials", "3", "--param",
                 "train.optimizer.adam.learning_rate=loguniform:0.001:0.1",
                 "--param", "train.batch_size=choice:16,32,64")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("the spec has no data.validation_split: trials train on train[:90%] and "
                        "are measured on train[90%:]; the test split is never used by a sweep")
    assert [line.split()[:2] for line in lines[1:4]] == [["trial", "0"], ["trial", "1"],
                                                        ["trial", "2"]]
    assert lines[4].split() == ["trial", "state", "val_accuracy", "epochs",
                                "train.optimizer.adam.learning_rate", "train.batch_size"]
    assert [line.split()[1:2] + line.split()[3:4] for line in lines[5:8]] == [["complete", "2"]] * 3
    assert states() == [(number, "COMPLETE") for number in range(3)]
    folder = "out/spec/sweep"
    assert {"study.db", "trials.txt", "sweep.png", "spec_best.yaml"} <= set(os.listdir(folder))
    rows = [line.split() for line in lines[5:8]]
    best = max(rows, key=lambda row: float(row[2]))
    assert lines[8] == (f"best: trial {best[0]}, val_accuracy {best[2]}; its spec: "
                        f"{folder}/spec_best.yaml (zoo train {folder}/spec_best.yaml); the table "
                        f"and sweep.png are in {folder}")
    written = yaml.safe_load(open(f"{folder}/spec_best.yaml"))
    assert written["extends"] == "../../../spec.yaml"
    spec = load_spec(f"{folder}/spec_best.yaml")
    assert spec.name == "spec_best"
    assert f"{spec.train['optimizer']['adam']['learning_rate']:.4g}" == best[4]
    assert (spec.train["batch_size"], spec.train["epochs"]) == (int(best[5]), 2)
    assert (spec.data["train_split"], spec.data["validation_split"]) == ("train[:90%]",
                                                                         "train[90%:]")
    retrained = zoo("-m", "zoo", "train", f"{folder}/spec_best.yaml", "--output", "again")
    assert retrained.returncode == 0, retrained.stderr
    metrics = json.load(open("again/spec_best/1/metrics.json"))
    assert abs(metrics["accuracy"] - float(best[2])) < 0.02  # the same seed, the same figure


@pytest.mark.slow  # about 60 s: three sweep processes
def test_a_sweep_killed_during_a_trial_resumes_without_repeating_finished_trials(tiny):
    command = [sys.executable, *SWEEP, "--trials", "2", "--set", "train.epochs=20",
               "--param", "train.optimizer.adam.learning_rate=loguniform:0.001:0.1"]
    # killed once the second trial has checkpointed an epoch (the first one has finished)
    state = Path("out/spec/sweep/trial-1/spec/checkpoint/train/state.json")
    done, code, _ = kill_after_epochs(command, os.getcwd(), state, epochs=1)
    assert 1 <= done < 20 and code == -signal.SIGKILL
    assert states() == [(0, "COMPLETE"), (1, "RUNNING")]
    resumed = zoo(*command[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert "trial 1 was interrupted: it runs again (resuming from its checkpoint)" in resumed.stdout
    assert "trial 0 " not in resumed.stdout.split("trial state")[0]  # not trained again
    # 1 is failed as interrupted; 2 re-runs its values in its folder
    assert states() == [(0, "COMPLETE"), (1, "FAIL"), (2, "COMPLETE")]
    assert "trial 2 re-ran interrupted trial 1" in resumed.stdout
    log = Path("out/spec/sweep/trial-1/train.log").read_text()
    assert f"resuming spec after epoch {done} of 20" in log
    assert not os.path.exists("out/spec/sweep/trial-2")
    assert os.listdir("out/spec/sweep/trial-0/spec") == ["1"]  # one export: trained once
    again = zoo(*command[1:])  # both done: the table again, no training
    assert "the study already holds 2 trials (--trials 2)" in again.stdout
    assert len(states()) == 3


PARAM_ERRORS = {
    "train.batch_size=logunifrom:1:2": "--param train.batch_size:1:1: train.batch_size: unknown "
    "distribution 'logunifrom' (did you mean 'loguniform' or 'uniform'?); a distribution is "
    "one of loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH, choice:A,B,C; received "
    "'train.batch_size=logunifrom:1:2'",
    "train.batch_size=int:64:32": "--param train.batch_size:1:1: train.batch_size: LOW must be "
    "below HIGH: write int:32:64; received 'train.batch_size=int:64:32'",
    "train.batch_size=int:a:b": "--param train.batch_size:1:1: train.batch_size: int takes two "
    "integers, int:LOW:HIGH (e.g. int:1:8); received 'train.batch_size=int:a:b'",
    "train.optimizer.adam.learning_rate=loguniform:0:1": "--param "
    "train.optimizer.adam.learning_rate:1:1: train.optimizer.adam.learning_rate: loguniform "
    "needs LOW above 0 (it draws the logarithm of the value uniformly); start the range at a "
    "small positive number such as 1e-05; received "
    "'train.optimizer.adam.learning_rate=loguniform:0:1'",
    "train.batch_size=choice:32": "--param train.batch_size:1:1: train.batch_size: choice needs "
    "at least two different values, separated by commas (choice:32,64,128; each is read as "
    "YAML, as --set reads it); received 'train.batch_size=choice:32'",
    "train.batch_size=choice:0,32": "--param train.batch_size:1:1: train.batch_size: expected a "
    "positive integer, received the integer 0; the spec refuses train.batch_size=0 (a choice of "
    "choice:0,32): a --param must name a key the spec has, and every value it can take must be "
    "one the spec accepts",
    "train.optimizer.adam.momentum=uniform:0.5:2": "--param train.optimizer.adam.momentum:1:1: "
    "train.optimizer.adam.momentum: Adam has no argument 'momentum' (did you mean "
    "'ema_momentum'?); the spec refuses train.optimizer.adam.momentum=0.5 (the low end of "
    "uniform:0.5:2): a --param must name a key the spec has, and every value it can take must "
    "be one the spec accepts",
    "train.batch_size": "--param:1:1: expected KEY=DISTRIBUTION with a dotted key (e.g. "
    "train.optimizer.sgd.learning_rate=loguniform:0.001:1 or train.batch_size=choice:32,64,128)"
    ", received 'train.batch_size'",
}


@pytest.mark.parametrize("param", PARAM_ERRORS)
def test_a_bad_param_is_a_located_error_before_any_trial(tiny, param, capsys):
    assert cli.main(["sweep", tiny, "--output", "out", "--param", param]) == 2
    assert capsys.readouterr().err == f"error: {PARAM_ERRORS[param]}\n"
    assert not os.path.exists("out")


@pytest.mark.parametrize("arguments, message", [
    (["--metric", "val_acc"], "--metric:1:1: a sweep optimizes a figure each epoch logs on the "
     "validation split; 'val_acc' is not one (did you mean 'val_accuracy'?): choose one of "
     "val_loss, val_accuracy, val_top5"),
    (["--set", "data.validation_split=test"], "--set data.validation_split:1:1: "
     "data.validation_split: a sweep never tunes on the test split, and 'test' is the split the "
     "export is evaluated on; validate on part of the train split: train_split: train[:90%] and "
     "validation_split: train[90%:]"),
])
def test_a_sweep_refuses_a_metric_it_cannot_read_and_the_test_split(tiny, arguments, message,
                                                                    capsys):
    code = cli.main(["sweep", tiny, "--output", "out", "--param", "train.batch_size=int:8:32",
                     *arguments])
    assert (code, capsys.readouterr().err) == (2, f"error: {message}\n")


def test_failed_trials_are_recorded_and_the_sweep_goes_on_never_touching_test(tiny,
                                                                             monkeypatch):
    import zoo.pipeline
    from zoo.sweep import run_sweep

    loaded = []
    load_split = zoo.pipeline.load_split
    monkeypatch.setattr(zoo.pipeline, "load_split", lambda name, split, **kwargs: (
        loaded.append(split), load_split(name, split, **kwargs))[1])
    lines = []
    result = run_sweep(tiny, ["train.optimizer.sgd.learning_rate=loguniform:1e30:1e35"], trials=2,
                       overrides=["train.optimizer={sgd: {learning_rate: 0.1}}", "train.epochs=2",
                                  "data.train_split=train[:80%]",
                                  "data.validation_split=train[80%:]"],
                       output="out", log=lines.append)
    assert set(loaded) == {"train[:80%]", "train[80%:]"}  # the spec's own split; never test
    for number in (0, 1):
        assert lines[number].startswith(f"trial {number}  train.optimizer.sgd.learning_rate=")
        assert ("  failed: Diverged: --set train.optimizer.sgd.learning_rate:1:1: "
                "train.optimizer.sgd.learning_rate: the loss became") in lines[number]
    assert states() == [(0, "FAIL"), (1, "FAIL")]
    assert (result.best, result.best_spec) == (None, None)
    assert lines[-1] == "no trial completed; the table is in out/spec/sweep/trials.txt"
