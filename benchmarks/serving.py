"""Serving speed (issue 21, item 4): an export's batch-1 latency and batch-64 throughput
against the same network in PyTorch 2.13 and in ONNX Runtime on the zoo's own ONNX export.

    python benchmarks/serving.py --torch-python /work/venv-pytorch/bin/python
        # the full run: ResNet-50 (224x224) and LeNet, threads 2 and 1, 3 repetitions
    python benchmarks/serving.py --models lenet --threads 1 --repeats 5
    python benchmarks/serving.py --smoke      # a minute or two: checks it still runs

The networks have random weights (speed does not depend on them): specs/resnet50.yaml (its
preprocessing without the resize and crop, so every side gets 224x224 images) and
specs/lenet.yaml, built in float32 and exported by the zoo's own code (zoo.export.export),
then converted to ONNX by its own converter (zoo.conversion, tf2onnx). PyTorch's side is the
same network written by hand (benchmarks/torch_resnet50.py, benchmarks/torch_serving.py; the
header prints both parameter counts), from a benchmark-only environment (--torch-python, as
benchmarks/pytorch_comparison.py). Every side takes the same raw uint8 NHWC batch, applies
the same preprocessing and returns probabilities as numpy. Sides:
- SavedModel: the export's `serving_default`, loaded with tf.saved_model.load (batch
  normalization folded into the convolutions, as zoo/export.py now writes it);
- SavedModel, unfolded: the export as written before that change (before/after);
- SavedModel + XLA: the loaded signature called inside tf.function(jit_compile=True);
- SavedModel mixed_bfloat16: the model built under the mixed_bfloat16 policy, what a
  model trained with `train.precision: auto` exports on this CPU (not float32);
- SavedModel, weights cached: the export served by a process with
  TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1, which lets oneDNN keep each convolution's weights in
  its own layout from one call to the next (safe only where nothing trains);
- SavedModel, constant weights: the loaded signature with its variables made constants
  (convert_variables_to_constants_v2), the same caching without the environment variable;
- SavedModel, session: the export loaded into a TF1 Session (tf.compat.v1.saved_model.loader)
  and called through Session.make_callable, TensorFlow Serving's own path (it serves a
  SavedModelBundle with Session::Run) less its network: the graph's cost without the eager
  function call that tf.saved_model.load's signatures go through;
- ONNX Runtime: model.onnx, CPUExecutionProvider, all graph optimisations (its default);
- torch eager NCHW, torch eager channels_last, torch.compile channels_last (inductor), and
  torch bf16 channels_last (eager under torch.autocast bfloat16): all under inference_mode.
Threads are matched: TensorFlow's intra- and inter-op pools, ONNX Runtime's intra-op pool
and torch.set_num_threads all get the same number. Each measurement is its own process; the
sides alternate within each repetition; a process warms up (compiles), then times single
calls: batch-1 latency is the median call's milliseconds, batch-64 throughput 64 over the
median call's seconds. The table shows the median over repetitions with their range, and
the speed ratio of the SavedModel to each side (above 1: the export is faster).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    ROOT, add_torch_python, benchmark_parser, interleaved, markdown_table, measured_as_asked,
    torch_python)

IMAGENET_PREPROCESS = ("data.preprocess={rescale: 0.00392156862745098, "
                       "mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}")
MODELS = {"resnet50": ("specs/resnet50.yaml", [IMAGENET_PREPROCESS]),
          "lenet": ("specs/lenet.yaml", [])}
# the exports prepared, by folder name: (dtype policy, batch normalization folded)
EXPORTS = {"folded": ("float32", True), "unfolded": ("float32", False),
           "bfloat16": ("mixed_bfloat16", True)}
# Keras side -> the export it serves
SAVED_MODEL_SIDES = {"SavedModel": "folded", "SavedModel, unfolded": "unfolded",
                     "SavedModel + XLA": "folded", "SavedModel mixed_bfloat16": "bfloat16",
                     "SavedModel, weights cached": "folded",
                     "SavedModel, constant weights": "folded",
                     "SavedModel, session": "folded"}
ONNX = "ONNX Runtime"
# PyTorch side -> (channels_last, torch.compile, bfloat16 autocast)
TORCH_SIDES = {"torch eager NCHW": (False, False, False),
               "torch eager channels_last": (True, False, False),
               "torch.compile channels_last": (True, True, False),
               "torch bf16 channels_last": (True, False, True)}
SIDES = (*SAVED_MODEL_SIDES, ONNX, *TORCH_SIDES)
LARGE = 64  # the throughput batch


def prepare(model: str, folder: str) -> dict:
    """Export the model with random weights as each of EXPORTS into `folder`, and the
    float32 folded one to ONNX; returns the trainable parameters and the largest difference
    between the float32 files' probabilities on a random batch."""
    import keras
    import numpy as np

    import zoo
    from zoo.conversion import FORMATS, float32_serving
    from zoo.data import DataInfo
    from zoo.evaluation import load_metadata
    from zoo.export import export
    from zoo.runtimes import open_model

    path, overrides = MODELS[model]
    spec = zoo.load_spec(os.path.join(ROOT, path), overrides)
    for name, (policy, fold) in EXPORTS.items():
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(0)
        network = zoo.build_model(spec)
        info = DataInfo("random", tuple(network.inputs[0].shape[1:]),
                        [str(label) for label in range(network.outputs[0].shape[-1])])
        export(spec, network, info, os.path.join(folder, name), history={}, metrics={},
               dataset={"name": "random", "eval_split": "none"},
               fold_batch_norm=fold)
    keras.config.set_dtype_policy("float32")
    folded = export_of(folder, "folded", model)
    FORMATS["onnx"].write(float32_serving(folded, load_metadata(folded)),
                          os.path.join(folded, "model.onnx"), load_metadata(folded))
    images = random_images(info.image_shape, 8)
    outputs = [open_model(path)(images)["probabilities"] for path in (
        folded, export_of(folder, "unfolded", model), os.path.join(folded, "model.onnx"))]
    return {"params": sum(int(np.prod(weight.shape)) for weight in network.trainable_weights),
            "difference": max(float(np.abs(output - outputs[0]).max()) for output in outputs)}


