"""The Keras declarative model zoo: YAML specs -> Keras models -> SavedModels.

    import zoo
    spec = zoo.load_spec("specs/resnet50.yaml")   # validated, every value located
    model = zoo.build_model(spec)                 # a keras.Model (functional)
"""

from zoo.source import SpecError
from zoo.spec import Spec, load_spec
from zoo.build import build_model

__all__ = ["SpecError", "Spec", "load_spec", "build_model"]
