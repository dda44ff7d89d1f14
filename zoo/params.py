"""What a sweep searches and on what, checked before its first trial: `--param KEY=DISTRIBUTION`
(loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH, choice:A,B,C) parsed, each value a
param can take (both ends of a range, every choice) loaded into the spec so that the spec's
own checks speak, the figure optimized, and a validation split apart from the test split.
Every mistake is a SpecError located at its --param (or --set, --metric): exit 2 from `zoo
sweep`, before a second of training. `zoo.sweep` runs the trials.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import keras
import yaml

from zoo.build import build_model
from zoo.preflight import check_before_training, logged_figures
from zoo.source import Location, SpecError, parse_yaml, plain, suggest
from zoo.spec import load_spec

KINDS = {"loguniform": "loguniform:LOW:HIGH", "uniform": "uniform:LOW:HIGH",
         "int": "int:LOW:HIGH", "choice": "choice:A,B,C"}
EXAMPLES = ("e.g. train.optimizer.sgd.learning_rate=loguniform:0.001:1 or "
            "train.batch_size=choice:32,64,128")
VALIDATION_PERCENT = 10  # of the train split, validated on when the spec has no validation split


# --- what to search: --param KEY=DISTRIBUTION ----------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One searched key: a range of numbers, or choices (kept as YAML text, as --set takes
    them, so a choice can be any value: a list of depths, a mapping)."""

    key: str
    kind: str
    low: float = 0
    high: float = 0
    choices: tuple = ()
    text: str = ""  # the --param as given

    def values(self) -> tuple:
        """The values to check before any trial: both ends of a range, or every choice."""
        return self.choices or (self.low, self.high)

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high)
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform")

    def assignment(self, value) -> str:
        return assignment(self.key, value)


def assignment(key: str, value) -> str:
    """The --set assignment that gives `key` a value a param took (a number, or a choice's
    YAML text)."""
    return f"{key}={value if isinstance(value, str) else repr(value)}"


def parse_param(text: str) -> Param:
    """`KEY=KIND:...` -> Param; a located SpecError (at `--param KEY`) for anything wrong."""
    match = re.match(r"^([A-Za-z_][\w.-]*)=([A-Za-z_]*):(.*)$", text, re.DOTALL)
    if not match:
        raise SpecError(Location("--param", 1, 1), "", f"expected KEY=DISTRIBUTION with a "
                        f"dotted key ({EXAMPLES}), received '{text}'")
    key, kind, rest = match.groups()

    def refuse(message):
        return SpecError(Location(f"--param {key}", 1, 1), key, f"{message}; received '{text}'")

    if kind not in KINDS:
        raise refuse(f"unknown distribution '{kind}'{suggest(kind, KINDS)}; a distribution is "
                     f"one of {', '.join(KINDS.values())}")
    if kind == "choice":
        values = plain(parse_yaml(f"[{rest}]", f"--param {key}", key))
        texts = tuple(dict.fromkeys(_yaml_text(value) for value in values))
        if len(texts) < 2:
            raise refuse("choice needs at least two different values, separated by commas "
                         "(choice:32,64,128; each is read as YAML, as --set reads it)")
        return Param(key, kind, choices=texts, text=text)
    ends = rest.split(":")
    number = int if kind == "int" else float
    try:
        low, high = (number(end) for end in ends) if len(ends) == 2 else (None, None)
    except ValueError:
        low = high = None
    if low is None or not all(map(math.isfinite, (low, high))):
        raise refuse(f"{kind} takes two {'integers' if kind == 'int' else 'numbers'}, "
                     f"{KINDS[kind]} (e.g. {kind}:{'1:8' if kind == 'int' else '0.001:1'})")
    if low >= high:
        raise refuse(f"LOW must be below HIGH: write {kind}:{min(low, high)}:{max(low, high)}"
                     if low > high else "LOW and HIGH are equal: a fixed value is --set "
                     f"{key}={low}, not a --param")
    if kind == "loguniform" and low <= 0:
        raise refuse("loguniform needs LOW above 0 (it draws the logarithm of the value "
                     "uniformly); start the range at a small positive number such as 1e-05")
    return Param(key, kind, low, high, text=text)


