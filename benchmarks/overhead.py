"""Zero overhead: ResNet-50 built from specs/resnet50_keras.yaml vs keras.applications.ResNet50.

    python benchmarks/overhead.py                  # the full run (BENCHMARKS.md)
    python benchmarks/overhead.py --smoke          # seconds: checks it still runs

All sides train with the same stock Keras `fit` on the same in-memory batches, so only
the model differs: the spec's as the zoo builds it (its fused BatchNormalization), the
same network rebuilt from Keras's own layers (the declarative layer's cost alone), and
keras.applications. Each measurement is its own process, the sides alternate, and the
table shows medians. The build-time row compares ResNet-152 from YAML with
keras.applications.ResNet152 (construction only, no weights). The last row compares the
traced inference graphs: the same op types in the same order mean the declarative layer
hands TensorFlow the very computation keras.applications does.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import (  # noqa: E402
    benchmark_parser, interleaved, markdown_table, measured_as_asked, median, peak_rss_mb)

SIDES = ("spec", "spec, Keras layers", "applications")


def build(side: str, depth: int, image: int):
    import keras

    import zoo

    shape = [image, image, 3]
    if side.startswith("spec"):
        overrides = [f"model.inputs.image={shape}"]
        if depth == 152:
            overrides.append("model.vars.depths=[3,8,36,3]")
        return zoo.build_model(os.path.join("specs", "resnet50_keras.yaml"), overrides)
    application = {50: keras.applications.ResNet50, 152: keras.applications.ResNet152}[depth]
    return application(weights=None, input_shape=tuple(shape))


def graph_digest(model) -> str:
    """A digest of the op types, in creation order, of the model's traced inference graph:
    equal digests mean TensorFlow is handed the same computation."""
    import hashlib

    import tensorflow as tf

    forward = tf.function(lambda images: model(images, training=False))
    graph = forward.get_concrete_function(
        tf.TensorSpec([None, *model.inputs[0].shape[1:]])).graph
    types = " ".join(op.type for op in graph.get_operations())
    return hashlib.sha256(types.encode()).hexdigest()[:12]


def measure(side: str, image, batch, steps, build_depth) -> dict:
    image, batch, steps, build_depth = int(image), int(batch), int(steps), int(build_depth)
    from benchmarks.measure import inference, keras_fit
    from zoo.layers import with_stock_keras_layers

    began = time.perf_counter()
    build(side, build_depth, 224)
    build_seconds = time.perf_counter() - began
    model = build(side, 50, image)
    if side == "spec, Keras layers":
        model = with_stock_keras_layers(model)
    return {"build_s": build_seconds, "train_img_s": keras_fit(model, batch, steps),
            "infer_img_s": inference(model, batch, steps), "peak_rss_mb": peak_rss_mb(),
            "graph": graph_digest(model)}


def main():
    parser = benchmark_parser(__doc__, repeats=5, smoke="tiny sizes, one repetition")
    parser.add_argument("--image", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if measured_as_asked(args, measure):
        return
    build_depth = 152
    if args.smoke:
        args.image, args.batch, args.steps, args.repeats, build_depth = 32, 2, 1, 1, 50
    cases = [[side, str(args.image), str(args.batch), str(args.steps), str(build_depth)]
             for side in SIDES]
    spec, spec_keras_layers, application = interleaved(__file__, cases, args.repeats,
                                                        measure if args.smoke else None)
    rows = []
    for key, label in (("train_img_s", f"training, images/s ({args.image}x{args.image}, "
                                        f"batch {args.batch})"),
                       ("infer_img_s", "inference, images/s"),
                       ("peak_rss_mb", "peak memory, MB"),
                       ("build_s", f"building ResNet-{build_depth}, s")):
        ours, plain, theirs = (median(figures, key)
                               for figures in (spec, spec_keras_layers, application))
        rows.append([label, f"{ours:.3g}", f"{plain:.3g}", f"{theirs:.3g}",
                     f"{ours / theirs:.3f}", f"{plain / theirs:.3f}"])
    digests = [figures[0]["graph"] for figures in (spec, spec_keras_layers, application)]
    rows.append(["inference graph (digest of its op types in order)", *digests,
                 *("same" if digest == digests[2] else "different" for digest in digests[:2])])
    print(f"medians of {args.repeats} alternating runs each; ratios to keras.applications")
    print(markdown_table(["figure", "from the spec", "from the spec, Keras layers",
                          "keras.applications", "ratio", "ratio, Keras layers"], rows))


if __name__ == "__main__":
    main()
