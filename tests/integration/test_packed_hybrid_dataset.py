"""``task.packed`` on an ECG-JEPA hybrid directory (``--preset ecg_jepa --hybrid-channels --packed``): the
packed datasets return the ``.mat`` datasets' items and batches bit for bit, all 19 rows.

Three LUDB records of the shared database (``/work/shared/data/ludb``, PhysioNet LUDB 1.0.1, ODC-By).
"""

import os
import shutil
from pathlib import Path

import pytest

# The datasets subclass fairseq-signals' own: without it this module is skipped (conftest says why).
pytest.importorskip("fairseq_signals", reason="fairseq-signals is not importable here")

from physioclr_ext.data.ecg_ssl_dataset import ECGSSLDataset  # noqa: E402
from physioclr_ext.data.packed_dataset import PackedECGSSLDataset  # noqa: E402
from physioclr_ext.features.pipeline import preprocess_and_extract  # noqa: E402
from physioclr_ext.preprocess import PreprocessConfig  # noqa: E402

from ._util import assert_same, assert_same_datasets  # noqa: E402

SHARED_LUDB = Path(os.environ.get("LUDB_DIR", "/work/shared/data/ludb/data"))
RECORDS = ("11", "12", "13", "14")
ROWS = str(list(range(19)))  # 8 leads + 11 hybrid channels, as the ECG-JEPA config loads them


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if not (SHARED_LUDB / f"{RECORDS[0]}.hea").is_file():
        pytest.skip(f"LUDB not found at {SHARED_LUDB} (set LUDB_DIR)")
    ludb = tmp_path_factory.mktemp("ludb4")
    for record in RECORDS:
        for suffix in (".hea", ".dat"):
            shutil.copy(SHARED_LUDB / f"{record}{suffix}", ludb / f"{record}{suffix}")
    out = tmp_path_factory.mktemp("jepa_hybrid_packed")
    config = PreprocessConfig.from_preset(
        "ecg_jepa",
        input=str(ludb),
        output=str(out),
        window_seconds=5.0,
        split_fractions=(0.5, 0.25, 0.25),
        hybrid_channels=True,
        packed=True,
        workers=1,
        progress=False,
    )
    summary = preprocess_and_extract(config)
    assert summary["hybrid"]["packed"]["train"][1] == 19
    return out


@pytest.mark.parametrize("split", ["train", "valid"])
@pytest.mark.parametrize("max_sample_size", [None, 1000])
def test_hybrid_windows_equal_the_mat_dataset(data, split, max_sample_size):
    kwargs = dict(sample_rate=250, leads_to_load=ROWS, mode="views", seed=5, max_sample_size=max_sample_size)
    manifest = str(data / f"{split}.tsv")
    mat_ds, packed_ds = ECGSSLDataset(manifest, **kwargs), PackedECGSSLDataset(manifest, **kwargs)
    batch = assert_same_datasets(mat_ds, packed_ds)
    assert mat_ds[0]["source"].shape[0] == 19 and batch["net_input"]["views"].shape[-2] == 19


def test_the_task_reads_the_packed_hybrid_windows(data):
    """``ecg_ssl_pretraining`` as the ECG-JEPA config sets it, ``packed`` on and off: same items."""
    from physioclr_ext.tasks.ecg_ssl_pretraining import ECGSSLPretrainingConfig, ECGSSLPretrainingTask

    datasets = {}
    for packed in (False, True):
        cfg = ECGSSLPretrainingConfig(
            data=str(data), mode="views", sample_rate=250, leads_to_load=ROWS, packed=packed, seed=1
        )
        task = ECGSSLPretrainingTask(cfg)
        task.load_dataset("train")
        datasets[packed] = task.datasets["train"]
    assert type(datasets[True]) is PackedECGSSLDataset and type(datasets[False]) is ECGSSLDataset
    n = len(datasets[False])
    assert_same([datasets[False][i] for i in range(n)], [datasets[True][i] for i in range(n)])
