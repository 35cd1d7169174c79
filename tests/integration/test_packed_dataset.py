"""``task.packed``: the packed datasets return what the ``.mat`` datasets return, bit for bit, and train."""

import pickle
import re
import shutil

import numpy as np
import pytest

# The datasets subclass fairseq-signals' own: without it this module is skipped (conftest says why).
pytest.importorskip("fairseq_signals", reason="fairseq-signals is not importable here")

from physioclr_ext.data.ecg_ssl_dataset import ECGSegmentPairDataset, ECGSSLDataset  # noqa: E402
from physioclr_ext.data.packed_dataset import (  # noqa: E402
    PackedECGSegmentPairDataset,
    PackedECGSSLDataset,
    PackedPhysioCLRDataset,
)
from physioclr_ext.data.physioclr_dataset import PhysioCLRDataset  # noqa: E402
from physioclr_ext.features.pipeline import preprocess_and_extract  # noqa: E402
from physioclr_ext.preprocess import PreprocessConfig  # noqa: E402

from ._util import REPO, assert_same, assert_same_datasets, console_script, run  # noqa: E402

AUGMENTATIONS = [
    {"name": "time_warp", "p": 0.5, "n_segments": 4, "warp": 0.2},
    {"name": "zero_mask", "p": 0.5, "ratio": 0.1},
    {"name": "gaussian_noise", "p": 1.0, "factor": 0.1},
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The 8 bundled LUDB records (12 leads, 500 Hz, 5 s windows) with ``--packed --features``."""
    out = tmp_path_factory.mktemp("packed_ludb")
    config = PreprocessConfig(
        input=str(REPO / "data/sample/ludb"), output=str(out), workers=1, progress=False, packed=True, features=True
    )
    preprocess_and_extract(config)
    return out


def _compare(mat_ds, packed_ds, batch=5):
    mat_batch = assert_same_datasets(mat_ds, packed_ds, batch)
    assert "views" in mat_batch["net_input"] or "shuffled" in mat_batch["net_input"]


@pytest.mark.parametrize("mode", ["views", "cmlc"])
@pytest.mark.parametrize("max_sample_size", [None, 1800])
def test_windows_equal_the_mat_dataset(data, mode, max_sample_size):
    kwargs = dict(sample_rate=500, mode=mode, seed=3, max_sample_size=max_sample_size, training=True)
    if mode == "views":
        kwargs["augmentations"] = AUGMENTATIONS
    _compare(ECGSSLDataset(str(data / "train.tsv"), **kwargs), PackedECGSSLDataset(str(data / "train.tsv"), **kwargs))


@pytest.mark.parametrize("pad_leads", [False, True])
def test_lead_selection_and_padding_are_applied_alike(data, pad_leads):
    kwargs = dict(sample_rate=500, leads_to_load="['V1','II']", pad_leads=pad_leads, seed=1)
    _compare(ECGSSLDataset(str(data / "valid.tsv"), **kwargs), PackedECGSSLDataset(str(data / "valid.tsv"), **kwargs))


@pytest.mark.parametrize("mode", ["cmsc", "cmsmlc"])
def test_segment_pairs_equal_the_mat_dataset(data, mode):
    path = str(data / "cmsc" / "train.tsv")
    kwargs = dict(sample_rate=500, mode=mode, seed=2)
    _compare(ECGSegmentPairDataset(path, **kwargs), PackedECGSegmentPairDataset(path, **kwargs))


def test_physioclr_items_equal_the_mat_dataset(data):
    kwargs = dict(sample_rate=500, seed=4, pad=True, max_sample_size=2000)
    _compare(
        PhysioCLRDataset(str(data / "train.tsv"), **kwargs), PackedPhysioCLRDataset(str(data / "train.tsv"), **kwargs)
    )


def test_pickled_dataset_maps_its_own_array(data):
    """DataLoader workers get a copy without the mapped array (not the whole array pickled) and read alike."""
    dataset = PackedECGSSLDataset(str(data / "train.tsv"), sample_rate=500)
    first = dataset[0]
    blob = pickle.dumps(dataset)
    assert len(blob) < dataset.packed.array.nbytes / 4
    assert_same(pickle.loads(blob)[0], first)
    np.testing.assert_array_equal(pickle.loads(blob).packed.window(3), dataset.packed.window(3))


def test_missing_packed_files_name_the_option(tmp_path, data):
    (tmp_path / "train.tsv").write_text((data / "train.tsv").read_text())
    with pytest.raises(FileNotFoundError, match="--packed"):
        PackedECGSSLDataset(str(tmp_path / "train.tsv"), sample_rate=500)


def test_tiny_pretraining_trains_with_packed_data(data, tmp_path):
    """Trains on a copy of the data without its ``.mat`` files: only the packed arrays can be read."""
    packed_only = tmp_path / "data"
    shutil.copytree(data, packed_only, ignore=shutil.ignore_patterns("mat"))
    assert not (packed_only / "mat").exists()
    proc = run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(REPO / "configs" / "pretraining"),
            "--config-name",
            "contrastive_cnn_tiny",
            f"task.data={packed_only}",
            "+task.packed=true",  # the YAML has no packed key: hydra adds it
            f"checkpoint.save_dir={tmp_path}",
            f"hydra.run.dir={tmp_path}",
            "optimization.max_update=4",
            "dataset.batch_size=6",
            "common.log_interval=1",
        ]
    )
    log = proc.stdout + proc.stderr
    assert (tmp_path / "checkpoint_last.pt").exists()
    losses = [float(v) for v in re.findall(r"loss=([0-9.]+)", log)]
    assert len(losses) >= 4 and all(np.isfinite(losses))


def test_tasks_pick_the_packed_datasets(data, tmp_path):
    """``task.packed`` selects the packed dataset in every mode and task; without the files, one clear error."""
    from physioclr_ext.tasks.ecg_ssl_pretraining import ECGSSLPretrainingConfig, ECGSSLPretrainingTask
    from physioclr_ext.tasks.physioclr import PhysioCLRTask, PhysioCLRTaskConfig

    for mode, expected in (("views", PackedECGSSLDataset), ("cmsc", PackedECGSegmentPairDataset)):
        task = ECGSSLPretrainingTask(ECGSSLPretrainingConfig(data=str(data), mode=mode, packed=True, seed=1))
        task.load_dataset("train")
        assert type(task.datasets["train"]) is expected
        task.load_windows("valid")
        assert type(task.datasets["valid"]) is PackedECGSSLDataset
    physioclr = PhysioCLRTask(PhysioCLRTaskConfig(data=str(data), packed=True, seed=1))
    physioclr.load_dataset("train")
    assert type(physioclr.datasets["train"]) is PackedPhysioCLRDataset
    shutil.rmtree(data / "packed")
    try:
        with pytest.raises(FileNotFoundError, match="--packed"):
            ECGSSLPretrainingTask(ECGSSLPretrainingConfig(data=str(data), packed=True, seed=1)).load_dataset("train")
    finally:  # the module's data is shared: pack it again
        preprocess_and_extract(
            PreprocessConfig(
                input=str(REPO / "data/sample/ludb"), output=str(data), workers=1, progress=False, packed=True
            )
        )
