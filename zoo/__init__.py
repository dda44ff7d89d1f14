"""The Keras declarative model zoo: YAML specs -> Keras models -> SavedModels.

    import zoo
    spec = zoo.load_spec("specs/resnet50.yaml")   # validated, every value located
    model = zoo.build_model(spec)                 # a keras.Model (functional)
    result = zoo.train("specs/lenet.yaml", overrides=["data.dataset=mnist_subset"])
    result.export, result.metrics                 # exports/lenet/1, {"accuracy": ...}

The public names are imported on first use, so `import zoo.cli` stays light
and can quiet TensorFlow's logging before TensorFlow is imported.
"""

import importlib

_PUBLIC = {"SpecError": "zoo.source", "Spec": "zoo.spec", "load_spec": "zoo.spec",
           "spec_from_text": "zoo.spec", "build_model": "zoo.build", "train": "zoo.run",
           "TrainResult": "zoo.run", "run_sweep": "zoo.sweep", "convert": "zoo.conversion",
           "evaluate_export": "zoo.evaluation", "Diverged": "zoo.divergence"}

__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute '{name}'")
