"""The figures `zoo evaluate` reports, against values worked out by hand on small cases."""

import numpy as np
import pytest

from zoo.evaluation import classification_metrics, report

# Seven examples of three classes; the arg-max predictions are 0 0 1 0 1 1 0: class 'two' is
# never predicted.
LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PROBABILITIES = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .7, .1], [.6, .3, .1], [.1, .8, .1],
                          [.2, .7, .1], [.5, .4, .1]])


def test_per_class_precision_recall_f1_and_their_macro_averages():
    metrics = classification_metrics(LABELS, PROBABILITIES, ["zero", "one", "two"], "d", "test")
    # zero: predicted 4 times, 2 right; one: predicted 3 times, 1 right; two: never predicted
    assert metrics["per_class"] == {
        "zero": {"recall": 1.0, "precision": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        "one": {"recall": 0.5, "precision": pytest.approx(1 / 3), "f1": pytest.approx(0.4),
                "support": 2},
        "two": {"recall": 0.0, "precision": 0.0, "f1": 0.0, "support": 3}}
    assert metrics["macro_precision"] == pytest.approx((0.5 + 1 / 3 + 0) / 3)
    assert metrics["macro_recall"] == pytest.approx(0.5)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.4 + 0) / 3)
    assert metrics["accuracy"] == pytest.approx(3 / 7)
    assert "roc_auc" not in metrics  # three classes
    assert report(metrics) == """\
d / test: 7 examples
accuracy             0.4286
loss                 1.3146
macro_precision      0.2778
macro_recall         0.5000
macro_f1             0.3556
per class:           accuracy/recall  precision      f1  support
  zero                        1.0000     0.5000  0.6667        2
  one                         0.5000     0.3333  0.4000        2
  two                         0.0000     0.0000  0.0000        3
confusion matrix (rows: true class, columns: predicted):
        zero   one   two
zero       2     0     0
one        1     1     0
two        1     2     0"""


def test_two_classes_have_a_roc_auc_from_the_second_class_probability():
    labels = np.array([0, 0, 1, 1])
    dog = np.array([0.1, 0.6, 0.65, 0.2])
    metrics = classification_metrics(labels, np.stack([1 - dog, dog], axis=1), ["cat", "dog"],
                                     "d", "test")
    # of the 4 (dog, cat) pairs, the dog scores higher in 3: 0.65 > 0.1, 0.65 > 0.6, 0.2 > 0.1
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert "roc_auc              0.7500" in report(metrics).splitlines()


def test_a_class_absent_from_the_split_has_no_figures_and_stays_out_of_the_averages():
    metrics = classification_metrics(np.array([0, 0]), np.array([[.9, .1], [.4, .6]]),
                                     ["cat", "dog"], "d", "test[:2]")
    assert metrics["per_class"]["dog"] == {"recall": None, "precision": None, "f1": None,
                                           "support": 0}
    assert (metrics["macro_precision"], metrics["macro_recall"]) == (1.0, 0.5)
    assert metrics["roc_auc"] is None  # undefined with one class
    assert report(metrics).splitlines()[6:10] == [
        "roc_auc              n/a",
        "per class:           accuracy/recall  precision      f1  support",
        "  cat                         0.5000     1.0000  0.6667        2",
        "  dog                            n/a        n/a     n/a        0"]
