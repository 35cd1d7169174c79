"""On-disk format of pooled embeddings."""

import numpy as np
import pytest

from physioclr_ext.evaluation.embeddings import (
    Embeddings,
    infer_task,
    read_metadata,
    subsets,
    write_metadata,
)


def _emb(n=6, e=4, labels=None):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2 if labels is None else labels
    return Embeddings(
        rng.normal(size=(n, e)), labels, np.arange(n) // 2, np.arange(n) // 3, [f"mat/r{i}.mat" for i in range(n)]
    )


def test_save_load_round_trip(tmp_path):
    emb = _emb()
    files = emb.save(str(tmp_path), "train")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["train.npy", "train.labels.npy", "train.idx.npy", "train.patient.npy", "train.paths.txt"]
    )
    assert set(files) == {"x", "labels", "idx", "patients", "paths"}
    back = Embeddings.load(str(tmp_path), "train")
    assert back.x.dtype == np.float32 and back.x.shape == (6, 4)
    assert back.labels.dtype == np.float32 and back.labels.shape == (6, 1)
    assert back.idx.dtype == np.int64 and back.patients.dtype == np.int64
    np.testing.assert_array_equal(back.x, emb.x)
    np.testing.assert_array_equal(back.patients, [0, 0, 0, 1, 1, 1])
    assert back.paths == emb.paths


def test_subsets_and_metadata(tmp_path):
    _emb().save(str(tmp_path), "train")
    _emb(4).save(str(tmp_path), "test")
    _emb(4).save(str(tmp_path), "valid.v2")
    assert subsets(str(tmp_path)) == ["test", "train", "valid.v2"]
    assert read_metadata(str(tmp_path)) == {}
    write_metadata(str(tmp_path), {"checkpoint": "ck.pt", "pool": "mean"})
    assert read_metadata(str(tmp_path)) == {"checkpoint": "ck.pt", "pool": "mean"}


def test_load_errors(tmp_path):
    _emb().save(str(tmp_path), "train")
    with pytest.raises(FileNotFoundError, match="'test' lacks test.npy"):
        Embeddings.load(str(tmp_path), "test")
    np.save(tmp_path / "train.idx.npy", np.arange(5))
    with pytest.raises(ValueError, match="6 embeddings but idx has 5 rows"):
        Embeddings.load(str(tmp_path), "train")
    np.save(tmp_path / "train.idx.npy", np.zeros((6, 2)))
    with pytest.raises(ValueError, match=r"train.idx.npy: expected a 1-D array"):
        Embeddings.load(str(tmp_path), "train")
    (tmp_path / "train.paths.txt").write_text("a\n")
    np.save(tmp_path / "train.idx.npy", np.arange(6))
    with pytest.raises(ValueError, match="paths has 1 rows"):
        Embeddings.load(str(tmp_path), "train")


def test_select_targets_and_task():
    multi = _emb(labels=np.eye(3)[np.arange(6) % 3])
    assert infer_task(multi.labels) == "multilabel"
    assert multi.targets("multilabel").shape == (6, 3)
    sub = multi.select([4, 1])
    assert sub.paths == ["mat/r4.mat", "mat/r1.mat"] and sub.targets("multilabel")[0].tolist() == [0, 1, 0]
    binary = _emb()
    assert infer_task(binary.labels) == "binary" and binary.targets("binary").tolist() == [0, 1, 0, 1, 0, 1]
    assert infer_task(np.array([[0.0], [2.0]])) == "multiclass"
