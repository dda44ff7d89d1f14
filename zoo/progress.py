"""A per-step progress bar for a training epoch on a terminal: Keras's own Progbar (steps,
ETA while running, time per step at the end, running loss and accuracy). `zoo train` draws
it when its output is a terminal; in a log file or CI each epoch's line is the progress."""

from __future__ import annotations

import keras

SHOWN = ("loss", "accuracy")  # the running figures the bar shows


class EpochProgress:
    """The bar of one epoch of `steps` steps, `done` of them done before a resume: the bar
    then counts the steps left, so that its rate and ETA are this run's."""

    def __init__(self, steps: int, done: int = 0):
        self.done = done
        self.bar = keras.utils.Progbar(steps - done, stateful_metrics=SHOWN)

    def update(self, number: int, totals: dict) -> None:
        """After step `number` of the epoch, with the epoch's running totals."""
        count = totals.get("count") or 1.0
        self.bar.update(number - self.done, [(name, totals[name] / count) for name in SHOWN
                                             if name in totals])
