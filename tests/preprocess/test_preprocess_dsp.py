import numpy as np
import pytest

from physioclr_ext.preprocess import dsp

FS = 500.0


def sine(freq: float, seconds: float = 20.0, fs: float = FS) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return np.sin(2 * np.pi * freq * t)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def test_bandpass_keeps_10hz_without_phase_shift_and_attenuates_out_of_band():
    x = np.vstack([sine(0.1), sine(10.0), sine(100.0)])
    y = dsp.bandpass(x, FS, 0.5, 40.0, 5)
    core = slice(2000, -2000)  # away from the filtfilt edge transients
    assert rms(y[0, core]) < 0.05 * rms(x[0, core])
    assert rms(y[2, core]) < 0.01 * rms(x[2, core])
    np.testing.assert_allclose(y[1, core], x[1, core], atol=0.02)
    lags = np.arange(-10, 11)
    corr = [np.dot(np.roll(y[1], k)[core], x[1, core]) for k in lags]
    assert lags[int(np.argmax(corr))] == 0


def test_bandpass_only_touches_selected_rows():
    x = np.vstack([sine(0.1), sine(0.1)])
    y = dsp.bandpass(x, FS, 0.5, 40.0, 5, rows=np.array([True, False]))
    np.testing.assert_array_equal(y[1], x[1])
    assert rms(y[0, 2000:-2000]) < 0.1


def test_bandpass_rejects_band_above_nyquist():
    with pytest.raises(ValueError):
        dsp.bandpass(np.zeros((1, 100)), 60.0, 0.5, 40.0, 5)


@pytest.mark.parametrize("fs_in, fs_out", [(360, 500), (1000, 500), (500, 250)])
def test_resample_length_and_frequency(fs_in, fs_out):
    x = sine(5.0, seconds=10.0, fs=fs_in)[None]
    y = dsp.resample(x, fs_in, fs_out)
    assert y.shape == (1, 10 * fs_out)
    spectrum = np.abs(np.fft.rfft(y[0]))
    freqs = np.fft.rfftfreq(y.shape[1], 1 / fs_out)
    assert freqs[np.argmax(spectrum)] == pytest.approx(5.0, abs=0.1)
    t = np.arange(y.shape[1]) / fs_out
    np.testing.assert_allclose(y[0, 200:-200], np.sin(2 * np.pi * 5 * t)[200:-200], atol=0.02)


def test_resample_factors():
    assert dsp.resample_factors(360, 500) == (25, 18)
    assert dsp.resample_factors(500, 500) == (1, 1)


def test_fill_nan_interpolates_and_zeroes_all_nan_rows():
    x = np.array([[0.0, np.nan, 2.0, np.nan], [np.nan] * 4])
    np.testing.assert_array_equal(dsp.fill_nan(x), [[0, 1, 2, 2], [0, 0, 0, 0]])


def test_normalize_per_lead_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(3, 100))
    y = dsp.normalize(x, "per_lead")
    expected = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected)


def test_normalize_per_sample_excludes_missing_leads():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 5.0, size=(3, 50))
    x[1] = 0.0
    present = np.array([True, False, True])
    y = dsp.normalize(x, "per_sample", present)
    real = x[[0, 2]]
    np.testing.assert_allclose(y[[0, 2]], (real - real.mean()) / real.std())
    np.testing.assert_array_equal(y[1], 0.0)


def test_normalize_constant_gives_zeros_not_nan():
    x = np.vstack([np.full(10, 4.2), np.arange(10.0)])
    for mode in ("per_lead", "per_sample"):
        y = dsp.normalize(x if mode == "per_lead" else x[:1], mode)
        assert np.isfinite(y).all()
    np.testing.assert_array_equal(dsp.normalize(x, "per_lead")[0], 0.0)
    np.testing.assert_array_equal(dsp.normalize(x[:1], "per_sample"), 0.0)
    np.testing.assert_array_equal(dsp.normalize(x, "none"), x)