def export_of(folder: str, name: str, model: str) -> str:
    return os.path.join(folder, name, os.path.basename(MODELS[model][0])[:-5], "1")


def random_images(shape, count: int):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (count, *shape), dtype=np.uint8)


def server(side: str, model: str, threads: int, folder: str):
    """A function of a numpy uint8 batch -> probabilities, and the images' shape."""
    if side in TORCH_SIDES:  # this process is the PyTorch environment's python
        from benchmarks.torch_serving import server as torch_server

        shape = (224, 224, 3) if model == "resnet50" else (28, 28, 1)
        return torch_server(model, threads, *TORCH_SIDES[side]), shape
    if side == ONNX:  # no TensorFlow in this process
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(
            os.path.join(export_of(folder, "folded", model), "model.onnx"), options,
            providers=["CPUExecutionProvider"])
        source = session.get_inputs()[0]
        return (lambda images: session.run(None, {source.name: images})[0]), source.shape[1:]
    if side.endswith("weights cached"):  # read once, at the first convolution
        os.environ["TF_ONEDNN_ASSUME_FROZEN_WEIGHTS"] = "1"
    from zoo.devices import use_threads

    use_threads(threads)
    import tensorflow as tf

    path = export_of(folder, SAVED_MODEL_SIDES[side], model)
    if side.endswith("session"):
        return session_server(path, threads)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    call = lambda image: signature(image=image)  # noqa: E731
    if side.endswith("XLA"):
        call = tf.function(call, jit_compile=True)
    if side.endswith("constant weights"):
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2)

        frozen = convert_variables_to_constants_v2(signature)  # returns a flat list
        call = lambda image: tf.nest.pack_sequence_as(  # noqa: E731
            signature.structured_outputs, frozen(image=image))
    shape = signature.structured_input_signature[1]["image"].shape[1:]

    def serve(images, loaded=loaded):  # holding `loaded` keeps the signature's variables
        return call(tf.constant(images))["probabilities"].numpy()

    return serve, shape


def session_server(path: str, threads: int):
    """The export's serving_default run in a TF1 Session, as TensorFlow Serving runs it."""
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads))
    with graph.as_default():
        signature = tf.compat.v1.saved_model.loader.load(
            session, ["serve"], path).signature_def["serving_default"]
    source = signature.inputs["image"]
    call = session.make_callable(signature.outputs["probabilities"].name, [source.name])
    return call, tuple(dimension.size for dimension in source.tensor_shape.dim[1:])


