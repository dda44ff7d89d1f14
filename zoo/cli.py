"""The `zoo` command (and train.py, evaluate.py): parse arguments, run, map failures to exit codes.

    zoo train SPEC | evaluate EXPORT | convert EXPORT --to FORMAT | predict EXPORT IMAGE...
        | summary SPEC | plot SPEC | sweep SPEC --param KEY=DISTRIBUTION | list | schema

Every subcommand's parser is built here once; `train.py` and `evaluate.py` use the same ones.
What each command does is in `zoo.commands`. Exit codes (the contract in DESIGN.md): 0
success, 2 bad input (a one-paragraph message on stderr, never a traceback), 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from zoo.commands import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED, RUN
from zoo.sections import CONVERTED_FORMATS
from zoo.tracking import TRACKERS

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


# --- arguments shared by several commands -----------------------------------------------------


def _add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="the spec file, e.g. specs/alexnet.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a spec value (YAML), e.g. --set train.epochs=3; repeatable")


def _add_download(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--download", action="store_true",
                        help="let TFDS download a dataset that is not on this machine yet")


def _add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export", help="an export version directory, e.g. exports/lenet/1, a "
                                       "spec's export folder (exports/lenet) for its newest, or "
                                       "a .onnx or .tflite file converted in one")


# --- the subcommands: (one-line help, examples, arguments) -------------------------------------


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument("--output", default="exports", metavar="DIR",
                        help="where exports go: DIR/<spec name>/<version>/ (default: exports)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the model, print its layers, parameter counts and "
                             "multiply-accumulates (as `zoo summary`); no training")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"),
                        help="tf.distribute strategy (default: multi_worker when TF_CONFIG names "
                             "several workers, mirrored over several GPUs, else default)")
    parser.add_argument("--logical-cpus", type=int, metavar="N",
                        help="split the CPU into N logical devices (try multi-device code "
                             "without GPUs; use with --strategy mirrored)")
    parser.add_argument("--restart", action="store_true",
                        help="discard an unfinished run's checkpoint instead of resuming it")
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="also write TensorBoard logs of every epoch to DIR "
                             "(view with: tensorboard --logdir DIR)")
    parser.add_argument("--track", choices=TRACKERS,
                        help="log the run to MLflow: the spec as parameters, every epoch's "
                             "metrics, the export as artifacts (needs: pip install "
                             "keras-zoo[track]; view with: mlflow ui --backend-store-uri "
                             "sqlite:///mlflow.db)")
    parser.add_argument("--track-uri", metavar="URI",
                        help="the MLflow tracking store (default: $MLFLOW_TRACKING_URI, else "
                             "sqlite:///mlflow.db, artifacts in ./mlruns)")
    parser.add_argument("--results", metavar="FILE",
                        help="record the accuracy reached, with this command, under the spec's "
                             "name in FILE (default: OUTPUT/results.json, beside the exports; "
                             "--results '' records nothing). `zoo list --results FILE` shows "
                             "them; results/zoo.json is the zoo's own table (README)")
    _add_download(parser)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    _add_export(parser)
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the training one)")
    parser.add_argument("--split", help="split to evaluate on (default: the spec's eval split)")
    parser.add_argument("--json", metavar="PATH", help="also write the metrics as JSON here")
    parser.add_argument("--crops", type=int, choices=(1, 10), default=1,
                        help="10: average over AlexNet's ten crops (center, corners, mirrored), "
                             "for exports whose preprocessing crops the center (default: 1)")
    parser.add_argument("--confusion-matrix", metavar="PNG",
                        help="where the confusion matrix picture goes (default: "
                             "EXPORT/confusion_matrix-<dataset>-<split>.png)")
    _add_download(parser)


def _convert_arguments(parser: argparse.ArgumentParser) -> None:
    _add_export(parser)
    parser.add_argument("--to", dest="formats", action="append", required=True,
                        choices=CONVERTED_FORMATS, metavar="FORMAT",
                        help="onnx (model.onnx), litert (model.tflite) or litert_int8 "
                             "(model_int8.tflite: weights and activations quantized to int8); "
                             "repeatable")


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    _add_export(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="PNG, JPEG, GIF or BMP files, or folders of them")
    parser.add_argument("--top", type=int, default=5, metavar="K",
                        help="how many classes to show per image (default: 5)")
    parser.add_argument("--out", default="predictions", metavar="FOLDER",
                        help="where an autoencoder's reconstructions (any image output) go, "
                             "as IMAGE-OUTPUT.png (default: predictions)")


def _plot_arguments(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the picture to write: .png, .svg, .pdf, or .dot for Graphviz's "
                             "text (default: <spec name>.png)")
    parser.add_argument("--expand", nargs="*", metavar="BLOCK",
                        help="draw what is inside blocks: alone, every block down to its layers; "
                             "with names or patterns, those block instances one level down "
                             "(e.g. --expand stage2 'stage3*')")


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    _add_spec(parser)
    parser.add_argument("--param", dest="params", action="append", required=True,
                        metavar="KEY=DISTRIBUTION",
                        help="a key to search and its values: loguniform:LOW:HIGH, "
                             "uniform:LOW:HIGH, int:LOW:HIGH or choice:A,B,C (each read as "
                             "YAML, as --set reads it); repeatable")
    parser.add_argument("--trials", type=int, default=20, metavar="N",
                        help="the study's total number of trials; run again after an "
                             "interruption, only the missing ones run (default: 20)")
    parser.add_argument("--metric", help="the validation figure to optimize, e.g. val_loss "
                                         "(default: val_accuracy, or val_loss without labels)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="trials at once, each in its own process (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default: 0)")
    parser.add_argument("--output", default="exports", metavar="DIR",
                        help="the sweep goes to DIR/<spec name>/sweep/ (default: exports)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # what --jobs starts


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specs", default="specs", metavar="DIR",
                        help="the folder of spec files (default: specs)")
    parser.add_argument("--results", default="results/zoo.json", metavar="FILE",
                        help="the results training runs record (default: results/zoo.json)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--update", metavar="FILE",
                        help="replace the Markdown table between the `zoo list` markers in FILE "
                             "(README.md) instead of printing")


def _schema_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the schema to FILE instead of standard output")
    parser.add_argument("--reference", metavar="FILE",
                        help="instead, regenerate the key tables of the spec reference FILE "
                             "(docs/spec-reference.md) between their markers")


COMMANDS = {
    "train": ("train a spec on its dataset and export it", """\
