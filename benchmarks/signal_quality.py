"""Signal quality indices against MIT-BIH's noise annotations (issue 15, "Signal quality").

Usage (from the repository root)::

    python benchmarks/signal_quality.py [--data-root ../shared/data] [--window-seconds 5] [--workers 2]

Windows of ``--window-seconds`` (the preprocessing default, 5 s) are cut from every channel of every record at
its native rate, as the preprocessing worker scores them (``physioclr_ext.preprocess.quality``).

Labels, per channel and window:

- MIT-BIH (``mitdb/``): a ``~`` (signal quality change) annotation's ``subtype`` is a bit mask of the
  channels that are noisy from there on (bits 0-3) or unreadable (bits 4-7, ``-1``: all unreadable);
  ``subtype 0`` ends the noisy stretch. A ``|`` (isolated QRS-like artefact) marks one spot, its
  ``subtype`` the channels it affects (0: all). A channel-window is *noisy* when the noisy stretch covers
  at least half of it or it holds a ``|`` mark, *clean* when neither touches it, and left out otherwise.
- LUDB (``ludb/``) and the PhysioNet 2021 sample (``physionet2021/``): every channel-window is clean.

A window is noisy when any of its channels is, clean when all are. Prints, per index (oriented so that a
higher value means cleaner) and for the combined score, the AUROC of telling noisy from clean, and the
sensitivity (noisy windows caught) and specificity (clean windows kept) of the combined score at
``--threshold`` (and at the other thresholds of ``--sweep``), per lead-window and per window (score = the
minimum over leads). Clean MIT-BIH windows with a non-N beat are counted separately: the share of clean
arrhythmic windows a threshold would drop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from physioclr_ext.preprocess import dsp  # noqa: E402  (after sys.path)
from physioclr_ext.preprocess import quality as q  # noqa: E402
from physioclr_ext.preprocess.readers import RecordRef, discover, read_record  # noqa: E402
from physioclr_ext.preprocess.windows import window_starts  # noqa: E402

NON_N = set("LRBAaJSVrFejnE/fQ!")  # beat symbols other than N (and not the non-beat marks)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--window-seconds", type=float, default=5.0)
    parser.add_argument("--threshold", type=float, default=0.5, help="the combined score's threshold to report")
    parser.add_argument("--sweep", default="0.3,0.4,0.5,0.6,0.7", help="other thresholds to report")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--records", type=int, default=None, help="first N records of each dataset (quick runs)")
    parser.add_argument("--save", default=None, help="write the per-lead-window table to this .npz")
    return parser.parse_args(argv)


def noise_masks(ann: Any, n_samples: int, n_channels: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy (C, T) bool, artefact (C, T) bool)`` from MIT-BIH ``~`` and ``|`` annotations.

    ``artefact`` marks ``|`` spots widened by 0.1 s on each side.
    """
    noisy = np.zeros((n_channels, n_samples), bool)
    artefact = np.zeros((n_channels, n_samples), bool)
    state, since = 0, 0
    widen = int(0.1 * fs)
    for sample, symbol, subtype in zip(ann.sample, ann.symbol, ann.subtype):
        if symbol == "~":
            for c in range(n_channels):
                if state == -1 or state & (0x11 << c):
                    noisy[c, since:sample] = True
            state, since = int(subtype), int(sample)
        elif symbol == "|":
            for c in range(n_channels):
                if subtype in (0, -1) or subtype & (0x11 << c):
                    artefact[c, max(sample - widen, 0) : sample + widen] = True
    for c in range(n_channels):
        if state == -1 or state & (0x11 << c):
            noisy[c, since:] = True
    return noisy, artefact


