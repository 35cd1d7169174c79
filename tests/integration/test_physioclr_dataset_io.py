"""``PhysioCLRDataset`` reads each window once where it can, and gives the same items and batches as before.

Before, ``_load`` ran one ``scipy.io.loadmat`` for the window and one for its temporal neighbour on every
access. ``Reference`` below keeps that code verbatim; the dataset must return the same tensors, bit for bit,
in any order, with fewer reads (counted by wrapping ``physioclr_dataset.read_window``, its only disk read).
"""

import os

import numpy as np
import pytest
import scipy.io
import torch

# The dataset subclasses fairseq-signals' own: without it this module is skipped (conftest says why).
pytest.importorskip("fairseq_signals", reason="fairseq-signals is not importable here")

from physioclr_ext.data import physioclr_dataset  # noqa: E402
from physioclr_ext.data.packed_dataset import PackedPhysioCLRDataset, _LeadSelectMixin  # noqa: E402
from physioclr_ext.data.physioclr_dataset import PhysioCLRDataset  # noqa: E402
from physioclr_ext.features.pipeline import preprocess_and_extract  # noqa: E402
from physioclr_ext.preprocess import PreprocessConfig  # noqa: E402

from ._util import REPO, assert_same  # noqa: E402


class Reference(PhysioCLRDataset):
    """The dataset's ``_load`` before the read cache (two ``loadmat`` per item), copied as it was."""

    def _load(self, fname):
        mat = scipy.io.loadmat(os.path.join(self.root_dir, fname))
        feats = torch.from_numpy(np.asarray(mat["feats"], dtype=np.float32))
        rate = mat["curr_sample_rate"]
        return self.postprocess(feats, rate), int(np.asarray(rate).reshape(-1)[0])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The 8 bundled LUDB records (12 leads, 500 Hz, 5 s windows) with features and ``--packed``."""
    out = tmp_path_factory.mktemp("physioclr_io")
    config = PreprocessConfig(
        input=str(REPO / "data/sample/ludb"), output=str(out), workers=1, progress=False, packed=True, features=True
    )
    preprocess_and_extract(config)
    for name, value in (("mean", 0.1), ("std", 2.0)):  # per-lead constants: normalize writes into the window
        (out / f"{name}.txt").write_text("".join(f"{value + lead / 10}\n" for lead in range(12)))
    return out


@pytest.fixture
def reads(monkeypatch):
    """Paths passed to ``read_window`` (the dataset's one ``loadmat``), in call order."""
    calls = []
    real = physioclr_dataset.read_window

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(physioclr_dataset, "read_window", counting)
    return calls


def batches(dataset, order, size=5):
    """The collated batches of ``order`` (ids in read order), as a training epoch makes them."""
    return [dataset.collator([dataset[int(i)] for i in order[s : s + size]]) for s in range(0, len(order), size)]


def distinct_paths(dataset):
    """Every file an epoch must read at least once: the windows and their neighbours."""
    names = [str(f) for f in dataset.fnames]
    names += [dataset.neighbours[n] for n in names if n in dataset.neighbours]
    return {os.path.join(dataset.root_dir, n) for n in names}


KWARGS = [
    {},
    {"max_sample_size": 1800, "pad": False},
    {"normalize": True, "leads_to_load": "[0, 1, 6]", "pad_leads": True},
]


@pytest.mark.parametrize("kwargs", KWARGS, ids=["plain", "crop", "normalize_leads"])
@pytest.mark.parametrize("window_cache", [0, 3, 32, 10_000])
def test_batches_equal_the_two_read_dataset(data, kwargs, window_cache):
    kwargs = dict(sample_rate=500, seed=4, training=True, **kwargs)
    if kwargs.get("normalize"):
        kwargs.update(mean_path=str(data / "mean.txt"), std_path=str(data / "std.txt"))
    manifest = str(data / "train.tsv")
    ref, new = Reference(manifest, **kwargs), PhysioCLRDataset(manifest, window_cache=window_cache, **kwargs)
    assert sum(n is not None for n in (ref[i]["neighbour"] for i in range(len(ref)))) > 0
    rng = np.random.default_rng(0)
    for epoch, order in enumerate([np.arange(len(ref)), rng.permutation(len(ref)), np.arange(len(ref))[::-1]]):
        ref.set_epoch(epoch + 1)
        new.set_epoch(epoch + 1)
        assert_same(batches(ref, order), batches(new, order), f"epoch {epoch + 1}")


class InPlaceLeads(_LeadSelectMixin, PhysioCLRDataset):
    """The packed datasets' lead selection (used by ``PackedPhysioCLRDataset``'s ``.mat`` fallback): with every
    lead kept it returns its input, so ``normalize`` writes into the array read."""


def test_a_cached_window_is_not_normalised_twice(data):
    kwargs = dict(
        sample_rate=500, seed=4, normalize=True, mean_path=str(data / "mean.txt"), std_path=str(data / "std.txt")
    )
    manifest = str(data / "train.tsv")
    ref, new = Reference(manifest, **kwargs), InPlaceLeads(manifest, window_cache=32, **kwargs)
    order = np.arange(len(ref))
    assert_same(batches(ref, order), batches(new, order))
    assert_same(batches(ref, order), batches(new, order))  # second pass: every window from the cache


def test_an_epoch_in_order_reads_each_window_once(data, reads):
    ds = PhysioCLRDataset(str(data / "train.tsv"), sample_rate=500)  # default cache
    names = [str(f) for f in ds.fnames]
    with_neighbour = sum(n in ds.neighbours for n in names)
    assert with_neighbour > 0

    batches(ds, np.arange(len(ds)))
    assert len(reads) == len(set(reads)) == len(distinct_paths(ds))

    reads.clear()
    batches(PhysioCLRDataset(str(data / "train.tsv"), sample_rate=500, window_cache=0), np.arange(len(ds)))
    assert len(reads) == len(names) + with_neighbour  # before: one read for the window, one for the neighbour


def test_a_shuffled_epoch_reads_each_window_once_with_a_cache_of_the_split(data, reads):
    ds = PhysioCLRDataset(str(data / "train.tsv"), sample_rate=500)
    ds.window_cache = len(distinct_paths(ds))
    order = np.random.default_rng(1).permutation(len(ds))
    batches(ds, order)
    assert sorted(reads) == sorted(distinct_paths(ds))


def test_the_cache_keeps_the_last_windows_read(data, reads):
    ds = PhysioCLRDataset(str(data / "train.tsv"), sample_rate=500, use_neighbour=False, window_cache=2)
    for i in (
        0,
        1,
        0,
        2,
        1,
        2,
        0,
    ):  # LRU of 2: 0 miss, 1 miss, 0 hit, 2 miss (drops 1), 1 miss (drops 0), 2 hit, 0 miss
        ds[i]
    names = [str(f) for f in ds.fnames]
    assert reads == [os.path.join(ds.root_dir, names[i]) for i in (0, 1, 2, 1, 0)]


def test_the_cache_stops_taking_windows_when_it_does_not_hit(data, monkeypatch):
    arrays = {}

    def distinct(path):  # a new array per read: 200 windows never read twice (a shuffled epoch, in the limit)
        arrays[path] = np.full((12, 10), float(len(arrays)), np.float32)
        return arrays[path], np.array([[500]])

    monkeypatch.setattr(physioclr_dataset, "read_window", distinct)
    ds = PhysioCLRDataset(str(data / "train.tsv"), sample_rate=500, window_cache=1000)
    probation = physioclr_dataset.CACHE_PROBATION
    reads = [ds._read(f"w{i}.mat") for i in range(200)]
    assert len(ds._cache) == probation - 1  # the misses before the judgement were kept, none after
    assert all(cached for _, _, cached in reads[: probation - 1]) and not any(c for _, _, c in reads[probation - 1 :])
    assert reads[150][0] is arrays[os.path.join(ds.root_dir, "w150.mat")]  # handed out as read: no copy
    assert ds._read("w3.mat")[2] and ds._cache_stats == [1, 200]  # what was kept still hits


def test_packed_dataset_reads_no_mat_file(data, reads):
    ds = PackedPhysioCLRDataset(str(data / "train.tsv"), sample_rate=500)
    assert any(str(f) in ds.neighbours for f in ds.fnames)
    batches(ds, np.random.default_rng(2).permutation(len(ds)))
    assert reads == []
