"""What the experiment scripts share: their command line (`run` appends results, `table`
prints them), one training run recorded as a line of JSON, and how a cell of their tables
shows a figure over seeds."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def mean_and_spread(values) -> str:
    """'80.9 ± 1.2 (n=3)': the mean, the sample standard deviation and the count."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f} (n={len(values)})"


def command_line(description: str, add_run_arguments, run, table, figure=None) -> None:
    """`SCRIPT run ...` calls run(args); `SCRIPT table FILE ...` prints table(files); with
    `figure`, `SCRIPT figure FILE ... -o PNG` draws figure(files, png)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_arguments(commands.add_parser("run", help="run the experiment, appending results"))
    tabling = commands.add_parser("table", help="print the results as a Markdown table")
    tabling.add_argument("files", nargs="+")
    if figure:
        drawing = commands.add_parser("figure", help="draw the results into a PNG file")
        drawing.add_argument("files", nargs="+")
        drawing.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    elif args.command == "figure":
        figure(args.files, args.out)
    else:
        print(table(args.files))


def read_records(files) -> list[dict]:
    """Every record of the JSON-lines files, in order."""
    return [json.loads(line) for file in files for line in Path(file).read_text().splitlines()]


def train_and_record(spec_file, overrides, out: str, measure=None, **labels) -> dict:
    """Train `spec_file` with `overrides` (--set values) into a throwaway folder; append its test
    accuracy and time (wall, and the process's CPU time: on a shared machine the wall time
    says more about the neighbours), with `labels`, to the JSON-lines file `out`; return the
    record.
    `measure(result)`, called while the export exists, returns the figures to record instead of
    the test accuracy (the accuracy of the split the run evaluated every epoch)."""
    import keras

    import zoo

    began, cpu_began = time.monotonic(), time.process_time()
    with tempfile.TemporaryDirectory() as output:
        result = zoo.train(spec_file, output=output, log=lambda _: None, overrides=overrides)
        figures = measure(result) if measure else {"test_accuracy": result.metrics["accuracy"]}
    keras.backend.clear_session()  # the next run builds its model afresh
    record = {**labels, **figures, "seconds": round(time.monotonic() - began, 1),
              "cpu_seconds": round(time.process_time() - cpu_began, 1)}
    print(json.dumps(record), flush=True)
    with open(out, "a") as handle:
        handle.write(json.dumps(record) + "\n")
    return record
