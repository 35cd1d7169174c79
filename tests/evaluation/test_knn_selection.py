"""k-NN model selection: the seeded 80/20 split of validation embeddings and the chosen metric."""

import numpy as np
import pytest

from physioclr_ext.evaluation.knn_selection import knn_selection_score
from physioclr_ext.evaluation.metrics import classification_metrics
from physioclr_ext.evaluation.probes import knn_classify


def test_matches_a_direct_fit_on_the_same_split():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 50)
    x = rng.normal(size=(50, 4)) + y[:, None]
    order = np.random.default_rng(7).permutation(50)
    fit, held = order[:40], order[40:]
    p = knn_classify(x[fit], y[fit], x[held], "multiclass", k=5, n_classes=3)
    for metric in ("macro_f1", "auroc"):
        direct = classification_metrics(y[held], p, "multiclass")[metric]
        assert np.isclose(knn_selection_score(x, y, 5, metric, 0.8, seed=7), direct)


def test_separable_embeddings_score_one_and_random_ones_less():
    y = np.repeat([0, 1], 20)
    x = np.c_[y, 1 - y] + 0.01
    assert knn_selection_score(x, y, k=3, metric="auroc") == 1.0
    noise = np.random.default_rng(1).normal(size=(40, 2))
    assert knn_selection_score(noise, y, k=3, metric="auroc") < 0.9


def test_multilabel_and_too_few_windows():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5)
    x = y + 0.01 * np.arange(20)[:, None]
    assert 0 <= knn_selection_score(x, y, k=1) <= 1
    assert np.isnan(knn_selection_score(x[:3], y[:3]))
    with pytest.raises(ValueError):
        knn_selection_score(x, y, metric="loss")
