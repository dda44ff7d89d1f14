"""Command lines of train.py and evaluate.py: parse, run, map failures to exit codes.

Exit codes (the contract in DESIGN.md): 0 success, 2 bad input (a one-paragraph
message on stderr, never a traceback), 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

TRAIN_USAGE = """\
Train a model described by a YAML spec, or show it with --dry-run.

examples:
  python train.py specs/lenet.yaml --dry-run
  python train.py specs/resnet50.yaml --dry-run --set model.vars.depths=[3,4,23,3]
"""


def _import_tensorflow(verbose: bool) -> None:
    """Import TensorFlow, hiding its start-up log lines unless asked.

    Some lines are written by C++ before TensorFlow reads TF_CPP_MIN_LOG_LEVEL,
    so standard error is pointed at /dev/null for the import itself.
    """
    if verbose:
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS's informational warnings


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--download", action="store_true",
                        help="let TFDS download a dataset that is not on this machine yet")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log output and full tracebacks")


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py", description=TRAIN_USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the spec file, e.g. specs/alexnet.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a spec value (YAML), e.g. --set train.epochs=3; repeatable")
    parser.add_argument("--output", default="exports", metavar="DIR",
                        help="where exports go: DIR/<spec name>/<version>/ (default: exports)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the model, print its layers and parameter counts; no training")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"),
                        help="tf.distribute strategy (default: multi_worker when TF_CONFIG names "
                             "several workers, mirrored over several GPUs, else default)")
    parser.add_argument("--logical-cpus", type=int, metavar="N",
                        help="split the CPU into N logical devices (try multi-device code "
                             "without GPUs; use with --strategy mirrored)")
    parser.add_argument("--restart", action="store_true",
                        help="discard an unfinished run's checkpoint instead of resuming it")
    _add_shared_options(parser)
    return parser


def train_main(argv=None) -> int:
    args = _train_parser().parse_args(argv)
    _import_tensorflow(args.verbose)
    return _run(lambda: _train(args), args.verbose)


def _train(args) -> int:
    from zoo.build import build_model
    from zoo.spec import load_spec
    from zoo.summary import check_expectations, layer_table

    if not args.dry_run:
        from zoo.run import run_training

        run_training(args, log=lambda message: print(message, flush=True))
        return EXIT_OK
    spec = load_spec(args.spec, args.overrides)
    model = build_model(spec)
    print(f"{spec.name} ({spec.file})")
    if spec.description:
        print(" ".join(spec.description.split()))
    print()
    print(layer_table(model))
    problems = check_expectations(spec, model)
    for problem in problems:
        print(f"expect mismatch: {problem}", file=sys.stderr)
    if spec.expect and not problems:
        print("expect: " + ", ".join(f"{key} {value:,}" if isinstance(value, int) else
                                     f"{key} {list(value)}" for key, value in spec.expect.items())
              + ": all match")
    return EXIT_BAD_INPUT if problems else EXIT_OK


EVALUATE_USAGE = """\
Evaluate an export on a dataset split, from the SavedModel alone.

examples:
  python evaluate.py exports/lenet/1
  python evaluate.py exports/lenet/1 --dataset mnist_subset --split train --json metrics.json
"""


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=EVALUATE_USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", help="an export version directory, e.g. exports/lenet/1, or "
                                       "a spec's export folder (exports/lenet) for its newest")
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the training one)")
    parser.add_argument("--split", help="split to evaluate on (default: the spec's eval split)")
    parser.add_argument("--json", metavar="PATH", help="also write the metrics as JSON here")
    _add_shared_options(parser)
    return parser


def evaluate_main(argv=None) -> int:
    args = _evaluate_parser().parse_args(argv)
    _import_tensorflow(args.verbose)
    return _run(lambda: _evaluate(args), args.verbose)


def _evaluate(args) -> int:
    import json

    from zoo.evaluation import evaluate_export, newest_version, report

    directory = newest_version(args.export)
    if directory != args.export:
        print(f"evaluating the newest version, {directory}")
    metrics = evaluate_export(directory, args.dataset, args.split, args.download)
    print(report(metrics))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(metrics, handle, indent=2)
    return EXIT_OK


def _run(job, verbose: bool) -> int:
    """Run a command; a bad spec or argument becomes one message and exit code 2.

    Any other failure is one message and exit code 1; --verbose shows its traceback.
    """
    from zoo.source import RunFailure, SpecError

    try:
        return job()
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: the checkpoint of the last completed epoch is kept; run the same "
              "command again to resume from it", file=sys.stderr)
        return 130
    except (FloatingPointError, RunFailure) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # output piped into `head`: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:
        if verbose:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)",
              file=sys.stderr)
        return EXIT_FAILURE
