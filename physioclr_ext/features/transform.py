"""Z-scoring and optional PCA of the raw feature vectors, fitted on the valid training rows only.

Saved as ``features/transform.npz`` (``mean``, ``std``, ``components`` (K, D_raw), ``pca_mean``; K = 0
without PCA), see :mod:`physioclr_ext.features.store`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .npz import save_npz

MIN_STD = 1e-8  # a constant feature (e.g. the lead count) is centred, not scaled
PCA_AUTO = "auto"
PCA_AUTO_COMPONENTS = 50  # the paper's feature PCA
PCA_AUTO_MIN_WINDOWS = 500  # 10 training windows per component: fewer would make the axes noise


def resolve_pca(pca: int | str | None, n_train: int) -> int | None:
    """Number of PCA components for a training split of ``n_train`` windows.

    Args:
        pca: ``"auto"``, a component count K >= 1, or ``None`` / 0 (no PCA).
        n_train: windows of the training split (rows of ``train.tsv``).

    Returns:
        K, or for ``"auto"`` 50 (PhysioCLR's) where ``n_train >= 500`` and ``None`` otherwise.

    Example:
        >>> resolve_pca("auto", 500), resolve_pca("auto", 499), resolve_pca(8, 10)
        (50, None, 8)
    """
    if pca == PCA_AUTO:
        return PCA_AUTO_COMPONENTS if n_train >= PCA_AUTO_MIN_WINDOWS else None
    if pca is None or pca == 0:
        return None
    if isinstance(pca, bool) or not isinstance(pca, int) or pca < 0:
        raise ValueError(f"feature PCA must be {PCA_AUTO!r}, None or a component count >= 1, not {pca!r}")
    return pca


@dataclass
class FeatureTransform:
    """``vectors = ((raw - mean) / std - pca_mean) @ components.T`` (just the z-score when K = 0).

    Attributes:
        mean, std: ``(D_raw,)``.
        components: ``(K, D_raw)`` PCA axes (rows beyond the fitted rank are zero).
        pca_mean: ``(D_raw,)`` mean of the z-scored training rows removed before projecting.
    """

    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray
    pca_mean: np.ndarray

    @property
    def out_dim(self) -> int:
        """Width of the transformed vectors: K with PCA, else D_raw."""
        return int(self.components.shape[0]) or int(self.mean.shape[0])

    def apply(self, raw: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """``(N, D_raw)`` -> ``(N, out_dim)`` float32; rows where ``valid`` is False become zeros."""
        z = (np.asarray(raw, dtype=np.float64) - self.mean) / self.std
        if self.components.shape[0]:
            z = (z - self.pca_mean) @ self.components.T
        out = z.astype(np.float32)
        if valid is not None:
            out[~np.asarray(valid, dtype=bool)] = 0.0
        return out

    def save(self, path: str) -> None:
        """Write ``transform.npz`` atomically (and the same bytes for the same transform)."""
        save_npz(path, mean=self.mean, std=self.std, components=self.components, pca_mean=self.pca_mean)

    @classmethod
    def load(cls, path: str) -> FeatureTransform:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["mean"], z["std"], z["components"], z["pca_mean"])


def fit_transform(raw: np.ndarray, valid: np.ndarray, pca: int | None = None, seed: int = 0) -> FeatureTransform:
    """Fit the z-score (and a ``pca``-component PCA) on the rows of ``raw`` where ``valid`` holds.

    Args:
        raw: ``(N, D_raw)`` training features.
        valid: ``(N,)`` bool; invalid rows (zeros) are left out of every statistic.
        pca: number of components K (``None`` or 0: no PCA). With fewer valid rows than K the missing
            axes are zero rows, so the output width is always K.
        seed: ``random_state`` of sklearn's PCA.

    Example:
        >>> t = fit_transform(np.random.default_rng(0).normal(size=(100, 8)), np.ones(100, bool), pca=3)
        >>> t.apply(np.zeros((2, 8))).shape
        (2, 3)
    """
    rows = np.asarray(raw, dtype=np.float64)[np.asarray(valid, dtype=bool)]
    dim = np.asarray(raw).shape[1]
    if rows.shape[0] == 0:
        mean, std = np.zeros(dim), np.ones(dim)
    else:
        mean, std = rows.mean(axis=0), rows.std(axis=0)
        std = np.where(std < MIN_STD, 1.0, std)
    k = int(pca or 0)
    components, pca_mean = np.zeros((k, dim)), np.zeros(dim)
    rank = min(k, rows.shape[0], dim)
    if rank > 0:
        from sklearn.decomposition import PCA

        model = PCA(n_components=rank, svd_solver="full", random_state=seed).fit((rows - mean) / std)
        components[:rank] = model.components_
        pca_mean = model.mean_
    return FeatureTransform(mean, std, components, pca_mean)
