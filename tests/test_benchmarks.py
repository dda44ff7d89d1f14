"""Every benchmark still runs and prints its table (tiny sizes, one process); the real
figures come from the full runs recorded in BENCHMARKS.md, not from tests."""

import subprocess
import sys

import pytest

from conftest import ROOT


def run_smoke(script):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def table_rows(stdout):
    return [line.split("|")[1:-1] for line in stdout.splitlines()
            if line.startswith("|") and not line.startswith("|---")]


def test_training_speed_compares_every_side():
    result = run_smoke("training_speed.py")
    assert result.returncode == 0, result.stderr
    header, *rows = table_rows(result.stdout)
    assert [cell.strip() for cell in header] == ["spec", "side", "precision", "images/s",
                                                 "ratio", "peak MB"]
    assert [row[1].strip() for row in rows] == ["keras", "zoo float32", "zoo bf16", "zoo xla",
                                                "zoo default"]
    assert all(float(row[3]) > 0 for row in rows) and rows[0][4].strip() == "1.00"


@pytest.mark.slow  # two ResNet-50 traces: about a minute and a half on 2 cores
def test_overhead_compares_spec_and_applications():
    result = run_smoke("overhead.py")
    assert result.returncode == 0, result.stderr
    header, *rows = table_rows(result.stdout)
    assert [cell.strip() for cell in header] == [
        "figure", "from the spec", "from the spec, Keras layers", "keras.applications", "ratio",
        "ratio, Keras layers"]
    assert [row[0].strip() for row in rows] == [
        "training, images/s (32x32, batch 2)", "inference, images/s", "peak memory, MB",
        "building ResNet-50, s"]


def test_input_pipeline_compares_pipeline_and_memory():
    result = run_smoke("input_pipeline.py")
    assert result.returncode == 0, result.stderr
    header, row = table_rows(result.stdout)
    assert [cell.strip() for cell in header] == ["spec", "batch", "pipeline", "in memory",
                                                 "ratio"]
    assert row[0].strip() == "lenet" and float(row[4]) > 0


def test_precision_accuracy_trains_both_precisions():
    result = run_smoke("precision_accuracy.py")
    assert result.returncode == 0, result.stderr
    header, row = table_rows(result.stdout)
    assert [cell.strip() for cell in header] == ["spec", "epochs", "seeds", "float32",
                                                 "default (auto)"]
    assert all(float(cell.split("±")[0]) > 30 for cell in row[3:])  # 1 epoch of LeNet learns


@pytest.mark.slow  # three clusters of train.py processes: about a minute on 2 cores
def test_scaling_runs_one_and_two_workers():
    result = run_smoke("scaling.py")
    assert result.returncode == 0, result.stderr
    header, row = table_rows(result.stdout)
    assert row[0].strip() == "lenet" and float(row[4]) > 0


def test_utilization_divides_training_flops_by_the_matmul_peak():
    result = run_smoke("utilization.py")
    assert result.returncode == 0, result.stderr
    header, *rows = table_rows(result.stdout)
    assert [cell.strip() for cell in header] == ["spec", "precision", "images/s",
                                                 "MMACs/example", "training GFLOP/s",
                                                 "peak GFLOP/s", "of peak"]
    assert [row[1].strip() for row in rows] == ["float32", "mixed_bfloat16"]
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
