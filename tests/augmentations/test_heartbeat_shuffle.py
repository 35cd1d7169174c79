"""heartbeat_shuffle: whole beats permuted, ends handled as documented, explicit randomness."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from physioclr_ext.augmentations import heartbeat_shuffle, heartbeat_shuffle_batch
from physioclr_ext.features.beats import clean_r_peaks

from ._util import gen

T = 1000
PEAKS = [137, 260, 410, 530, 700, 880]
MITDB = Path(__file__).resolve().parents[2] / "data" / "sample" / "mitdb"
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


def signal(c: int = 3, t: int = T, seed: int = 0) -> torch.Tensor:
    """``(C, T)`` float64: lead 0 is the sample index (reveals where each output sample came from)."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat(
        [torch.arange(t, dtype=torch.float64)[None], torch.randn(c - 1, t, generator=g, dtype=torch.float64)]
    )


def beats(x: torch.Tensor, starts: list[int], stop: int) -> Counter:
    """Multiset of the segments ``[starts[k], starts[k + 1])`` (the last one up to ``stop``) as sample tuples."""
    bounds = [*starts, stop]
    return Counter(tuple(map(tuple, x[:, s:e].T.tolist())) for s, e in zip(bounds[:-1], bounds[1:]))


def output_starts(out: torch.Tensor, peaks: list[int], lo: int, hi: int) -> list[int]:
    """Output positions in ``[lo, hi)`` whose source sample (lead 0) is an R-peak, i.e. where beats start."""
    src = out[0].long().tolist()
    return [t for t in range(lo, hi) if src[t] in set(peaks)]


def test_keep_ends_permutes_complete_beats_and_keeps_prefix_and_tail() -> None:
    x = signal()
    out = heartbeat_shuffle(x, PEAKS, gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[:, : PEAKS[0]], x[:, : PEAKS[0]])
    assert torch.equal(out[:, PEAKS[-1] :], x[:, PEAKS[-1] :])
    # A rearrangement of the samples: every source index exactly once, so no zeros or repeats.
    assert sorted(out[0].long().tolist()) == list(range(T))
    starts = output_starts(out, PEAKS[:-1], PEAKS[0], PEAKS[-1])
    assert len(starts) == len(PEAKS) - 1
    assert beats(out, starts, PEAKS[-1]) == beats(x, PEAKS[:-1], PEAKS[-1])
    assert not torch.equal(out, x)


def test_all_leads_are_permuted_identically() -> None:
    x = signal(c=12)
    for mode in ("keep_ends", "published"):
        out = heartbeat_shuffle(x, PEAKS, gen(3), mode=mode)
        src = out[0].long()
        filled = out[0] != 0 if mode == "published" else torch.ones(T, dtype=torch.bool)
        assert torch.equal(out[:, filled], x[:, src[filled]])


def test_published_drops_prefix_starts_with_a_beat_and_zero_fills_its_length() -> None:
    x = signal()
    out = heartbeat_shuffle(x, PEAKS, gen(1), mode="published")
    n_filled = T - PEAKS[0]
    assert torch.equal(out[:, n_filled:], torch.zeros(3, PEAKS[0], dtype=x.dtype))
    assert out[0, n_filled - 1] != 0  # the zero tail is exactly the prefix long (ramp values here are > 0)
    src = out[0, :n_filled].long().tolist()
    assert src[0] in PEAKS
    assert sorted(src) == list(range(PEAKS[0], T))  # the prefix is gone, everything else kept once
    starts = output_starts(out, PEAKS, 0, n_filled)
    # Beats of the release: [r_k, r_k+1) and the last one from the last peak to T.
    assert beats(out, starts, n_filled) == beats(x, PEAKS, T)


def test_same_seed_same_output_different_seed_different_order() -> None:
    peaks = list(range(50, T, 60))  # 15 complete beats: 15! orders
    x = signal()
    for mode in ("keep_ends", "published"):
        assert torch.equal(heartbeat_shuffle(x, peaks, gen(7), mode), heartbeat_shuffle(x, peaks, gen(7), mode))
        assert not torch.equal(heartbeat_shuffle(x, peaks, gen(7), mode), heartbeat_shuffle(x, peaks, gen(8), mode))


