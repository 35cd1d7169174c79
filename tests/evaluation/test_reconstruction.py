"""Reconstruction pictures and errors (physioclr_ext.evaluation.reconstruction) on real MIT-BIH windows."""

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import wfdb

from physioclr_ext.evaluation.reconstruction import (
    default_lead_names,
    figure_inches,
    grid_shape,
    masked_spans,
    plot_reconstruction,
    reconstruction_errors,
)

MITDB = Path(__file__).resolve().parents[2] / "data/sample/mitdb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk of a PNG file."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def window():
    """12 leads of real MIT-BIH (record 100, 360 Hz): six 2480-sample segments of its two leads."""
    signal = wfdb.rdrecord(str(MITDB / "100"), sampto=6 * 2480).p_signal  # (T, 2) mV
    return np.concatenate([signal[k * 2480 : (k + 1) * 2480].T for k in range(6)])


def patch_mask(shape, patch=80, ratio=0.5, seed=0):
    rng = np.random.default_rng(seed)
    n_leads, n_samples = shape
    return np.repeat(rng.random((n_leads, n_samples // patch)) < ratio, patch, axis=1)


def test_errors_match_a_direct_computation(window):
    hidden = patch_mask(window.shape)
    rec = window + np.random.default_rng(1).normal(0, 0.3, window.shape) * (1 + hidden)
    masked = np.where(hidden, np.nan, window)
    err = reconstruction_errors(window, masked, rec)
    sq = (rec - window) ** 2
    assert err["mse_masked"] == pytest.approx(sq[hidden].sum() / hidden.sum())
    assert err["mse_visible"] == pytest.approx(sq[~hidden].sum() / (~hidden).sum())
    assert err["mse_all"] == pytest.approx(sq.mean())
    assert err["n_masked"] + err["n_visible"] == window.size
    assert err["masked_fraction"] == pytest.approx(hidden.mean())
    # noise doubled on masked samples: about 4x the visible error
    assert 3 < err["mse_masked"] / err["mse_visible"] < 5
    for lead in range(12):
        assert err["mse_masked_per_lead"][lead] == pytest.approx(sq[lead][hidden[lead]].mean())


def test_errors_take_the_mask_from_nan_only(window):
    masked = window.copy()
    masked[3, 100:300] = np.nan
    rec = window.copy()
    rec[3, 100:300] += 2.0  # wrong only where masked
    rec[0, 0] += 1.0  # one visible error
    err = reconstruction_errors(window, masked, rec)
    assert err["n_masked"] == 200 and err["mse_masked"] == pytest.approx(4.0)
    assert err["mse_visible"] == pytest.approx(1.0 / (window.size - 200))
    assert math.isnan(err["mse_masked_per_lead"][0]) and err["mse_masked_per_lead"][3] == pytest.approx(4.0)


def test_errors_without_masked_samples_are_nan_and_1d_is_one_lead(window):
    err = reconstruction_errors(window[1], window[1], window[1] + 0.5)
    assert err["n_masked"] == 0 and math.isnan(err["mse_masked"])
    assert err["mse_visible"] == pytest.approx(0.25) and len(err["mse_masked_per_lead"]) == 1


def test_shape_mismatch_is_refused(window):
    with pytest.raises(ValueError, match="differ in shape"):
        reconstruction_errors(window, window[:, :-1], window)


def test_masked_spans():
    hidden = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert masked_spans(hidden) == [(0, 2), (4, 5), (6, 9)]
    assert masked_spans(np.zeros(4, bool)) == []


def test_layout():
    assert grid_shape(12) == (6, 2) and grid_shape(1) == (1, 1) and grid_shape(3) == (3, 1)
    assert figure_inches(12)[0] > figure_inches(2)[0]
    assert figure_inches(3)[1] > figure_inches(1)[1]
    assert default_lead_names(12)[:3] == ["I", "II", "III"] and default_lead_names(2) == ["lead 1", "lead 2"]


@pytest.mark.parametrize("n_leads", [1, 2, 12])
def test_png_of_the_expected_pixel_size(window, n_leads, tmp_path):
    x = window[:n_leads] if n_leads > 1 else window[1]
    hidden = patch_mask(np.atleast_2d(x).shape).reshape(x.shape)
    masked = np.where(hidden, np.nan, x)
    path = tmp_path / "sub" / f"{n_leads}.png"
    out = plot_reconstruction(x, masked, x * 0.9, str(path), sample_rate=360, title=f"{n_leads} leads")
    assert out == str(path)
    width, height = figure_inches(n_leads)
    assert png_size(path) == (round(width * 100), round(height * 100))
    assert path.stat().st_size > 10_000  # curves drawn, not an empty canvas


def test_png_in_samples_with_dpi_and_names(window, tmp_path):
    path = tmp_path / "two.png"
    masked = window[:2].copy()
    masked[:, :400] = np.nan
    plot_reconstruction(window[:2], masked, window[:2], str(path), lead_names=["MLII", "V1"], dpi=50)
    width, height = figure_inches(2)
    assert png_size(path) == (round(width * 50), round(height * 50))


def test_wrong_number_of_lead_names(window, tmp_path):
    with pytest.raises(ValueError, match="lead names"):
        plot_reconstruction(window[:2], window[:2], window[:2], str(tmp_path / "x.png"), lead_names=["I"])


def test_all_masked_and_all_nan_leads_still_plot(window, tmp_path):
    masked = np.full_like(window[:3], np.nan)
    path = tmp_path / "all.png"
    plot_reconstruction(window[:3], masked, window[:3] * 0, str(path), sample_rate=360)
    assert png_size(path) == tuple(round(v * 100) for v in figure_inches(3))
