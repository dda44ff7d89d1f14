"""Hyper-parameter sweeps on Optuna: `zoo sweep SPEC --param KEY=DISTRIBUTION ... --trials N`.

    import zoo
    result = zoo.run_sweep("specs/lenet.yaml", trials=6, overrides=["data.dataset=mnist_subset"],
                           params=["train.optimizer.sgd.learning_rate=loguniform:1e-3:1"])
    result.best_spec, result.value       # 'exports/lenet/sweep/lenet_best.yaml', 0.98...

Each trial is one `zoo.train` run in its own folder, OUTPUT/<spec>/sweep/trial-N/, its progress
lines in train.log there. The study lives beside them in study.db (SQLite), written as each
trial starts and ends, so a sweep killed at any moment (kill -9) resumes when the same command
runs again: finished trials are kept, a trial that was running is run again with its values in
its own folder (so `zoo.train` resumes it from its last checkpoint), and `--trials N` is the
study's total. A sweep tunes on a validation split, never on the test split: it carves the last
10% of the train split when the spec names none. Poor trials are pruned from their per-epoch
figures (Optuna's median rule); a trial that fails is recorded with its reason and the sweep
goes on. At the end: a table of the trials, sweep.png, and the best trial as a spec that
extends the original, which `zoo train` retrains.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

import keras
import yaml

from zoo.checkpoints import one_run_at_a_time
from zoo.files import RunFailure, write_text_atomically
from zoo.params import Plan, assignment, parse_param, plan_sweep
from zoo.run import train
from zoo.source import Location, SpecError, parse_yaml, plain
from zoo.spec import load_spec


# --- the study: one SQLite file that outlives any process ---------------------------------------


def _optuna():
    try:
        import optuna
    except ImportError:
        raise RunFailure("zoo sweep needs Optuna, which is not installed here: "
                         "pip install 'keras-zoo[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep prints its own lines
    return optuna


def open_study(plan: Plan, trials: int, seed: int, worker: int = 0):
    """The sweep's study, created or reloaded. The sampler is seeded from the seed and the
    trials already there, so a resumed sweep draws new values, not its first ones again."""
    optuna = _optuna()
    os.makedirs(plan.folder, exist_ok=True)
    storage = f"sqlite:///{os.path.abspath(os.path.join(plan.folder, 'study.db'))}"
    study = optuna.create_study(storage=storage, study_name="sweep", direction=plan.direction,
                                load_if_exists=True)
    definition = {"params": [param.text for param in plan.params], "metric": plan.metric,
                  "overrides": plan.overrides}
    if not study.user_attrs.get("definition"):
        study.set_user_attr("definition", definition)
    elif study.user_attrs["definition"] != definition:
        raise SpecError(Location(plan.folder, 1, 1), "", f"the sweep there searched "
                        f"{study.user_attrs['definition']}, not {definition}; give another "
                        "--output, or delete the folder to start over")
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + 1000 * worker + len(study.trials),
        n_startup_trials=max(2, min(10, trials // 3)))  # a short sweep is not all random
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    return study


def recover_interrupted(study, log) -> None:
    """Trials left running by a sweep that died (the caller holds the sweep's lock, so none is
    alive): each is recorded as interrupted and its values queued again, with its folder, where
    `zoo.train` resumes it from its last checkpoint."""
    optuna = _optuna()
    interrupted = list(study.user_attrs.get("interrupted", []))
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.enqueue_trial(trial.params, user_attrs={
            "folder": trial.user_attrs.get("folder"), "retry_of": trial.number})
        interrupted.append(trial.number)
        study.set_user_attr("interrupted", interrupted)  # before it is failed: nothing lost
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        log(f"trial {trial.number} was interrupted: it runs again (resuming from its checkpoint)")


def counted(study) -> list:
    """The trials that count towards --trials: all but those a killed sweep interrupted."""
    interrupted = set(study.user_attrs.get("interrupted", []))
    return [trial for trial in study.get_trials(deepcopy=False)
            if trial.number not in interrupted]


def unfinished(study, trials: int) -> bool:
    """Whether trials remain to run: queued ones, or fewer than `trials` in the study."""
    waiting = (_optuna().trial.TrialState.WAITING,)
    return bool(study.get_trials(deepcopy=False, states=waiting)) or len(counted(study)) < trials


def run_trials(plan: Plan, study, trials: int, log=print) -> None:
    """Run trials until the study holds `trials` (queued ones first)."""
    optuna = _optuna()
    while unfinished(study, trials):
        trial = study.ask()
        started = time.monotonic()
        values = {param.key: param.suggest(trial) for param in plan.params}
        folder = trial.user_attrs.get("folder") or os.path.join(plan.folder,
                                                                f"trial-{trial.number}")
        trial.set_user_attr("folder", folder)
        try:
            value = _train_trial(plan, trial, values, folder)
            frozen = study.tell(trial, value)
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except Exception as exc:  # a NaN loss, a bad combination, anything: noted, go on
            trial.set_user_attr("reason", " ".join(f"{type(exc).__name__}: {exc}"
                                                   .removeprefix("SpecError: ").split()))
            frozen = study.tell(trial, state=optuna.trial.TrialState.FAIL)
        finally:
            keras.backend.clear_session()  # the next trial builds its model afresh
        log(f"{_trial_line(plan, study.trials[frozen.number])} "
            f"({time.monotonic() - started:.0f} s)")


def _train_trial(plan: Plan, trial, values: dict, folder: str) -> float:
    """One zoo.train run with the trial's values; its per-epoch figure is reported to Optuna,
    which may prune it (the run's checkpoint is kept)."""
    optuna = _optuna()
    os.makedirs(folder, exist_ok=True)
    steps = {"phase": None, "offset": 0, "last": 0}

    def on_epoch(phase, epoch, metrics):
        if plan.metric not in metrics:  # e.g. an autoencoder's pretraining phase
            return
        if phase != steps["phase"]:  # the steps of a later phase follow the earlier's
            steps.update(phase=phase, offset=steps["last"])
        steps["last"] = step = steps["offset"] + epoch
        trial.report(metrics[plan.metric], step)
        trial.set_user_attr("epochs", step)
        if trial.should_prune():
            raise optuna.TrialPruned()

    assignments = [param.assignment(values[param.key]) for param in plan.params]
    with open(os.path.join(folder, "train.log"), "a", encoding="utf-8") as handle:
        result = train(plan.spec_file, overrides=[*plan.overrides, *assignments], output=folder,
                       log=lambda line: print(line, file=handle, flush=True), on_epoch=on_epoch)
    last = list(result.history.values())[-1]
    trial.set_user_attr("epochs", sum(len(history) for history in result.history.values()))
    trial.set_user_attr("export", result.export)
    return float(last[-1][plan.metric])


# --- the results: a table, a picture, the best trial as a spec ----------------------------------


def _shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _state(study, trial) -> str:
    if trial.number in study.user_attrs.get("interrupted", []):
        return "interrupted"
    return {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
        trial.state.name, trial.state.name.lower())


def _trial_line(plan: Plan, trial) -> str:
    params = "  ".join(f"{key}={_shown(value)}" for key, value in trial.params.items())
    state = trial.state.name.lower()
    if state == "complete":
        outcome = f"{plan.metric} {trial.value:.4f}"
    elif state == "pruned":
        outcome = f"pruned after {trial.user_attrs.get('epochs', 0)} epoch(s)"
    else:
        outcome = f"failed: {trial.user_attrs.get('reason', 'no value')}"
    return f"trial {trial.number}  {params}  {outcome}"


def trial_table(plan: Plan, study) -> str:
    """Every trial: number, state, value, epochs reached and its values; reasons of failures."""
    header = ["trial", "state", plan.metric, "epochs", *(param.key for param in plan.params)]
    rows, notes = [header], []
    for trial in study.trials:
        value = trial.value if trial.value is not None else (
            trial.intermediate_values[max(trial.intermediate_values)]
            if trial.intermediate_values else None)
        rows.append([str(trial.number), _state(study, trial),
                     "" if value is None else f"{value:.4f}",
                     str(trial.user_attrs.get("epochs", "")),
                     *(_shown(trial.params.get(param.key, "")) for param in plan.params)])
        if trial.user_attrs.get("retry_of") is not None:
            notes.append(f"trial {trial.number} re-ran interrupted trial "
                         f"{trial.user_attrs['retry_of']}")
        if "reason" in trial.user_attrs:
            notes.append(f"trial {trial.number} failed: {trial.user_attrs['reason']}")
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    return "\n".join(lines + notes) + "\n"


def plot_sweep(plan: Plan, study, path: str) -> None:
    """The figure of each finished trial and the best so far; and, with two or more params,
    how much each mattered (Optuna's importance)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    optuna = _optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    importance = {}
    if len(plan.params) >= 2 and len(complete) >= 3:
        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # e.g. every trial drew the same values
            importance = {}
    figure = Figure(figsize=(11 if importance else 6, 4))
    axes = figure.subplots(1, 2 if importance else 1, squeeze=False)[0]
    numbers = [trial.number for trial in complete]
    values = [trial.value for trial in complete]
    better = max if plan.direction == "maximize" else min
    best = [better(values[:index + 1]) for index in range(len(values))]
    axes[0].plot(numbers, values, "o", label="trial")
    axes[0].step(numbers, best, where="post", label="best so far")
    axes[0].set(xlabel="trial", ylabel=plan.metric, title=f"{plan.name}: {len(complete)} "
                f"complete of {len(study.trials)} trials")
    axes[0].legend()
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    if importance:
        axes[1].barh(list(importance), list(importance.values()))
        axes[1].set(xlabel="importance", title="parameter importance")
    figure.tight_layout()
    figure.savefig(path)


def write_best_spec(plan: Plan, trial) -> str:
    """The best trial as a spec file over the original (extends it, relative path): the --set
    values and the trial's values as one nested mapping. Named <spec>_best.yaml, so `zoo train`
    exports it as <spec>_best, beside (not over) the original's exports."""
    nested = {}
    values = [assignment(key, value) for key, value in trial.params.items()]
    for setting in [*plan.overrides, *values]:
        key, text = setting.split("=", 1)
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = plain(parse_yaml(text, f"--set {key}", key))
    if any(key.startswith("model") for key in trial.params):
        nested["expect"] = None  # the counts the original expects are of another model
    path = os.path.join(plan.folder, f"{plan.name}_best.yaml")
    base = os.path.relpath(plan.spec_file, plan.folder)
    header = (f"# The best trial (trial {trial.number}, {plan.metric} {trial.value:.4f}) of the "
              f"sweep in this folder, over {os.path.basename(plan.spec_file)}.\n"
              f"# `zoo train {path}` retrains it.\n")
    write_text_atomically(path, header + yaml.safe_dump({"extends": base, **nested},
                                                        sort_keys=False))
    load_spec(path)  # the file must be a spec that loads: its own checks say if not
    return path


# --- the whole sweep ---------------------------------------------------------------------------


@dataclass
class SweepResult:
    folder: str  # OUTPUT/<spec>/sweep: study.db, trials.txt, sweep.png, trial-N/
    table: str  # every trial (trials.txt)
    best: dict | None  # the best trial's values; None when no trial completed
    value: float | None  # its figure (metric)
    metric: str
    best_spec: str | None  # the spec file of the best trial, which `zoo train` retrains


def run_sweep(spec: str, params, *, trials: int = 20, overrides=(), output: str = "exports",
              metric: str | None = None, seed: int = 0, jobs: int = 1, log=print,
              worker: int | None = None) -> SweepResult | None:
    """Search `params` (`KEY=DISTRIBUTION` strings, as --param takes them) over trials of the spec
    file `spec` until the study holds `trials`; bad input raises SpecError before any trial.
    `jobs` > 1 runs that many worker processes on the one study (TensorFlow is not safe to train
    in threads); `worker` is how such a process is started, and returns None."""
    if trials < 1 or jobs < 1:
        raise SpecError(Location("--trials" if trials < 1 else "--jobs", 1, 1), "",
                        f"expected a positive number, received {min(trials, jobs)}")
    plan = plan_sweep(spec, [parse_param(text) for text in params], list(overrides), metric,
                      output, log if worker is None else (lambda *_: None))
    if worker is not None:
        run_trials(plan, open_study(plan, trials, seed, worker), trials, log)
        return None
    study = open_study(plan, trials, seed)
    with one_run_at_a_time(os.path.join(plan.folder, "study.db"), log,
                           f"another sweep is using {plan.folder}; waiting for it to "
                           "finish") as lock:
        recover_interrupted(study, log)
        if not unfinished(study, trials):
            log(f"the study already holds {len(counted(study))} trials (--trials {trials})")
        elif jobs == 1:
            run_trials(plan, study, trials, log)
        else:
            _run_workers(spec, params, trials, overrides, output, plan.metric, seed, jobs, lock)
    return report(plan, study, log)


def _run_workers(spec, params, trials, overrides, output, metric, seed, jobs, lock) -> None:
    """`jobs` processes of `zoo sweep --worker`, sharing the study; they inherit the sweep's
    lock, so a sweep killed with its workers alive is not resumed under them."""
    command = [sys.executable, "-m", "zoo", "sweep", spec, "--trials", str(trials),
               "--output", output, "--metric", metric, "--seed", str(seed),
               *(part for text in params for part in ("--param", text)),
               *(part for text in overrides for part in ("--set", text))]
    workers = [subprocess.Popen([*command, "--worker", str(index)], pass_fds=(lock,))
               for index in range(jobs)]
    failed = [index for index, process in enumerate(workers) if process.wait()]
    if failed:
        raise RunFailure(f"sweep worker(s) {failed} stopped with an error (above); the study "
                         "keeps every finished trial: run the same command again to go on")


def report(plan: Plan, study, log=print) -> SweepResult:
    """trials.txt, sweep.png and the best trial's spec, and what they say, on `log`."""
    table = trial_table(plan, study)
    write_text_atomically(os.path.join(plan.folder, "trials.txt"), table)
    plot_sweep(plan, study, os.path.join(plan.folder, "sweep.png"))
    log(table.rstrip())
    try:
        best = study.best_trial
    except ValueError:  # no trial completed
        log(f"no trial completed; the table is in {plan.folder}/trials.txt")
        return SweepResult(plan.folder, table, None, None, plan.metric, None)
    path = write_best_spec(plan, best)
    log(f"best: trial {best.number}, {plan.metric} {best.value:.4f}; its spec: {path} "
        f"(zoo train {path}); the table and sweep.png are in {plan.folder}")
    return SweepResult(plan.folder, table, dict(best.params), best.value, plan.metric, path)
