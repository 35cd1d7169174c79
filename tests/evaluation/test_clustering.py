"""k-means cluster scores and the PCA projection plot."""

import matplotlib.image
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

from physioclr_ext.evaluation.clustering import class_ids, cluster_embeddings, plot_projection


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], 25)
    return 10.0 * np.eye(3, 5)[y] + 0.3 * rng.normal(size=(75, 5)), y


def test_separated_blobs():
    x, y = _blobs()
    r = cluster_embeddings(x, y.astype(np.float32)[:, None], seed=0)
    assert r["n_clusters"] == r["n_classes"] == 3
    assert r["adjusted_rand"] == pytest.approx(1.0) and r["nmi"] == pytest.approx(1.0)
    assert r["silhouette"] > 0.7
    assert r["assignments"].shape == (75,) and r["classes"].tolist() == y.tolist()


def test_scores_equal_sklearn():
    x, y = _blobs(1)
    x = x + np.random.default_rng(2).normal(scale=3.0, size=x.shape)  # overlapping clusters
    r = cluster_embeddings(x, y, n_clusters=4, seed=3)
    assign = KMeans(n_clusters=4, n_init=10, random_state=3).fit_predict(x)
    np.testing.assert_array_equal(r["assignments"], assign)
    assert r["silhouette"] == pytest.approx(silhouette_score(x, assign))
    assert r["davies_bouldin"] == pytest.approx(davies_bouldin_score(x, assign))
    assert r["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(x, assign))
    assert r["adjusted_rand"] == pytest.approx(adjusted_rand_score(y, assign))
    assert r["nmi"] == pytest.approx(normalized_mutual_info_score(y, assign))


def test_multilabel_combinations_are_classes_and_silhouette_sampling():
    labels = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 1], [1, 1]])
    ids, names = class_ids(labels)
    assert names == ["0,1", "1,0", "1,1"] and ids.tolist() == [1, 1, 0, 2, 0, 2]
    x, y = _blobs()
    r = cluster_embeddings(x, np.eye(3)[y], silhouette_sample=30)
    assert r["n_clusters"] == 3 and 0.7 < r["silhouette"] <= 1


def test_single_cluster_scores_are_nan():
    x, _ = _blobs()
    r = cluster_embeddings(x, np.zeros(75))
    assert r["n_clusters"] == 1 and np.isnan(r["silhouette"]) and np.isnan(r["davies_bouldin"])
    with pytest.raises(ValueError, match="cannot form 80 clusters"):
        cluster_embeddings(x, np.zeros(75), n_clusters=80)


def test_plot_projection_writes_png(tmp_path):
    x, y = _blobs()
    path = plot_projection(x, y, str(tmp_path / "plots" / "proj.png"), title="test")
    image = matplotlib.image.imread(path)
    assert path.endswith("proj.png") and image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[0] > 100
    many = plot_projection(x, np.arange(75) % 25, str(tmp_path / "many.png"))  # more classes than legend entries
    assert matplotlib.image.imread(many).shape[2] in (3, 4)
