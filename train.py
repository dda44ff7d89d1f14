"""Train a model from a YAML spec, or show it.

    python train.py specs/lenet.yaml --dry-run      # layer table and parameter counts
    python train.py specs/resnet50.yaml --dry-run --set model.vars.depths=[3,4,23,3]

Exit code 0 on success, 2 for a bad spec or argument (one located message on
stderr), 1 for anything else. All the work is in `zoo.cli`.
"""

import sys

from zoo.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
