"""What the experiment scripts share: their command line (`run` appends results, `table`
prints them) and how a cell of their tables shows a figure over seeds."""

from __future__ import annotations

import argparse
import statistics


def mean_and_spread(values) -> str:
    """'80.9 ± 1.2 (n=3)': the mean, the sample standard deviation and the count."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f} (n={len(values)})"


def command_line(description: str, add_run_arguments, run, table) -> None:
    """`SCRIPT run ...` calls run(args); `SCRIPT table FILE ...` prints table(files)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_arguments(commands.add_parser("run", help="run the experiment, appending results"))
    tabling = commands.add_parser("table", help="print the results as a Markdown table")
    tabling.add_argument("files", nargs="+")
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        print(table(args.files))
