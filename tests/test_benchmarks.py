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
    assert [row[0].strip() for row in rows] == [
        "training, images/s (32x32, batch 2)", "inference, images/s", "peak memory, MB",
        "building ResNet-50, s"]