def _yaml_text(value) -> str:
    """A plain value as one line of YAML, as --set would take it."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix(
        "\n...").removesuffix(" ...")


# --- the plan: the spec, checked with every value a trial may take ------------------------------


@dataclass
class Plan:
    spec_file: str
    name: str  # the spec's name: the sweep lives in OUTPUT/<name>/sweep
    params: list
    overrides: list  # --set values, with the validation split the sweep carved, if it did
    metric: str  # a validation figure the run logs, e.g. val_accuracy
    direction: str  # maximize or minimize
    folder: str


def plan_sweep(spec_file: str, params: list, overrides=(), metric: str | None = None,
               output: str = "exports", log=print) -> Plan:
    """Everything checked before the first trial: the params against the spec's own tables (both
    ends of each range, every choice), the metric against the figures the run logs, and a
    validation split that is not the test split."""
    keys = [param.key for param in params]
    for param in params:
        if keys.count(param.key) > 1 or any(o.startswith(f"{param.key}=") for o in overrides):
            raise SpecError(Location(f"--param {param.key}", 1, 1), param.key, "the key is given "
                            "twice (by two --param, or by --param and --set); give it once")
    for assignment in [*overrides, *(f"{key}=" for key in keys)]:
        if "[" in assignment.split("=", 1)[0]:
            raise SpecError(Location(f"--set {assignment.split('=', 1)[0]}", 1, 1), "", "a "
                            "sweep writes its best spec as a mapping over the original, which "
                            "cannot address a list's item; write a variant spec that extends "
                            "the original and sweep that")
    spec = load_spec(spec_file, overrides)
    carved, note = _validation_split(spec)
    overrides = [*overrides, *carved]
    model = None
    for param in params:
        for which, value in _ends(param):
            try:
                variant = load_spec(spec_file, [*overrides, param.assignment(value)])
                if model is None or param.key.startswith("model"):
                    model = build_model(variant)
                check_before_training(variant, model)
            except SpecError as exc:
                raise _refused(param, which, value, exc) from None
    figures = [name for name in logged_figures(spec, model or build_model(spec))
               if name.startswith("val_")]
    keras.backend.clear_session()
    metric = metric or ("val_accuracy" if "val_accuracy" in figures else "val_loss")
    if metric not in figures:
        raise SpecError(Location("--metric", 1, 1), "", f"a sweep optimizes a figure each epoch "
                        f"logs on the validation split; '{metric}' is not one"
                        f"{suggest(metric, figures)}: choose one of {', '.join(figures)}")
    direction = "minimize" if "loss" in metric else "maximize"
    if note:
        log(note)
    return Plan(spec_file, spec.name, list(params), overrides, metric, direction,
                os.path.join(output, spec.name, "sweep"))


def _ends(param: Param):
    if param.choices:
        return [("a choice", value) for value in param.choices]
    return [("the low end", param.low), ("the high end", param.high)]


def _refused(param: Param, which: str, value, exc: SpecError) -> SpecError:
    """The spec's own error about one value a --param can take, located at the --param."""
    elsewhere = "" if str(exc.location).startswith(f"--set {param.key}:") else \
        f" (at {exc.location})"
    return SpecError(Location(f"--param {param.key}", 1, 1), exc.path,
                     f"{exc.message}{elsewhere}; the spec refuses {param.key}={value} ({which} "
                     f"of {param.text.split('=', 1)[1]}): a --param must name a key the spec "
                     "has, and every value it can take must be one the spec accepts")


def _validation_split(spec) -> tuple[list, str]:
    """The --set values that give the trials a validation split apart from the test split, and
    what to say about them."""
    data = spec.data
    evaluated = data.get("eval_split") or "test"
    validation = data.get("validation_split")
    if validation:
        if validation.split("[")[0] in ("test", evaluated.split("[")[0]):
            raise data.error("validation_split", f"a sweep never tunes on the test split, and "
                             f"'{validation}' is the split the export is evaluated on; validate "
                             "on part of the train split: train_split: train[:90%] and "
                             "validation_split: train[90%:]")
        return [], ""
    train_split = data.get("train_split") or "train"
    if "[" in train_split:
        raise data.error("train_split", f"a sweep tunes on a validation split, and carves one "
                         f"from a whole train split; '{train_split}' is already a slice: give "
                         "data.validation_split too (a slice apart from it)")
    keep = 100 - VALIDATION_PERCENT
    carved = [f"data.train_split={train_split}[:{keep}%]",
              f"data.validation_split={train_split}[{keep}%:]"]
    return carved, (f"the spec has no data.validation_split: trials train on "
                    f"{train_split}[:{keep}%] and are measured on {train_split}[{keep}%:]; the "
                    "test split is never used by a sweep")