def score_record(task: tuple[RecordRef, float]) -> dict[str, Any]:
    """Indices and labels of every channel-window of one record (every channel, in file order)."""
    ref, window_seconds = task
    fmt, path = ref.format, ref.path
    rec = read_record(ref, False)
    signal, fs = dsp.fill_nan(rec.signal.astype(np.float64)), float(rec.fs)
    length = round(window_seconds * fs)
    starts = window_starts(signal.shape[1], length, length)
    bounds = [(int(s), int(s) + length) for s in starts]
    n_ch = signal.shape[0]
    labels = np.zeros((len(bounds), n_ch), np.int8)  # 0 clean, 1 noisy, -1 left out
    source = np.zeros((len(bounds), n_ch), np.int8)  # 1: ~ stretch, 2: | mark only
    arrhythmic = np.zeros(len(bounds), bool)
    if fmt == "mitdb":
        import wfdb

        ann = wfdb.rdann(path, "atr")
        noisy, artefact = noise_masks(ann, signal.shape[1], n_ch, fs)
        for n, (lo, hi) in enumerate(bounds):
            cover = noisy[:, lo:hi].mean(axis=1)
            spot = artefact[:, lo:hi].any(axis=1)
            labels[n] = np.where((cover >= 0.5) | spot, 1, np.where(cover > 0, -1, 0))
            source[n] = np.where(cover >= 0.5, 1, np.where(spot, 2, 0))
            beats = [s for t, s in zip(ann.sample, ann.symbol) if lo <= t < hi]
            arrhythmic[n] = any(s in NON_N for s in beats)
    indices = np.full((len(bounds), n_ch, len(q.INDICES)), np.nan)
    for c in range(n_ch):
        if not np.ptp(signal[c]) > 0:
            labels[:, c] = -1
            continue
        found = q.lead_indices(signal[c], fs, bounds)
        indices[:, c] = np.stack([found[name] for name in q.INDICES], axis=-1)
    return {
        "dataset": fmt,
        "record": Path(path).name,
        "indices": indices,
        "labels": labels,
        "source": source,
        "arrhythmic": arrhythmic,
    }


def tasks(root: Path, window_seconds: float, limit: int | None) -> list[tuple[RecordRef, float]]:
    out = []
    for fmt in ("mitdb", "ludb", "physionet2021"):
        out += [(r, window_seconds) for r in discover(root / fmt, fmt)[:limit]]
    return out


def auroc(clean_scores: np.ndarray, noisy_scores: np.ndarray) -> float:
    """P(clean score > noisy score) + 0.5 P(tie): the AUROC of the score as a cleanness detector."""
    from scipy.stats import rankdata

    both = np.concatenate([clean_scores, noisy_scores])
    ranks = rankdata(both)
    n_c, n_n = len(clean_scores), len(noisy_scores)
    return float((ranks[:n_c].sum() - n_c * (n_c + 1) / 2) / (n_c * n_n))


