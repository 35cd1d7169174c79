"""Cluster structure of embeddings: k-means scores and a 2-D PCA projection plot."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    normalized_mutual_info_score,
    silhouette_score,
)

MAX_LEGEND_CLASSES = 20


def class_ids(labels: np.ndarray) -> Tuple[np.ndarray, List[str]]:
    """One class per example: ``(ids (N,), names)``.

    Labels (N,) or (N, 1) are class indices; for multilabel (N, K) each distinct row
    (label combination) is a class, named like ``"1,0,1"``.
    """
    labels = np.asarray(labels)
    rows = labels.reshape(len(labels), -1)
    uniq, ids = np.unique(rows, axis=0, return_inverse=True)
    names = [",".join(f"{v:g}" for v in row) for row in uniq]
    return ids.reshape(-1), names


def _internal_scores(x: np.ndarray, assign: np.ndarray, seed: int, sample_size: Optional[int]) -> Dict[str, float]:
    """Silhouette, Davies-Bouldin, Calinski-Harabasz; NaN unless 2 <= clusters < N."""
    n_found = len(np.unique(assign))
    if not 2 <= n_found < len(x):
        return {"silhouette": float("nan"), "davies_bouldin": float("nan"), "calinski_harabasz": float("nan")}
    sample = sample_size if sample_size is not None and len(x) > sample_size else None
    return {
        "silhouette": float(silhouette_score(x, assign, sample_size=sample, random_state=seed)),
        "davies_bouldin": float(davies_bouldin_score(x, assign)),
        "calinski_harabasz": float(calinski_harabasz_score(x, assign)),
    }


def cluster_embeddings(
    x: np.ndarray,
    labels: np.ndarray,
    n_clusters: Optional[int] = None,
    seed: int = 0,
    silhouette_sample: Optional[int] = 10000,
) -> Dict[str, Any]:
    """k-means on embeddings (N, E), scored against the labels.

    ``k`` is the number of classes (see :func:`class_ids`) unless ``n_clusters`` is
    given; k-means uses ``n_init=10, random_state=seed``. Silhouette, Davies-Bouldin
    and Calinski-Harabasz are computed on ``x`` and the cluster assignments
    (silhouette on a seeded sample of ``silhouette_sample`` rows when N is larger,
    as it is quadratic in N; ``None`` for all rows); adjusted Rand index and NMI
    compare the assignments with the classes.

    Returns:
        ``n_clusters``, ``n_classes``, the five scores (NaN where undefined),
        ``assignments`` (N,) int and ``classes`` (N,) int class ids.
    """
    x = np.asarray(x, dtype=np.float64)
    classes, names = class_ids(labels)
    k = n_clusters or len(names)
    if not 1 <= k <= len(x):
        raise ValueError(f"cannot form {k} clusters from {len(x)} examples")
    assign = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return {
        "n_clusters": k,
        "n_classes": len(names),
        **_internal_scores(x, assign, seed, silhouette_sample),
        "adjusted_rand": float(adjusted_rand_score(classes, assign)),
        "nmi": float(normalized_mutual_info_score(classes, assign)),
        "assignments": assign.astype(np.int64),
        "classes": classes.astype(np.int64),
    }


def _legend_groups(ids: np.ndarray, names: List[str]) -> List[Tuple[str, np.ndarray]]:
    """(name, mask) per class, most frequent first; classes past the legend limit merge into 'other'."""
    counts = np.bincount(ids, minlength=len(names))
    order = np.argsort(-counts, kind="stable")
    groups = [(names[c], ids == c) for c in order[:MAX_LEGEND_CLASSES]]
    rest = order[MAX_LEGEND_CLASSES:]
    if len(rest):
        groups.append(("other", np.isin(ids, rest)))
    return groups


def plot_projection(x: np.ndarray, labels: np.ndarray, path: str, seed: int = 0, title: str = "") -> str:
    """Scatter of the 2-D PCA projection of embeddings (N, E), coloured by class; writes a PNG.

    Returns:
        ``path``.
    """
    # The object-oriented API renders with Agg without touching pyplot's global backend.
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    x = np.asarray(x, dtype=np.float64)
    n_comp = min(2, x.shape[0], x.shape[1])
    xy = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
    if n_comp < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - n_comp)))
    ids, names = class_ids(labels)
    fig = Figure(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    groups = _legend_groups(ids, names)
    palette = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    for i, (name, mask) in enumerate(groups):
        color = "black" if name == "other" else palette(i % palette.N)
        ax.scatter(xy[mask, 0], xy[mask, 1], s=8, alpha=0.7, color=color, label=name)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    ax.legend(title="label", fontsize="small", markerscale=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight")
    return path
