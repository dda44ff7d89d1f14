"""One worker of a real MultiWorkerMirroredStrategy cluster on 127.0.0.1 (used by test_training).

    TF_CONFIG=... python multiworker_worker.py SPEC OUTPUT WEIGHTS.npz [KEY=VALUE ...]

Runs the same training `train.py` runs (zoo.train, with the KEY=VALUE overrides), then saves
the worker's final weights so the test can check that every worker ends with the same model.
"""

import sys

import numpy as np

import zoo

spec, output, weights_file, *overrides = sys.argv[1:]
model = zoo.train(spec, overrides=overrides, output=output,
                  log=lambda message: print(message, flush=True)).model
np.savez(weights_file, *[np.asarray(weight) for weight in model.weights])
