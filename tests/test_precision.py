"""`train.precision: auto` trains in whichever of float32 and mixed_bfloat16 a short probe
measured faster for the model (zoo.precision), remembers it, and a resumed run keeps it."""

import json
import re
import time

import pytest
import tensorflow as tf

import zoo
from zoo.precision import cache_file, precision_to_train_in, time_alternately

from conftest import TINY

MEASURED = re.compile(r"precision auto: (float32|mixed_bfloat16), (\d+\.\d\d)x as fast as "
                      r"(float32|mixed_bfloat16)(, a tie within 5%, which goes to it)? for this "
                      r"model here \(([\d.]+) vs ([\d.]+) ms a step of 32; measured in \d+ s\)")


def sleeping_step(seconds):
    def step():
        time.sleep(seconds)
        return tf.constant(0.0)
    return step


def test_the_slower_of_two_steps_is_measured_slower_whichever_comes_first(monkeypatch):
    monkeypatch.setattr("zoo.precision.ROUND_SECONDS", 0.05)
    for order in (("slow", "fast"), ("fast", "slow")):
        steps = {"slow": sleeping_step(0.006), "fast": sleeping_step(0.002)}
        seconds = time_alternately({name: steps[name] for name in order})
        assert seconds["fast"] < seconds["slow"]
        assert seconds["slow"] / seconds["fast"] == pytest.approx(2.5, rel=0.4)


def counted(step):
    def call():
        call.count += 1
        return step()
    call.count = 0
    return call


def test_a_close_call_is_measured_longer_than_a_clear_one(monkeypatch):
    monkeypatch.setattr("zoo.precision.ROUND_SECONDS", 0.02)
    monkeypatch.setattr("zoo.precision.PROBE_SECONDS", 0.5)
    clear = {"slow": counted(sleeping_step(0.006)), "fast": counted(sleeping_step(0.002))}
    close = {"slow": counted(sleeping_step(0.0042)), "fast": counted(sleeping_step(0.004))}
    started = time.perf_counter()
    time_alternately(clear)
    clear_seconds = time.perf_counter() - started
    started = time.perf_counter()
    time_alternately(close)
    assert time.perf_counter() - started >= 0.5 > clear_seconds  # the budget, then it stops
    assert close["fast"].count > 2 * clear["fast"].count


def test_a_near_tie_goes_to_bfloat16_and_anything_more_to_the_faster():
    assert precision_to_train_in({"float32": 1.0, "mixed_bfloat16": 1.04}) == "mixed_bfloat16"
    assert precision_to_train_in({"float32": 1.0, "mixed_bfloat16": 1.06}) == "float32"
    assert precision_to_train_in({"float32": 1.5, "mixed_bfloat16": 1.0}) == "mixed_bfloat16"
    gpu_pair = {"float32": 1.02, "mixed_float16": 1.0}
    assert precision_to_train_in(gpu_pair) == "mixed_float16"


@pytest.fixture
def two_precisions(tmp_path, monkeypatch):
    """A run in tmp_path where auto has both precisions to choose from, whatever this CPU
    is (without bfloat16 instructions TensorFlow emulates them, slowly), and a fresh cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("zoo.devices.cpu_has_bfloat16", lambda: True)


def train(*overrides, on_epoch=None):
    lines = []
    result = zoo.train(TINY, overrides=["train.epochs=1", *overrides], output="out",
                       log=lines.append, on_epoch=on_epoch)
    return result, lines


def test_auto_measures_both_precisions_once_and_trains_in_the_faster(two_precisions):
    result, lines = train()
    assert lines[0] == ("precision auto: timing a few training steps of spec in float32 and "
                        "mixed_bfloat16 (once per model and machine)")
    measured = MEASURED.fullmatch(lines[2])
    assert measured, lines[2]
    chosen, ratio, other, tie, faster, slower = measured.groups()
    assert {chosen, other} == {"float32", "mixed_bfloat16"}
    assert float(ratio) == pytest.approx(float(slower) / float(faster), rel=0.015)
    assert lines[1].endswith(f"over 1 replica(s), {chosen}")
    assert result.model.layers[1].dtype_policy.name == chosen
    (entry,) = json.loads(open(cache_file()).read()).values()
    assert entry["spec"] == "spec" and set(entry["seconds_per_step"]) == {chosen, other}

    _, again = train("train.epochs=2", "train.seed=5")  # what a step computes is unchanged
    assert again[1] == (f"precision auto: {chosen}, {ratio}x as fast as {other}{tie or ''} "
                        "for this model "
                        f"here ({faster} vs {slower} ms a step of 32; measured "
                        f"{entry['date']}, remembered in {cache_file()})")
    _, other_model = train("model.layers[1].dense.units=64")
    assert other_model[0].startswith("precision auto: timing")


def test_a_precision_the_spec_sets_is_used_without_measuring(two_precisions):
    result, lines = train("train.precision=mixed_bfloat16")
    assert lines[0].endswith("over 1 replica(s), mixed_bfloat16")
    assert not any("precision auto" in line for line in lines)
    assert result.model.layers[1].dtype_policy.name == "mixed_bfloat16"


def test_a_resumed_run_keeps_the_precision_it_began_in(two_precisions):
    def stop_after_first(phase, epoch, metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train("train.epochs=3", on_epoch=stop_after_first)
    cache = json.loads(open(cache_file()).read())
    (entry,) = cache.values()
    seconds = entry["seconds_per_step"]
    began_in = precision_to_train_in(seconds)
    # the machine now measures the other precision twice as fast (a busy moment, another
    # machine): clearly faster, whatever the tie rule
    (other,) = set(seconds) - {began_in}
    seconds[other] = seconds[began_in] / 2
    open(cache_file(), "w").write(json.dumps(cache))
    result, lines = train("train.epochs=3")
    assert lines[1] == f"precision auto: {began_in}, as when this run began"
    assert lines[2].startswith("resuming spec after epoch 1 of 3")
    assert result.model.layers[1].dtype_policy.name == began_in
    _, anew = train("train.epochs=3")  # that run finished: a new one follows the cache again
    assert anew[1].startswith(f"precision auto: {other}, ")