def measure(side: str, model: str, threads, folder: str, calls) -> dict:
    """Batch-1 latency (ms) and batch-64 images/s, medians of `calls` timed calls each
    (a quarter of them at batch 64, at least 2), after warm-up calls of both sizes."""
    threads, calls = int(threads), int(calls)
    serve, shape = server(side, model, threads, folder)
    images = random_images(shape, LARGE)

    def median_seconds(batch, count):
        seconds = []
        for _ in range(count):
            began = time.perf_counter()
            serve(images[:batch])
            seconds.append(time.perf_counter() - began)
        return statistics.median(seconds)

    median_seconds(1, 2), median_seconds(LARGE, 1)  # tracing, compiling, first slow calls
    latency = median_seconds(1, calls)
    return {"latency_ms": latency * 1000,
            "images_s": LARGE / median_seconds(LARGE, max(2, calls // 4))}


def median_and_range(values: list) -> str:
    def shown(value):  # LeNet's latencies are fractions of a millisecond
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"

    middle = statistics.median(values)
    return shown(middle) if len(values) == 1 else (
        f"{shown(middle)} ({shown(min(values))}-{shown(max(values))})")


def rows(threads: str, sides: list, results: dict) -> list:
    """One model at one thread count; `results` side -> figures of every repetition."""
    medians = {side: {key: statistics.median(figure[key] for figure in figures)
                      for key in ("latency_ms", "images_s")}
               for side, figures in results.items()}
    ours = medians.get("SavedModel")
    rows = []
    for side in sides:
        figures = results[side]
        ratios = (["-", "-"] if ours is None else
                  [f"{medians[side]['latency_ms'] / ours['latency_ms']:.2f}",
                   f"{ours['images_s'] / medians[side]['images_s']:.2f}"])
        rows.append([threads, side,
                     median_and_range([figure["latency_ms"] for figure in figures]),
                     median_and_range([figure["images_s"] for figure in figures]),
                     *ratios])
    return rows


def main():
    parser = benchmark_parser(__doc__, repeats=3,
                              smoke="LeNet, one thread, 4 timed calls, one repetition")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--calls", type=int, default=0,
                        help="timed batch-1 calls per measurement (default: 12 for ResNet-50, "
                             "200 for LeNet)")
    add_torch_python(parser)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    python = torch_python(args.torch_python)
    sides = args.sides
    if python is None:
        print("No PyTorch python (--torch-python or $ZOO_TORCH_PYTHON): measuring the "
              "TensorFlow and ONNX Runtime sides only.")
        sides = [side for side in sides if side not in TORCH_SIDES]
    if args.smoke:
        args.models, args.threads, args.calls, args.repeats = ["lenet"], [1], 4, 1
    with tempfile.TemporaryDirectory() as folder:
        prepared = {model: prepare(model, os.path.join(folder, model)) for model in args.models}
        cases = [[side, model, str(threads), os.path.join(folder, model),
                  str(args.calls or (12 if model == "resnet50" else 200))]
                 for model in args.models for threads in args.threads for side in sides]
        results = interleaved(__file__, cases, args.repeats, python=lambda case: (
            python if case[0] in TORCH_SIDES else sys.executable))
    for model in args.models:
        counts = [f"Keras {prepared[model]['params']:,}"]
        if python and any(side in TORCH_SIDES for side in sides):
            counts.append(f"PyTorch {torch_parameters(python, model):,}")
        print(f"\n{model}: trainable parameters {', '.join(counts)}; float32 SavedModel, "
              f"unfolded and ONNX agree within {prepared[model]['difference']:.1g}; medians "
              f"of {args.repeats} repetitions (their range)")
        lines = []
        for threads in map(str, args.threads):
            lines += rows(threads, sides, {case[0]: figures for case, figures in zip(
                cases, results) if case[1] == model and case[2] == threads})
        print(markdown_table(["threads", "side", "batch-1 latency ms", f"batch-{LARGE} images/s",
                              "SavedModel speed / side, batch 1",
                              f"SavedModel speed / side, batch {LARGE}"], lines))


def torch_parameters(python: str, model: str) -> int:
    import subprocess

    counted = subprocess.run(
        [python, "-c", "from benchmarks.torch_serving import parameters; "
                       f"print(parameters({model!r}))"],
        capture_output=True, text=True, check=True, cwd=ROOT, env=dict(os.environ,
                                                                       PYTHONPATH=ROOT))
    return int(counted.stdout)


if __name__ == "__main__":
    main()
