"""Every benchmark still runs and prints its table (tiny sizes, one process); the real
figures come from the full runs recorded in BENCHMARKS.md, not from tests.

All are marked slow (about 2 minutes without the three longest, 6 with them): they check the
measuring scripts, not the zoo, and stay out of the README's test command. CI runs them
(`.ci/run`: `python -m pytest -q -m slow`).
"""

import re
import subprocess
import sys

import pytest

from benchmarks.harness import torch_python
from benchmarks.pytorch_comparison import SIDES
from benchmarks.serving import SIDES as SERVING_SIDES
from conftest import ROOT

pytestmark = pytest.mark.slow


def run_smoke(script, *args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def table_rows(stdout):
    return [line.split("|")[1:-1] for line in stdout.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def smoke_table(script, header, *args):
    """The rows of the table a benchmark's smoke run prints, after checking that the run
    succeeded and that the table has `header`."""
    result = run_smoke(script, *args)
    assert result.returncode == 0, result.stderr
    printed, *rows = table_rows(result.stdout)
    assert [cell.strip() for cell in printed] == header
    return rows


def test_training_speed_compares_every_side():
    rows = smoke_table("training_speed.py", ["spec", "side", "precision", "images/s", "ratio",
                                             "peak MB"])
    assert [row[1].strip() for row in rows] == ["keras", "zoo float32", "zoo bf16", "zoo xla",
                                                "zoo default"]
    assert all(float(row[3]) > 0 for row in rows) and rows[0][4].strip() == "1.00"


# two ResNet-50 traces: about a minute and a half on 2 cores
def test_overhead_compares_spec_and_applications():
    rows = smoke_table("overhead.py", ["figure", "from the spec", "from the spec, Keras layers",
                                       "keras.applications", "ratio", "ratio, Keras layers"])
    assert [row[0].strip() for row in rows] == [
        "training, images/s (32x32, batch 2)", "inference, images/s", "peak memory, MB",
        "building ResNet-50, s", "inference graph (digest of its op types in order)"]
    # in inference the zoo's layers compute what Keras's do, op for op
    assert [cell.strip() for cell in rows[-1][4:]] == ["same", "same"]


def test_input_pipeline_compares_pipeline_and_memory():
    (row,) = smoke_table("input_pipeline.py", ["case", "batch", "pipeline", "in memory", "ratio"])
    assert row[0].strip() == "lenet" and float(row[4]) > 0


def test_epoch_end_compares_tf_data_default_and_zoo_epochs():
    rows = smoke_table("epoch_end.py", ["side", "epochs", "median s", "mean s", "longest s",
                                        "stalled"])
    assert [row[0].strip() for row in rows] == ["tf.data default", "zoo"]
    assert all(row[1].strip() == "1" and float(row[2]) > 0 for row in rows)


def test_precision_accuracy_trains_both_precisions():
    (row,) = smoke_table("precision_accuracy.py", ["spec", "epochs", "seeds", "float32",
                                                   "default (auto)"])
    assert all(float(cell.split("±")[0]) > 30 for cell in row[3:])  # 1 epoch of LeNet learns


# three clusters of train.py processes: about a minute on 2 cores
def test_scaling_runs_one_and_two_workers():
    (row,) = smoke_table("scaling.py", ["spec", "global batch B", "1 worker, images/s",
                                        "2 workers, images/s", "speed-up (ideal 2.0)",
                                        "communication per step, ms",
                                        "the all-reduces alone, ms",
                                        "most stolen, % (1 worker / 2 workers)"])
    speed_up, spread = row[4].strip().split(maxsplit=1)  # the median, (slowest-fastest)
    assert row[0].strip() == "lenet" and float(speed_up) > 0 and float(row[6]) > 0
    assert spread.startswith("(") and spread.endswith(")")
    assert all(0 <= float(share) <= 100 for share in row[7].split(" / "))


def test_scaling_profile_times_each_part_of_a_two_worker_step():
    rows = smoke_table("scaling.py", ["spec", "global batch", "part", "ms per step"],
                       "--profile")
    assert [row[2].strip() for row in rows] == [
        "input: whole batch, split", "input: own share", "step, 1 per call",
        "steps, 8 per call", "all-reduces alone", "one step alone on core 0 (median, sd)",
        "one step alone on core 1 (median, sd)", "the slower of the two cores' steps (mean)",
        "predicted pair step: slower core + all-reduces"]
    figures = {row[2].strip(): [float(number) for number in row[3].strip(" )").split(" (")]
               for row in rows}
    assert all(value >= 0 for values in figures.values() for value in values)
    slower = figures["the slower of the two cores' steps (mean)"][0]
    assert slower >= max(figures[f"one step alone on core {core} (median, sd)"][0]
                         for core in (0, 1)) * 0.5  # a mean of maxima, against medians
    assert figures["predicted pair step: slower core + all-reduces"][0] == pytest.approx(
        slower + figures["all-reduces alone"][0], abs=0.11)


def test_utilization_divides_training_flops_by_the_matmul_peak():
    rows = smoke_table("utilization.py", ["spec", "precision", "images/s", "MMACs/example",
                                          "training GFLOP/s", "peak GFLOP/s", "of peak"])
    from zoo.devices import precision_candidates

    # float32, then the default: what `auto` chose here (float32 too, at times,
    # for the smoke run's tiny LeNet steps)
    assert rows[0][1].strip() == "float32"
    assert rows[1][1].strip() in precision_candidates("auto")
    for row in rows:  # 3 x 2 x MACs x images/s, divided by the peak of its precision
        speed, macs, achieved, peak = (float(row[index]) for index in (2, 3, 4, 5))
        assert achieved == pytest.approx(6 * macs * speed / 1e3, rel=0.01, abs=0.06)
        assert float(row[6].strip(" %")) / 100 == pytest.approx(achieved / peak, rel=0.1)


def test_profile_training_splits_the_step_among_ops():
    result = run_smoke("profile_training.py")
    assert result.returncode == 0, result.stderr
    tables = result.stdout.split("\n\n")
    header, *categories = table_rows(tables[0])
    assert [row[0].strip() for row in categories][-3:] == [
        "no op running", "step", "(ops' own times added over threads)"]
    float32_ms = [float(row[1]) for row in categories]
    assert sum(float32_ms[:-2]) == pytest.approx(float32_ms[-2], abs=0.6)  # rounding
    assert float(categories[0][1]) > 0  # LeNet's convolutions, forward
    _, *ops = table_rows(tables[1])
    assert "convolution backward" in {row[1].strip() for row in ops}


def check_pytorch_comparison(result, sides):
    """The table has a row per side (PyTorch's only where its python is found), and both
    ResNet-50s have the spec's parameters."""
    assert result.returncode == 0, result.stderr
    found = torch_python(None) is not None
    if not found:
        sides = [side for side in sides if not side.startswith("torch")]
        assert result.stdout.startswith("No PyTorch python")
    header, *rows = table_rows(result.stdout.split("\n\n")[0])
    assert [cell.strip() for cell in header] == ["threads", "batch", "side", "precision",
                                                 "layout", "images/s", "ratio", "peak MB"]
    assert [row[2].strip() for row in rows] == sides
    assert all(float(row[5]) > 0 for row in rows) and rows[0][6].strip() == "1.00"
    counts = re.search(r"trainable parameters: (.*)", result.stdout).group(1)
    assert re.findall(r"\d{1,3}(?:,\d{3})+", counts) == ["25,557,032"] * (1 + found)
    assert ("Keras / PyTorch" in result.stdout) == found


def test_pytorch_comparison_runs_keras_and_any_pytorch():
    sides = ["keras float32", "torch bf16"]  # one ResNet-50 trace: half a minute
    check_pytorch_comparison(run_smoke("pytorch_comparison.py", "--threads", "1",
                                       "--sides", *sides), sides)


# three ResNet-50 traces and four PyTorch processes: minutes on 2 cores
def test_pytorch_comparison_compares_every_side():
    check_pytorch_comparison(run_smoke("pytorch_comparison.py"), list(SIDES))


def test_layers_compares_stock_and_zoo_layers():
    rows = smoke_table("layers.py", ["layer", "precision", "input", "stock", "zoo", "speed-up"])
    assert [(row[0].strip(), row[1].strip(), row[3].split()[0]) for row in rows] == [
        ("batch_norm", "float32", "keras"), ("batch_norm", "mixed_bfloat16", "keras"),
        ("lrn", "float32", "formula"), ("lrn", "mixed_bfloat16", "formula"),
        ("grouped_conv", "float32", "keras"), ("grouped_conv", "mixed_bfloat16", "keras")]
    assert all(float(row[4]) > 0 and float(row[5]) > 0 for row in rows)


def test_precision_by_layer_compares_float32_bfloat16_and_auto_training():
    (row,) = smoke_table("precision_by_layer.py", [
        "layer type", "MMACs/image", "float32 images/s", "mixed_bfloat16 images/s", "bf16/f32",
        "auto picked", "auto images/s", "auto/best", "picked/best"])
    assert row[0].strip() == "dense" and float(row[1]) == 4.2  # 3072x1024 + 1024x1024 + ...
    float32, bfloat16, ratio = map(float, row[2:5])
    assert ratio == pytest.approx(bfloat16 / float32, abs=0.01)
    assert re.fullmatch(r" (float32|mixed_bfloat16) 1/1 ", row[5])
    assert float(row[7]) == pytest.approx(float(row[6]) / max(float32, bfloat16), abs=0.01)
    picked = float32 if "float32" in row[5] else bfloat16
    assert float(row[8]) == pytest.approx(picked / max(float32, bfloat16), abs=0.01)


# LeNet exported three ways and converted to ONNX, then a process per side: about 2 minutes
def test_serving_compares_the_export_with_onnx_runtime_and_any_pytorch():
    result = run_smoke("serving.py")
    assert result.returncode == 0, result.stderr
    found = torch_python(None) is not None
    assert result.stdout.startswith("No PyTorch python") != found
    header, *rows = table_rows(result.stdout)
    assert [cell.strip() for cell in header] == [
        "threads", "side", "batch-1 latency ms", "batch-64 images/s",
        "SavedModel speed / side, batch 1", "SavedModel speed / side, batch 64"]
    assert [row[1].strip() for row in rows] == [
        side for side in SERVING_SIDES if found or not side.startswith("torch")]
    assert [cell.strip() for cell in rows[0][4:]] == ["1.00", "1.00"]
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)
    counts = re.search(r"trainable parameters (.*?);", result.stdout).group(1)
    assert counts == "Keras 61,706" + (", PyTorch 61,706" if found else "")
