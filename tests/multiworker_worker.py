"""One worker of a real MultiWorkerMirroredStrategy cluster on 127.0.0.1 (used by test_training).

    TF_CONFIG=... python multiworker_worker.py SPEC OUTPUT WEIGHTS.npz [--set ...]

Runs the same training `train.py` runs, then saves the worker's final weights
so the test can check that every worker ends with the same model.
"""

import sys

import numpy as np

from zoo.cli import parse_train_arguments
from zoo.run import run_training

spec, output, weights_file, *rest = sys.argv[1:]
args = parse_train_arguments([spec, "--output", output, *rest])
model, _ = run_training(args, log=lambda message: print(message, flush=True))
np.savez(weights_file, *[np.asarray(weight) for weight in model.weights])
