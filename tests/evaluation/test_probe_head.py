"""``probe_head``: the linear probe as a head on raw embeddings (LP-FT's initial classifier)."""

import numpy as np
import pytest

from physioclr_ext.evaluation.metrics import probabilities
from physioclr_ext.evaluation.probes import SATURATED_LOGIT, linear_probe, probe_head


def _data(task, n, dim=7, k=3, seed=0):
    """Noisy labels from one linear rule on features with different scales and offsets (``seed``: the rows)."""
    fixed = np.random.default_rng(100)
    scale, offset, rule = fixed.uniform(0.1, 5.0, dim), fixed.normal(0, 3.0, dim), fixed.normal(size=(dim, k))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)) * scale + offset
    scores = (x - offset) / scale @ rule + rng.normal(0, 1.0, (n, k))
    if task == "binary":
        return x, (scores[:, 0] > np.median(scores[:, 0])).astype(int)
    if task == "multiclass":
        return x, scores.argmax(axis=1)
    return x, (scores > np.median(scores, axis=0)).astype(int)


def _splits(task, dim=7, k=3):
    return [_data(task, n, dim, k, seed) for n, seed in ((60, 0), (40, 1), (50, 2))]


@pytest.mark.parametrize("task,rows", [("binary", 1), ("multiclass", 3), ("multilabel", 3)])
def test_head_logits_give_the_probes_test_probabilities(task, rows):
    train, valid, (xte, yte) = _splits(task)
    ref = linear_probe(train, valid, (xte, yte), task)
    weight, bias, info = probe_head(train, valid, task)
    assert weight.shape == (rows, 7) and bias.shape == (rows,)
    assert info["best_C"] == ref["best_C"] and info["valid_scores"] == ref["valid_scores"]
    p = probabilities(xte @ weight.T + bias, task)
    assert p.shape == ref["probabilities"].shape
    np.testing.assert_allclose(p, ref["probabilities"], rtol=0, atol=1e-6)
    assert 0.05 < float(np.std(p)) and ref["metrics"]["auroc"] > 0.6  # a fitted head, not a constant one


def test_folding_matches_a_hand_computed_standardisation():
    """One feature, one C: w' x + b' equals w (x - mean) / std + b for the fitted (w, b)."""
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    y = np.array([0, 0, 1, 0, 1, 1])
    weight, bias, _ = probe_head((x, y), (x, y), "binary", Cs=(1.0,))
    z = (x - 2.5) / np.sqrt(17.5 / 6)  # population std, as StandardScaler
    fit = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced").fit(z, y)
    np.testing.assert_allclose(x @ weight.T + bias, fit.decision_function(z)[:, None], atol=1e-9)


def test_constant_feature_columns_keep_unit_scale():
    train, valid, test = _splits("binary", dim=5)
    for xs in (train[0], valid[0], test[0]):
        xs[:, 2] = 4.0  # sigma 0 on train: StandardScaler divides by 1
    ref = linear_probe(train, valid, test, "binary")
    weight, bias, _ = probe_head(train, valid, "binary")
    assert np.isfinite(weight).all() and np.isfinite(bias).all()
    assert weight[0, 2] == 0.0  # the standardised column is all zeros: no weight
    np.testing.assert_allclose(probabilities(test[0] @ weight.T + bias, "binary"), ref["probabilities"], atol=1e-6)


def test_multiclass_with_absent_and_extra_classes():
    """Classes 0 and 2 in training (a two-class fit), class 1 absent, 4 head rows: probabilities match the
    probe's, absent classes get probability 0."""
    x, y = _data("binary", 80)
    y = np.where(y == 1, 2, 0)
    (xv, yv), (xt, yt) = _data("binary", 30, seed=1), _data("binary", 30, seed=2)
    yv, yt = np.where(yv == 1, 2, 0), np.where(yt == 1, 2, 0)
    yt[0] = 3  # the probe's columns follow the test labels too
    ref = linear_probe((x, y), (xv, yv), (xt, yt), "multiclass")
    weight, bias, _ = probe_head((x, y), (xv, yv), "multiclass", n_outputs=4)
    assert weight.shape == (4, 7) and (bias[[1, 3]] == -SATURATED_LOGIT).all()
    p = probabilities(xt @ weight.T + bias, "multiclass")
    np.testing.assert_allclose(p, ref["probabilities"], atol=1e-6)
    assert p[:, [1, 3]].max() == 0.0
    with pytest.raises(ValueError, match="n_outputs=2"):
        probe_head((x, y), (xv, yv), "multiclass", n_outputs=2)


def test_single_training_class_saturates():
    x, _ = _data("binary", 20)
    y1 = np.ones(20, dtype=int)
    weight, bias, _ = probe_head((x, y1), (x, y1), "binary")
    assert (weight == 0).all() and bias[0] == SATURATED_LOGIT
    ml = np.stack([y1, 1 - y1, y1], axis=1)
    weight, bias, _ = probe_head((x, ml), (x, ml), "multilabel")
    np.testing.assert_array_equal(bias, [SATURATED_LOGIT, -SATURATED_LOGIT, SATURATED_LOGIT])
    np.testing.assert_array_equal(probabilities(x @ weight.T + bias, "multilabel")[0], [1.0, 0.0, 1.0])
