"""One worker of a real MultiWorkerMirroredStrategy cluster on 127.0.0.1 (used by test_training).

    TF_CONFIG=... python multiworker_worker.py SPEC OUTPUT WEIGHTS.npz [KEY=VALUE ...]

Runs the same training `train.py` runs (zoo.train, with the KEY=VALUE overrides), then saves
the worker's final weights and precision so the test can check that every worker ends with
the same model. ZOO_TEST_BFLOAT16=yes or no makes the worker see a CPU with or without
bfloat16 instructions (a cluster of mixed machines).
"""

import os
import sys

import numpy as np

import zoo
import zoo.devices

if "ZOO_TEST_BFLOAT16" in os.environ:
    zoo.devices.cpu_has_bfloat16 = lambda: os.environ["ZOO_TEST_BFLOAT16"] == "yes"
spec, output, weights_file, *overrides = sys.argv[1:]
model = zoo.train(spec, overrides=overrides, output=output,
                  log=lambda message: print(message, flush=True)).model
np.savez(weights_file, *[np.asarray(weight) for weight in model.weights],
         precision=model.layers[1].dtype_policy.name)
