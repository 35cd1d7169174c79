"""Metrics against hand-computed cases."""

import math

import numpy as np
import pytest

from physioclr_ext.evaluation.metrics import (
    classification_metrics,
    infer_task_type,
    probabilities,
    sigmoid,
    softmax,
)


def test_binary_hand_computed():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.6, 0.7, 0.4, 0.9])
    m = classification_metrics(y, p, "binary")
    # predictions at 0.5: 0 1 1 0 1 -> 3 of 5 right
    assert m["accuracy"] == pytest.approx(3 / 5)
    # recall class0 = 1/2, class1 = 2/3
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # F1 class1: tp=2 fp=1 fn=1 -> 2/3; class0: tp=1 fp=1 fn=1 -> 1/2
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # AUROC: pairs (neg, pos): 0.1<all 3 pos; 0.6 vs 0.7 ok, 0.4 no, 0.9 ok -> 5/6
    assert m["auroc"] == pytest.approx(5 / 6)
    # AP: ranking .9(+) .7(+) .6(-) .4(+) .1(-): precision at positives 1, 1, 3/4 -> mean 11/12
    assert m["auprc"] == pytest.approx((1 + 1 + 3 / 4) / 3)


def test_binary_one_class_gives_nan_auc():
    m = classification_metrics(np.array([1, 1]), np.array([0.2, 0.8]), "binary")
    assert math.isnan(m["auroc"]) and math.isnan(m["auprc"])
    assert m["accuracy"] == pytest.approx(0.5)


def test_multiclass_hand_computed():
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7]])
    m = classification_metrics(y, p, "multiclass")
    assert m["accuracy"] == pytest.approx(3 / 4)
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    # class 2 scores: .1 .3 .3 .7, positives .3(idx2) .7 -> negatives .1, .3
    # pairs: (.1,.3)=1 (.1,.7)=1 (.3,.3)=0.5 (.3,.7)=1 -> 3.5/4
    auc2 = 3.5 / 4
    # class 1 scores .1 .5 .6 .2, positive .5 beats .1 and .2 but not .6 -> 2/3
    auc1 = 2 / 3
    assert m["auroc"] == pytest.approx((1 + auc1 + auc2) / 3)


def test_multilabel_means_over_labels():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.4], [0.2, 0.1]])
    m = classification_metrics(y, p, "multilabel")
    # label0 all right, label1: preds 0 1 0 0 vs 0 1 1 0 -> 3/4
    assert m["accuracy"] == pytest.approx((1 + 3 / 4) / 2)
    assert m["auroc"] == pytest.approx(1.0)


def test_probabilities_and_task_inference():
    assert sigmoid(np.array([0.0, 1000.0, -1000.0])).tolist() == [0.5, 1.0, 0.0]
    s = softmax(np.array([[1.0, 1.0], [0.0, math.log(3.0)]]))
    np.testing.assert_allclose(s, [[0.5, 0.5], [0.25, 0.75]])
    assert probabilities(np.array([[0.0], [2.0]]), "binary").shape == (2,)
    assert infer_task_type(np.zeros((4, 1)), 1) == "binary"
    assert infer_task_type(np.zeros((4, 1)), 5) == "multiclass"
    assert infer_task_type(np.zeros((4, 3)), 3) == "multilabel"
    with pytest.raises(ValueError):
        infer_task_type(np.zeros((4, 2)), 3)
