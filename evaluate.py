"""Evaluate an exported model on a dataset split, from its SavedModel alone.

    python evaluate.py exports/lenet/1
    python evaluate.py exports/lenet/1 --dataset mnist_subset --split test --json metrics.json

Prints accuracy, top-5 accuracy (more than 5 classes), loss, per-class
accuracy and the confusion matrix. Exit code 0 on success, 2 for bad input,
1 for anything else. All the work is in `zoo.cli` and `zoo.evaluation`.
"""

import sys

from zoo.cli import evaluate_main

if __name__ == "__main__":
    sys.exit(evaluate_main())
