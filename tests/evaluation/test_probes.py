"""Linear probe and cosine k-NN on embeddings."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from physioclr_ext.evaluation.probes import DEFAULT_CS, knn_classify, linear_probe, nearest_neighbours


def _blobs(n_per_class, n_classes, dim=6, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    centres = 4.0 * np.eye(n_classes, dim)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return centres[y] + spread * rng.normal(size=(len(y), dim)), y


def test_knn_hand_made_2d():
    train_x = np.array([[1, 0], [2, 0.1], [1, 1], [0, 1], [-1, 0.2]], float)
    train_y = np.array([0, 0, 1, 1, 2])
    test_x = np.array([[5, 0.2], [0.1, 3]])
    # cosine: [5, .2] is nearest to the two 0s, then [1, 1]; [.1, 3] to [0, 1], [1, 1], then a 0
    np.testing.assert_array_equal(nearest_neighbours(train_x, test_x, 3), [[1, 0, 2], [3, 2, 4]])
    p = knn_classify(train_x, train_y, test_x, "multiclass", k=3)
    np.testing.assert_allclose(p, [[2 / 3, 1 / 3, 0], [0, 2 / 3, 1 / 3]])
    binary = knn_classify(train_x, (train_y == 1).astype(int), test_x, "binary", k=3)
    np.testing.assert_allclose(binary, [1 / 3, 2 / 3])
    multi = knn_classify(train_x, np.eye(3, dtype=int)[train_y], test_x, "multilabel", k=2)
    np.testing.assert_allclose(multi, [[1, 0, 0], [0, 1, 0]])


def test_knn_matches_sklearn_cosine():
    rng = np.random.default_rng(1)
    train_x, test_x = rng.normal(size=(120, 8)), rng.normal(size=(40, 8))
    train_y = rng.integers(0, 3, 120)
    ref = KNeighborsClassifier(n_neighbors=7, metric="cosine", weights="uniform").fit(train_x, train_y)
    np.testing.assert_allclose(knn_classify(train_x, train_y, test_x, "multiclass", k=7), ref.predict_proba(test_x))
    yb = (train_y == 2).astype(int)
    ref_b = KNeighborsClassifier(n_neighbors=5, metric="cosine").fit(train_x, yb)
    np.testing.assert_allclose(knn_classify(train_x, yb, test_x, "binary"), ref_b.predict_proba(test_x)[:, 1])


def test_knn_caps_k_and_keeps_all_classes():
    p = knn_classify(np.eye(2), np.array([0, 1]), np.array([[1.0, 0.1]]), "multiclass", k=5, n_classes=4)
    np.testing.assert_allclose(p, [[0.5, 0.5, 0, 0]])
    with pytest.raises(ValueError, match="k must be"):
        knn_classify(np.eye(2), np.array([0, 1]), np.eye(2), "binary", k=0)


def test_linear_probe_binary_separable_and_c_from_valid():
    x, y = _blobs(30, 2, seed=0)
    xv, yv = _blobs(15, 2, seed=1, spread=2.5)
    xt, yt = _blobs(20, 2, seed=2)
    r = linear_probe((x, y), (xv, yv), (xt, yt), "binary")
    assert r["metrics"]["accuracy"] == 1.0 and r["metrics"]["auroc"] == 1.0
    assert r["best_C"] in DEFAULT_CS and r["selection_metric"] == "auroc"
    assert r["probabilities"].shape == (40,)
    assert r["valid_score"] == max(r["valid_scores"]) == r["valid_scores"][DEFAULT_CS.index(r["best_C"])]
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=r["best_C"], max_iter=5000).fit(scaler.transform(x), y)
    direct = roc_auc_score(yv, model.predict_proba(scaler.transform(xv))[:, 1])
    assert r["valid_score"] == pytest.approx(direct)


def test_linear_probe_multiclass_and_missing_class():
    x, y = _blobs(20, 3)
    xt, yt = _blobs(10, 3, seed=3)
    r = linear_probe((x, y), (xt, yt), (xt, yt), "multiclass", Cs=(0.1, 1.0))
    assert r["metrics"]["accuracy"] == 1.0
    np.testing.assert_allclose(r["probabilities"].sum(axis=1), 1.0)
    keep = y < 2  # class 2 absent from training: its column is 0
    r2 = linear_probe((x[keep], y[keep]), (xt, yt), (xt, yt), "multiclass", Cs=(1.0,))
    assert r2["probabilities"].shape == (30, 3) and np.all(r2["probabilities"][:, 2] == 0)


def test_linear_probe_multilabel_independent_labels():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 5))
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0, np.zeros(200, bool)], axis=1).astype(int)
    x[:, :2] += np.sign(x[:, :2]) * 1.0  # margin around the decision boundaries
    r = linear_probe((x[:120], y[:120]), (x[120:160], y[120:160]), (x[160:], y[160:]), "multilabel", Cs=(1.0, 100.0))
    assert r["probabilities"].shape == (40, 3)
    assert np.all(r["probabilities"][:, 2] == 0)  # a label never positive in training
    assert r["metrics"]["accuracy"] == 1.0


def test_linear_probe_falls_back_to_balanced_accuracy():
    x, y = _blobs(20, 2)
    r = linear_probe((x, y), (x[y == 1], y[y == 1]), (x, y), "binary", Cs=(0.01, 1.0))
    assert r["selection_metric"] == "balanced_accuracy" and r["valid_score"] == 1.0


def _rare_positive(n, seed, rate=0.09, shift=0.8):
    """A 9%-positive binary task with overlapping classes (AUROC about 0.7, as the issue's)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    x = rng.normal(size=(n, 8))
    x[:, 0] += shift * y
    return x, y


def test_linear_probe_predicts_the_rare_class_on_imbalanced_labels():
    """Unweighted, every C predicts only the majority class (balanced accuracy 0.500 at AUROC 0.72)."""
    train, valid, test = (_rare_positive(600, s) for s in (1, 2, 101))
    r = linear_probe(train, valid, test, "binary")
    m = r["metrics"]
    assert m["auroc"] > 0.65
    predicted = r["probabilities"] >= 0.5
    assert 0 < predicted.sum() < len(predicted)
    assert m["balanced_accuracy"] > 0.6, m
    for n in (20, 100):  # also with few labels (the few-shot sizes of the protocols)
        idx = np.r_[np.flatnonzero(train[1] == 1)[: max(2, n // 10)], np.flatnonzero(train[1] == 0)[:n]]
        small = linear_probe((train[0][idx], train[1][idx]), valid, test, "binary")
        assert small["metrics"]["balanced_accuracy"] > 0.55, (n, small["metrics"])
