"""Side-by-side measurement: each side runs in its own fresh process (so peak memory and
TensorFlow's global state belong to it alone), the sides alternate within every repetition
(so a slow minute of a noisy machine hits both), and medians are reported."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure_in_subprocess(script: str, arguments: list[str], python: str = sys.executable) -> dict:
    """Run `python script --measure ARGUMENTS`; its last output line is JSON figures."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    finished = subprocess.run([python, script, "--measure", *arguments],
                              capture_output=True, text=True, env=environment)
    if finished.returncode != 0:
        raise SystemExit(f"measurement {arguments} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def interleaved(script: str, cases: list[list[str]], repeats: int,
                in_process=None, python=None) -> list[list[dict]]:
    """Figures per case, one per repetition, the cases alternating in every repetition (in
    an order that rotates from one repetition to the next).

    Each measurement runs `script --measure CASE` in a fresh process, or, for smoke runs
    that only check a benchmark still works, calls `in_process(*CASE)` in this one. A case
    for which `python(CASE)` names an interpreter (a side measured in another environment,
    or one that needs a fresh process even in a smoke run) always runs in a fresh process
    of that interpreter.
    """
    results = [[] for _ in cases]
    for repetition in range(repeats):
        # Each repetition starts one case later, so no case always runs first or last.
        for index in [(start + repetition) % len(cases) for start in range(len(cases))]:
            case = cases[index]
            interpreter = python(case) if python else None
            results[index].append(
                in_process(*case) if in_process and not interpreter else
                measure_in_subprocess(script, case, interpreter or sys.executable))
            print(f"  repetition {repetition + 1}/{repeats} {' '.join(case)}: "
                  f"{results[index][-1]}", file=sys.stderr, flush=True)
    return results


def median(figures: list[dict], key: str) -> float:
    return statistics.median(figure[key] for figure in figures)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark_parser(description: str, repeats: int, smoke: str) -> argparse.ArgumentParser:
    """A benchmark's command line: --repeats and --smoke, plus the hidden --measure CASE by
    which `interleaved` runs one measurement in a fresh process; the script adds its own."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--smoke", action="store_true", help=smoke)
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    return parser


def add_torch_python(parser: argparse.ArgumentParser) -> None:
    """--torch-python: the benchmark-only PyTorch environment the torch sides run in."""
    parser.add_argument("--torch-python", metavar="PATH",
                        help="the PyTorch environment's python, empty for none (default: "
                             "$ZOO_TORCH_PYTHON)")


def torch_python(given: str | None) -> str | None:
    """The PyTorch environment's interpreter, or None where there is none (or it is given
    as empty, to measure the other sides alone)."""
    if given is None:
        given = os.environ.get("ZOO_TORCH_PYTHON")
    return given or None


def measured_as_asked(args, measure) -> bool:
    """If the process was started with --measure CASE: print measure(*CASE) as JSON, say so."""
    if args.measure:
        print(json.dumps(measure(*args.measure)))
    return bool(args.measure)