examples:
  zoo train specs/lenet.yaml --set data.dataset=mnist_subset
  zoo train specs/resnet20.yaml --set data.dataset=mnist_subset --set train.epochs=3 \\
      --tensorboard logs/resnet20
  zoo train specs/lenet.yaml --set data.dataset=mnist_subset --track mlflow
  zoo train specs/lenet.yaml --dry-run          # the same as `zoo summary`
""", _train_arguments),
    "evaluate": ("evaluate an export on a dataset split, from the SavedModel alone", """\
examples:
  zoo evaluate exports/lenet                   # the newest version
  zoo evaluate exports/lenet/1 --dataset mnist_subset --split train --json metrics.json
""", _evaluate_arguments),
    "convert": ("convert an export to ONNX or LiteRT, checked against its SavedModel", """\
The file is written into the export's version folder, takes the raw images as the
SavedModel does (preprocessing inside) and must agree with it within 1e-4 on 100 eval
images (int8: the difference and the top-class agreement are reported). `zoo evaluate`
and `zoo predict` take the file as they take the folder. A spec's `export.formats` does
the same at the end of training.

examples:
  zoo convert exports/lenet --to onnx --to litert
  zoo convert exports/lenet/1 --to litert_int8
  zoo evaluate exports/lenet/1/model_int8.tflite      # accuracy, and its change from the SavedModel
""", _convert_arguments),
    "predict": ("top classes of your own images, or their reconstructions, from an export alone",
                """\
Images are converted to the export's input (grey or RGB, resized) as training did. A
classifier prints its top classes; any other model (an autoencoder) writes its image
outputs as PNG files into --out (my_digit.png -> predictions/my_digit-reconstruction.png)
and prints its other outputs.

examples:
  zoo predict exports/lenet my_digit.png
  zoo predict exports/lenet/1 photos/ --top 3
  zoo predict exports/unet noisy_digit.png --out denoised
""", _predict_arguments),
    "summary": ("layer table, parameter counts and multiply-accumulates of a spec", """\
examples:
  zoo summary specs/alexnet.yaml
  zoo summary specs/resnet50.yaml --set model.vars.depths=[3,4,23,3]
""", _add_spec),
    "plot": ("a picture of a spec's architecture (needs Graphviz's `dot`)", """\
