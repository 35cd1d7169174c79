"""The feature stage finds the records of a run that took each channel as its own record (and one
that renamed channels with a lead map): it rediscovers records with the run's saved options."""

from __future__ import annotations

import numpy as np

from physioclr_ext.features.pipeline import extract_directory
from physioclr_ext.features.store import load_split
from physioclr_ext.preprocess import run
from tests.preprocess.test_lead_map import POOL, _config, _cut, needs_pool


@needs_pool
def test_features_of_channel_records_and_of_a_lead_map(tmp_path):
    src = tmp_path / "svdb"
    _cut(POOL / "svdb" / "800", src, 40)
    for name, options in (
        ("channels", {"leads": "II", "channels_as_records": True}),
        ("mapped", {"leads": "II", "lead_map": ("0=II", "1=-")}),
    ):
        out = tmp_path / name
        summary = run(_config(src, out, **options))
        extract_directory(out, None)
        split = next(s for s, c in summary["splits"].items() if c["windows"])
        table = load_split(str(out), split)
        assert len(table) == summary["splits"][split]["windows"]
        assert table.valid.mean() > 0.5, table.reason  # real features, not "unreadable" rows
        if name == "channels":
            assert {str(f).split("_ch")[1][0] for f in table.fnames} == {"0", "1"}
            assert np.isfinite(table.raw).all()
