"""What each `zoo` subcommand does, given its parsed arguments (see `zoo.cli`); each returns an
exit code. Bad input raises `SpecError`, which `zoo.cli` turns into one message and exit 2.

Modules are imported inside each command: `zoo schema` and `zoo --help` need no TensorFlow,
and the CLI quiets TensorFlow's start-up lines before it is first imported.
"""

from __future__ import annotations

import json
import os
import sys

# The exit codes (the contract in DESIGN.md): success, a failure of the run or the machine,
# bad input (a one-paragraph message on stderr, never a traceback), Ctrl-C.
EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def train(args) -> int:
    """Train and export (`zoo.train`), then record the result the run reached."""
    if args.dry_run:
        return summary(args)
    from zoo.catalog import record_result
    from zoo.run import train as train_spec

    result = train_spec(args.spec, overrides=args.overrides, output=args.output,
                        strategy=args.strategy, logical_cpus=args.logical_cpus,
                        restart=args.restart, tensorboard=args.tensorboard,
                        download=args.download, log=lambda message: print(message, flush=True),
                        progress=sys.stdout.isatty(), track=args.track,
                        track_uri=args.track_uri, tags={"zoo.command": args.command_line})
    results = os.path.join(args.output, "results.json") if args.results is None else args.results
    if result.export and results:  # the chief's export; other workers record nothing
        record_result(results, result.spec.name, result.metrics, result.dataset,
                      args.command_line, result.export)
        print(f"recorded the result in {results}", flush=True)
    return EXIT_OK


def summary(args) -> int:
    """The layer table and counts, the settings with their defaults, and the `expect` check;
    every check a run makes before training (zoo.preflight) runs first."""
    from zoo.build import build_model
    from zoo.preflight import check_before_training
    from zoo.spec import load_spec
    from zoo.summary import check_expectations, layer_table, settings
    from zoo.weights import initial_weights

    spec = load_spec(args.spec, args.overrides)
    model = build_model(spec)
    check_before_training(spec, model)
    start_from = initial_weights(spec, model)
    print(f"{spec.name} ({spec.file})")
    if spec.description:
        print(" ".join(spec.description.split()))
    print()
    print(layer_table(model))
    print()
    print(settings(spec))
    if start_from:
        print(start_from.report())
    if not spec.expect:
        return EXIT_OK
    if spec.model_changed:
        print("expect: not checked (it describes the model the files define; --set changed it)")
        return EXIT_OK
    problems = check_expectations(spec, model)
    for problem in problems:
        print(f"expect mismatch: {problem}", file=sys.stderr)
    if not problems:
        print("expect: " + ", ".join(f"{key} {value:,}" if isinstance(value, int) else
                                     f"{key} {list(value)}" for key, value in spec.expect.items()
                                     if value is not None) + ": all match")
    return EXIT_BAD_INPUT if problems else EXIT_OK


def evaluate(args) -> int:
    from zoo.evaluation import evaluate_export, newest_version, report
    from zoo.plots import confusion_matrix_path, plot_confusion_matrix

    directory = newest_version(args.export)
    if directory != args.export:
        print(f"evaluating the newest version, {directory}")
    metrics = evaluate_export(directory, args.dataset, args.split, args.download, args.crops)
    print(report(metrics))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(metrics, handle, indent=2)
    if "confusion_matrix" in metrics:
        picture = args.confusion_matrix or confusion_matrix_path(directory, metrics)
        try:
            plot_confusion_matrix(metrics, picture)
            print(f"confusion matrix picture: {picture}")
        except OSError as exc:  # e.g. a read-only model store: the metrics above still stand
            print(f"warning: cannot write {picture} ({exc.strerror}); choose another place "
                  "with --confusion-matrix PNG", file=sys.stderr)
    return EXIT_OK


def convert(args) -> int:
    from zoo.conversion import convert as convert_export
    from zoo.evaluation import newest_version
    from zoo.source import SpecError

    directory = newest_version(args.export)
    if os.path.isfile(directory):
        raise SpecError(None, "", f"{directory}: give the export folder the file is in, which "
                                  "holds the SavedModel every format is converted from")
    convert_export(directory, list(dict.fromkeys(args.formats)),
                   log=lambda message: print(message, flush=True))
    return EXIT_OK


def predict(args) -> int:
    from zoo.evaluation import newest_version
    from zoo.predict import Predictor, image_files

    predictor = Predictor(newest_version(args.export))
    files = image_files(args.images)
    if not predictor.classifier:
        return _predict_outputs(predictor, files, args.out)
    for file in files:
        top = predictor.top_classes(file, args.top)  # a file that is no image stops here
        print(file)
        for name, probability in top:
            print(f"  {probability:7.2%}  {name}")
    return EXIT_OK


def _predict_outputs(predictor, files, folder: str) -> int:
    """A model that is no classifier: its image outputs as PNG files in `folder`, the
    others' values printed."""
    from zoo.predict import picture_stems
    from zoo.source import SpecError

    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        raise SpecError(None, "--out", f"{folder} is a file; give a folder for the pictures "
                                       "(it is made if missing)") from None
    except OSError as exc:
        raise SpecError(None, "--out", f"cannot write pictures to {folder}: "
                                       f"{exc.strerror}") from None
    for file, stem in zip(files, picture_stems(files)):
        lines = predictor.write_outputs(file, stem, folder)  # a file that is no image stops here
        print(file)
        for line in lines:
            print(f"  {line}")
    return EXIT_OK


def plot(args) -> int:
    from zoo.build import build_model
    from zoo.diagram import architecture_dot, render
    from zoo.graph import expand
    from zoo.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    graph = expand(spec)
    model = build_model(spec)
    output = args.output or f"{spec.name}.png"
    expand_all = args.expand is not None and not args.expand
    render(architecture_dot(spec, graph, model, set(args.expand or ()), expand_all), output)
    print(f"wrote {output}")
    return EXIT_OK


def sweep(args) -> int:
    """Search hyper-parameters (`zoo.run_sweep`); the trials' table and the best spec."""
    from zoo.sweep import run_sweep

    run_sweep(args.spec, args.params, trials=args.trials, overrides=args.overrides,
              output=args.output, metric=args.metric, seed=args.seed, jobs=args.jobs,
              log=lambda message: print(message, flush=True), worker=args.worker)
    return EXIT_OK


def list_specs(args) -> int:
    from zoo.catalog import catalog_rows, markdown_table, text_table, update_file

    rows = catalog_rows(args.specs, args.results)
    if args.update:
        changed = update_file(args.update, markdown_table(rows))
        print(f"{args.update}: the zoo table was {'updated' if changed else 'already current'}")
    else:
        print(markdown_table(rows) if args.markdown else text_table(rows))
    return EXIT_OK


def schema(args) -> int:
    from zoo.files import update_text, write_text_atomically
    from zoo.schema import schema_text, with_key_tables

    if args.reference:
        changed = update_text(args.reference, lambda text: with_key_tables(text, args.reference))
        print(f"{args.reference}: the key tables were "
              f"{'updated' if changed else 'already current'}")
    elif args.output:
        write_text_atomically(args.output, schema_text())
    else:
        sys.stdout.write(schema_text())
    return EXIT_OK


RUN = {"train": train, "evaluate": evaluate, "convert": convert, "predict": predict,
       "summary": summary, "plot": plot, "sweep": sweep, "list": list_specs, "schema": schema}
