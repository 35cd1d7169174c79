"""Checkpoints written before the architecture change still load, embed and fine-tune.

The fixtures (``tests/fixtures/checkpoints_a712cee``, see its README) were saved by the code of
commit a712cee, when PhysioCLR lived in ``wav2vec2_physioCLR.py``/``ecg_feature.py`` and the
criterions held ``use_neighbour`` and the CLOCS ``mode``. Registered names did not change, so the
stored configurations must still build the same models with the same weights.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from ._util import REPO, run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints_a712cee"
OLD = {"physioclr_tiny": "wav2vec2_physioCLR", "ecg_mae_tiny": "ecg_mae", "clocs_cmsc_tiny": "ecg_contrastive"}


@pytest.mark.parametrize("name", sorted(OLD))
def test_old_checkpoint_loads_with_its_weights_and_embeds(name, demo_dir, tmp_path):
    from physioclr_ext.runners.extract_embeddings import load_checkpoint, run_subset

    path = FIXTURES / f"{name}.pt"
    loaded = load_checkpoint(str(path), str(demo_dir / "data" / "mitdb"))
    assert loaded.cfg.model._name == OLD[name]
    stored = torch.load(path, map_location="cpu", weights_only=False)["model"]
    state = loaded.model.state_dict()
    assert set(stored) == set(state)
    for key, value in stored.items():
        assert torch.equal(state[key].cpu(), value), key
    emb = run_subset(loaded, "valid", batch_size=16, progress=False)
    windows = len((demo_dir / "data" / "mitdb" / "valid.tsv").read_text().splitlines()) - 1  # root line first
    assert emb.shape[0] == windows  # one row per window, also for CMSC (trained on pairs of windows)
    assert emb.ndim == 2 and np.isfinite(emb).all()


@pytest.mark.slow  # 18-47 s; the demo fine-tunes a PhysioCLR checkpoint through the same script by default
def test_old_physioclr_checkpoint_fine_tunes(demo_dir, tmp_path):
    """finetuning_ecg.sh picks the config, reads the architecture and trains from the old checkpoint."""
    out = tmp_path / "ft"
    run(
        [
            "bash",
            str(REPO / "finetuning_ecg.sh"),
            "--data",
            str(demo_dir / "data" / "mitdb"),
            "--checkpoint",
            str(FIXTURES / "physioclr_tiny.pt"),
            "--tiny",
            "--out",
            str(out),
            "--",
            "optimization.max_update=2",
        ]
    )
    assert (out / "checkpoint_best.pt").stat().st_size > 0