def sens_spec(clean_scores: np.ndarray, noisy_scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity (noisy below ``threshold``) and specificity (clean at or above it)."""
    return float(np.mean(noisy_scores < threshold)), float(np.mean(clean_scores >= threshold))


def evaluate(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Tables of the run (printed and returned)."""
    rows_idx, rows_lab, rows_ds = [], [], []
    win_score, win_label, win_ds, win_arr = [], [], [], []
    for res in results:
        ind, lab = res["indices"], res["labels"]
        valid = ~np.isnan(ind[..., 0]) | (lab >= 0)
        for c in range(ind.shape[1]):
            keep = valid[:, c] & (lab[:, c] >= 0)
            rows_idx.append(ind[keep, c])
            rows_lab.append(lab[keep, c])
            rows_ds += [res["dataset"]] * int(keep.sum())
        scores = np.stack([q.combine(dict(zip(q.INDICES, ind[:, c].T))) for c in range(ind.shape[1])], axis=1)
        present = np.array([np.isfinite(ind[:, c, 0]).any() for c in range(ind.shape[1])])
        scores = scores[:, present]
        labels = lab[:, present]
        window_label = np.where((labels == 1).any(axis=1), 1, np.where((labels == 0).all(axis=1), 0, -1))
        win_score.append(scores.min(axis=1))
        win_label.append(window_label)
        win_ds += [res["dataset"]] * len(window_label)
        win_arr.append(res["arrhythmic"])
    idx = np.concatenate(rows_idx)
    lab = np.concatenate(rows_lab)
    ds = np.array(rows_ds)
    lead_score = q.combine(dict(zip(q.INDICES, idx.T)))
    table: dict[str, Any] = {"lead_windows": {}, "windows": {}}
    clean, noisy = lab == 0, lab == 1
    print(
        f"\nlead-windows: {int(noisy.sum())} noisy (MIT-BIH), {int(clean.sum())} clean "
        f"({int((clean & (ds == 'mitdb')).sum())} MIT-BIH, {int((clean & (ds == 'ludb')).sum())} LUDB, "
        f"{int((clean & (ds == 'physionet2021')).sum())} PhysioNet 2021)"
    )
    print("\n| index | AUROC raw (direction) | AUROC sub-score | median clean | median noisy |")
    print("|---|---|---|---|---|")
    for k, name in enumerate(q.INDICES):
        v = np.nan_to_num(idx[:, k], nan=-1e9)
        raw = auroc(v[clean], v[noisy])
        direction = "higher = clean" if raw >= 0.5 else "lower = clean"
        sub = q.RULES[name](idx[:, k])
        a_sub = auroc(sub[clean], sub[noisy])
        med_c, med_n = np.nanmedian(idx[clean, k]), np.nanmedian(idx[noisy, k])
        table["lead_windows"][name] = {"auroc_raw": max(raw, 1 - raw), "direction": direction, "auroc_sub": a_sub}
        print(f"| {name} | {max(raw, 1 - raw):.3f} ({direction}) | {a_sub:.3f} | {med_c:.3f} | {med_n:.3f} |")
    a_comb = auroc(lead_score[clean], lead_score[noisy])
    table["lead_windows"]["combined"] = {"auroc": a_comb}
    print(
        f"| combined score | | {a_comb:.3f} | {np.median(lead_score[clean]):.3f} | {np.median(lead_score[noisy]):.3f} |"
    )
    ws, wl, wd, wa = np.concatenate(win_score), np.concatenate(win_label), np.array(win_ds), np.concatenate(win_arr)
    w_clean, w_noisy = wl == 0, wl == 1
    table["windows"]["auroc"] = auroc(ws[w_clean], ws[w_noisy])
    print(
        f"\nwindows (score = min over leads): {int(w_noisy.sum())} noisy, {int(w_clean.sum())} clean, "
        f"{int((wl == -1).sum())} left out; AUROC {table['windows']['auroc']:.3f}"
    )
    thresholds = sorted({args.threshold, *(float(t) for t in args.sweep.split(","))})
    print(
        "\n| threshold | lead sens | lead spec | window sens | window spec | spec MIT-BIH clean | "
        "spec MIT-BIH clean arrhythmic | spec LUDB | spec PN2021 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for t in thresholds:
        ls, lsp = sens_spec(lead_score[clean], lead_score[noisy], t)
        wsn, wsp = sens_spec(ws[w_clean], ws[w_noisy], t)
        per = {
            name: float(np.mean(ws[w_clean & mask] >= t)) if (w_clean & mask).any() else float("nan")
            for name, mask in (
                ("mitdb", wd == "mitdb"),
                ("mitdb_arrhythmic", (wd == "mitdb") & wa),
                ("ludb", wd == "ludb"),
                ("physionet2021", wd == "physionet2021"),
            )
        }
        mark = " (default)" if t == args.threshold else ""
        table["windows"][f"{t:g}"] = {
            "lead_sensitivity": ls,
            "lead_specificity": lsp,
            "sensitivity": wsn,
            "specificity": wsp,
            **{f"specificity_{k}": v for k, v in per.items()},
        }
        print(
            f"| {t:g}{mark} | {ls:.3f} | {lsp:.3f} | {wsn:.3f} | {wsp:.3f} | {per['mitdb']:.3f} | "
            f"{per['mitdb_arrhythmic']:.3f} | {per['ludb']:.3f} | {per['physionet2021']:.3f} |"
        )
    if args.save:
        np.savez(args.save, indices=idx, labels=lab, dataset=ds, window_score=ws, window_label=wl, window_ds=wd)
    return table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    todo = tasks(Path(args.data_root), args.window_seconds, args.records)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(score_record, todo, chunksize=4))
    seconds = time.perf_counter() - start
    print(f"scored {len(todo)} records in {seconds:.0f} s ({args.workers} workers)")
    print("command: python benchmarks/signal_quality.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    table = evaluate(results, args)
    print(json.dumps({"weights": q.WEIGHTS}, indent=None))
    return table


if __name__ == "__main__":
    main()