Block level by default: each top-level block (e.g. a ResNet stage) is one box with its
output shape and parameters; --expand draws the layers inside.

examples:
  zoo plot specs/resnet152.yaml -o resnet152.png
  zoo plot specs/resnet50.yaml -o resnet50.svg --expand stage1
  zoo plot specs/lenet.yaml -o lenet.png --expand
""", _plot_arguments),
    "sweep": ("search hyper-parameters over trials of a spec (Optuna), resumable", """\
Trials train on a validation split (the last 10% of the train split if the spec has
none), never on the test split; poor ones are pruned. The study, each trial's folder,
trials.txt, sweep.png and <spec>_best.yaml (the best trial as a spec) go to
OUTPUT/<spec>/sweep/; run the same command again to resume an interrupted sweep.

examples:
  zoo sweep specs/lenet.yaml --set data.dataset=mnist_subset --trials 6 \\
      --param train.optimizer.sgd.learning_rate=loguniform:0.001:1
  zoo sweep specs/mlp.yaml --param train.batch_size=choice:32,64,128 \\
      --param train.optimizer.adam.learning_rate=loguniform:1e-4:1e-2 --jobs 2
""", _sweep_arguments),
    "list": ("every spec with its parameters, MACs, input, dataset and accuracy reached", """\
examples:
  zoo list
  zoo list --markdown
  zoo list --update README.md                  # regenerate the README's table
""", _list_arguments),
    "schema": ("the JSON Schema of the spec language, for editors", """\
Editors with the YAML language server check and complete a spec that starts with
  # yaml-language-server: $schema=spec.schema.json

examples:
  zoo schema -o specs/spec.schema.json
  zoo schema --reference docs/spec-reference.md   # the reference's tables of keys
""", _schema_arguments),
}


def _description(command: str) -> str:
    summary, examples, _ = COMMANDS[command]
    return f"{summary[0].upper()}{summary[1:]}.\n\n{examples}"


def _add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    COMMANDS[command][2](parser)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log output and full tracebacks")


def _parser(command: str, prog: str) -> argparse.ArgumentParser:
    """The parser of one command, standing alone (train.py, evaluate.py)."""
    parser = argparse.ArgumentParser(prog=prog, description=_description(command),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser, command)
    return parser


def _zoo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoo", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The Keras declarative model zoo: YAML specs -> Keras models -> SavedModels.",
        epilog="`zoo COMMAND --help` explains a command's arguments, with examples.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, _, _) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=_description(name),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_arguments(sub, name)
    return parser


def main(argv=None) -> int:
    """`zoo COMMAND ...` (the console script and `python -m zoo`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _zoo_parser().parse_args(argv)
    args.command_line = shlex.join(["zoo", *argv])  # recorded with a training run's result
    return _dispatch(args)


def train_main(argv=None) -> int:
    """train.py: `zoo train` standing alone."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser("train", "train.py").parse_args(argv)
    args.command, args.command_line = "train", shlex.join(["python", "train.py", *argv])
    return _dispatch(args)


def evaluate_main(argv=None) -> int:
    """evaluate.py: `zoo evaluate` standing alone."""
    args = _parser("evaluate", "evaluate.py").parse_args(argv)
    args.command = "evaluate"
    return _dispatch(args)


def _dispatch(args) -> int:
    if args.command != "schema":  # the schema needs no TensorFlow
        _import_tensorflow(args.verbose)
    return _run(lambda: RUN[args.command](args), args.verbose, INTERRUPTED.get(args.command))


# What Ctrl-C leaves, for the commands that write something; the others write nothing.
INTERRUPTED = {
    "train": "the last checkpoint is kept; run the same command again to resume from it",
    "sweep": "the study keeps its finished trials and the trial in training its last "
             "checkpoint; run the same command again to resume",
    "convert": "no file was left half-written and the export is as it was; the formats "
               "converted before the interruption are kept",
    "predict": "the pictures written before the interruption are whole, none is half-written",
}


def _run(job, verbose: bool, interrupted: str | None = None) -> int:
    """Run a command; a bad spec or argument becomes one message and exit code 2.

    Any other failure is one message and exit code 1; --verbose shows its traceback. Ctrl-C
    is exit code 130 with `interrupted`, what the command leaves behind.
    """
    from zoo.files import RunFailure
    from zoo.source import SpecError

    try:
        return job()
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"interrupted{': ' + interrupted if interrupted else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
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