@pytest.mark.parametrize("peaks", [[], [500], [100, 600], [-5, 400, 400, 1200]])
@pytest.mark.parametrize("mode", ["keep_ends", "published"])
def test_fewer_than_two_complete_beats_returns_an_unchanged_copy(peaks: list[int], mode: str) -> None:
    x = signal()
    out = heartbeat_shuffle(x, peaks, gen(0), mode)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_peaks_are_cleaned_before_cutting() -> None:
    assert clean_r_peaks(torch.tensor([880, 137, -1, 410, 410, T, 260]), T).tolist() == [137, 260, 410, 880]
    x = signal()
    messy = [880, 530, -1, 137, 260, 260, 410, 700, T + 3]
    assert torch.equal(heartbeat_shuffle(x, messy, gen(2)), heartbeat_shuffle(x, PEAKS, gen(2)))


def test_input_untouched_and_global_rng_unused() -> None:
    x = signal()
    before, state = x.clone(), torch.get_rng_state()
    heartbeat_shuffle(x, PEAKS, gen(0))
    out = heartbeat_shuffle(x, PEAKS)  # no generator: a fresh one, not the global RNG
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(x, before)
    assert sorted(out[0].long().tolist()) == list(range(T))


def test_batch_matches_per_example_calls_and_accepts_padded_peaks() -> None:
    x = torch.stack([signal(seed=s) for s in range(3)])
    lists = [PEAKS, [50, 300, 650], [400]]
    padded = torch.tensor([PEAKS, [50, 300, 650, -1, -1, -1], [400, -1, -1, -1, -1, -1]])
    g = gen(4)
    expected = torch.stack([heartbeat_shuffle(xi, p, g) for xi, p in zip(x, lists)])
    assert torch.equal(heartbeat_shuffle_batch(x, lists, gen(4)), expected)
    assert torch.equal(heartbeat_shuffle_batch(x, padded, gen(4)), expected)
    assert torch.equal(expected[2], x[2])


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(C, T\)"):
        heartbeat_shuffle(torch.zeros(2, 3, T), PEAKS)
    with pytest.raises(ValueError, match="mode"):
        heartbeat_shuffle(signal(), PEAKS, mode="random")
    with pytest.raises(ValueError, match="one R-peak list per example"):
        heartbeat_shuffle_batch(torch.zeros(2, 3, T), [PEAKS])


def test_real_mitbih_record_with_annotated_r_peaks() -> None:
    wfdb = pytest.importorskip("wfdb")
    record = wfdb.rdrecord(str(MITDB / "100"), sampto=3600)  # 10 s at 360 Hz, 2 leads
    ann = wfdb.rdann(str(MITDB / "100"), "atr", sampto=3600)
    peaks = [int(s) for s, sym in zip(ann.sample, ann.symbol) if sym in BEAT_SYMBOLS]
    assert len(peaks) >= 10
    x = torch.from_numpy(record.p_signal.T.copy())  # (2, 3600) mV
    t = x.shape[1]

    out = heartbeat_shuffle(x, peaks, gen(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.equal(out[:, : peaks[0]], x[:, : peaks[0]]) and torch.equal(out[:, peaks[-1] :], x[:, peaks[-1] :])
    assert torch.equal(out.sort(dim=1).values, x.sort(dim=1).values)  # same samples per lead
    lengths = Counter(b - a for a, b in zip(peaks[:-1], peaks[1:]))
    # Locate the shuffled beats by their samples: each input beat appears once, contiguously.
    cursor, found = peaks[0], Counter()
    remaining = beats(x, peaks[:-1], peaks[-1])
    while cursor < peaks[-1]:
        for n in lengths:
            key = tuple(map(tuple, out[:, cursor : cursor + n].T.tolist()))
            if remaining[key] > found[key]:
                found[key] += 1
                cursor += n
                break
        else:
            pytest.fail(f"no input beat starts at output sample {cursor}")
    assert found == remaining

    published = heartbeat_shuffle(x, peaks, gen(0), mode="published")
    assert torch.equal(published[:, t - peaks[0] :], torch.zeros(2, peaks[0], dtype=x.dtype))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@cuda
@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_cuda_input_with_cpu_or_cuda_generator(gen_device: str) -> None:
    x = torch.stack([signal(seed=s) for s in range(2)]).float()
    peaks = torch.tensor([PEAKS, [50, 300, 650, 800, -1, -1]])
    out = heartbeat_shuffle_batch(x.cuda(), peaks.cuda(), gen(5, gen_device))
    assert out.device.type == "cuda"
    assert torch.equal(out, heartbeat_shuffle_batch(x.cuda(), peaks, gen(5, gen_device)))
    if gen_device == "cpu":
        assert torch.equal(out.cpu(), heartbeat_shuffle_batch(x, peaks, gen(5)))
