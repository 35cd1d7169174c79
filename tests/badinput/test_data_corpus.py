"""Bad-input corpus, the commands that read preprocessed data and checkpoints (issue 15): ``embed``,
``reconstruct``, ``few-shot``, ``repeated`` of ``python -m physioclr_ext.evaluation`` and
``python -m physioclr_ext.runners.checkpoints``. Each bad manifest, window file, label file or checkpoint ends
in one line on stderr naming the file and the fix, and exit code 2, before fairseq-signals is imported (so
these run with or without it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from physioclr_ext.evaluation.cli import main as evaluation_main
from physioclr_ext.preprocess import PreprocessConfig, run
from physioclr_ext.runners import evaluation_commands
from physioclr_ext.runners.checkpoints import main as checkpoints_main
from physioclr_ext.runners.registration import fairseq_signals_available

from ._corpus import GOOD, copy_good, copy_source

CHECKPOINT = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints_a712cee" / "ecg_mae_tiny.pt"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The good records preprocessed into train (A0001), valid (A0002) and test (E00001)."""
    root = tmp_path_factory.mktemp("data")
    src = copy_good(root / "in")
    copy_source(src)
    (root / "splits.csv").write_text(f"record,split\n{GOOD[0]},train\n{GOOD[1]},valid\nZbad,test\n")
    config = PreprocessConfig(
        input=str(src), output=str(root / "out"), split="file", split_file=str(root / "splits.csv"), progress=False
    )
    run(config)
    return root / "out"


def _first_window(data: Path, subset: str = "train") -> Path:
    lines = (data / f"{subset}.tsv").read_text().splitlines()
    return Path(lines[0]) / lines[1].split("\t")[0]


def _edit_line(data: Path, edit: Callable[[str], str]) -> None:
    lines = (data / "train.tsv").read_text().splitlines()
    lines[1] = edit(lines[1])
    (data / "train.tsv").write_text("\n".join(lines) + "\n")


def _rewrite_window(data: Path, **variables: object) -> None:
    window = _first_window(data)
    stored = {k: v for k, v in scipy.io.loadmat(window).items() if not k.startswith("__")}
    stored.update(variables)
    scipy.io.savemat(window, {k: v for k, v in stored.items() if v is not None})


def _missing_window(data: Path) -> None:
    _first_window(data).unlink()


def _garbage_window(data: Path) -> None:
    window = _first_window(data)
    window.write_bytes(np.random.default_rng(0).integers(0, 256, window.stat().st_size, dtype=np.uint8).tobytes())


def _label_def_disagrees(data: Path) -> None:
    lines = (data / "label_def.csv").read_text().splitlines()
    assert len(lines) == 3  # header and the two classes of the data
    (data / "label_def.csv").write_text("\n".join(lines[:2]) + "\n")  # one class left


# kind -> (how the data is spoiled, text the one-line error must hold)
DATA_KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "manifest_line_to_missing_mat": (_missing_window, "does not exist; rerun python -m physioclr_ext.preprocess"),
    "manifest_length_not_a_number": (
        lambda d: _edit_line(d, lambda line: line.split("\t")[0] + "\t25OO"),
        "train.tsv:2: length column '25OO' is not a positive whole number",
    ),
    "manifest_without_length_column": (
        lambda d: _edit_line(d, lambda line: line.split("\t")[0]),
        "train.tsv:2: length column '(missing)'",
    ),
    "manifest_length_exceeds_window": (
        lambda d: _edit_line(d, lambda line: line.split("\t")[0] + "\t99999"),
        "manifest length 99999 exceeds the 2500 samples",
    ),
    "missing_manifest": (lambda d: (d / "valid.tsv").unlink(), "valid.tsv: no such manifest"),
    "mat_without_feats": (lambda d: _rewrite_window(d, feats=None), "has no 'feats' variable"),
    "feats_wrong_rank": (
        lambda d: _rewrite_window(d, feats=np.zeros((1, 12, 2500))),
        "'feats' is double (1, 12, 2500)",
    ),
    "feats_complex": (lambda d: _rewrite_window(d, feats=np.ones((12, 2500)) * 1j), "'feats' holds complex values"),
    "garbage_window_mat": (_garbage_window, "is not a readable .mat file"),
    "label_def_disagrees": (_label_def_disagrees, "holds 2 labels but label_def.csv names 1 classes"),
}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = evaluation_main(argv, extra=evaluation_commands)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("kind", sorted(DATA_KINDS))
def test_bad_data_for_embed(kind, data, tmp_path, capsys):
    spoil, expected = DATA_KINDS[kind]
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    for manifest in copy.glob("*.tsv"):  # the copy's manifests point at the copy's windows
        lines = manifest.read_text().splitlines()
        manifest.write_text("\n".join([str(copy), *lines[1:]]) + "\n")
    spoil(copy)
    code, err = _run(
        ["embed", "--checkpoint", str(CHECKPOINT), "--data", str(copy), "--out", str(tmp_path / "e")], capsys
    )
    assert code == 2 and "\n" not in err and err.startswith("error: "), err
    assert expected in err and ("rerun python -m physioclr_ext.preprocess" in err or "no such manifest" in err)


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "truncated.pt"
    path.write_bytes(CHECKPOINT.read_bytes()[:5000])
    return path


def _corrupt(tmp_path: Path) -> Path:
    """The right size and zip layout, but the pickled data overwritten."""
    raw = bytearray(CHECKPOINT.read_bytes())
    raw[200:4000] = bytes(3800)
    path = tmp_path / "corrupt.pt"
    path.write_bytes(bytes(raw))
    return path


def _finetuned(tmp_path: Path) -> Path:
    """A checkpoint whose model is a fine-tuned classifier, saved the way fairseq-signals saves one."""
    path = tmp_path / "checkpoint_best.pt"
    cfg = {"model": {"_name": "ecg_ssl_classifier", "model_path": "/runs/pre/checkpoint_last.pt", "num_labels": 3}}
    torch.save({"cfg": cfg, "model": {}}, path)
    return path


CHECKPOINT_KINDS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (lambda tmp: tmp / "nope.pt", "no such checkpoint"),
    "directory": (lambda tmp: tmp, "is a directory, not a checkpoint file"),
    "truncated": (_truncated, "truncated or not a PyTorch checkpoint"),
    "corrupt": (_corrupt, "corrupt checkpoint"),
    "finetuned_as_pretrained": (_finetuned, "is a fine-tuned ecg_ssl_classifier, not a pretrained checkpoint"),
}


@pytest.mark.parametrize("command", ["few-shot", "repeated", "model-name", "embed"])
@pytest.mark.parametrize("kind", sorted(CHECKPOINT_KINDS))
def test_bad_checkpoint(kind, command, data, tmp_path, capsys):
    make, expected = CHECKPOINT_KINDS[kind]
    if kind == "finetuned_as_pretrained" and command == "embed":
        pytest.skip("embed takes fine-tuned checkpoints; this stand-in has no weights to embed with")
    checkpoint = str(make(tmp_path))
    if command == "model-name":
        code = checkpoints_main(["model-name", checkpoint])
        captured = capsys.readouterr()
        err, out = captured.err.strip(), captured.out
    else:
        argv = [command, "--checkpoint", checkpoint, "--data", str(data), "--out", str(tmp_path / "o")]
        code, err = _run(argv, capsys)
    if kind == "finetuned_as_pretrained" and command == "model-name":  # a classifier is valid there
        assert code == 0 and out.strip() == "ecg_ssl_classifier"
        return
    assert code == 2 and "\n" not in err and err.startswith("error: ") and checkpoint in err, err
    assert expected in err


def test_num_labels_override_disagrees_with_data(data, tmp_path, capsys):
    argv = ["few-shot", "--checkpoint", str(CHECKPOINT), "--data", str(data), "--out", str(tmp_path / "o")]
    code, err = _run([*argv, "--override", "model.num_labels=5"], capsys)
    assert code == 2 and "\n" not in err and "label_def.csv names 2 classes" in err and "drop the override" in err


@pytest.mark.skipif(fairseq_signals_available(), reason="fairseq-signals is installed here")
@pytest.mark.parametrize("command", ["embed", "reconstruct", "few-shot"])
def test_commands_without_fairseq_signals(command, data, tmp_path, capsys):
    argv = [command, "--checkpoint", str(CHECKPOINT), "--out", str(tmp_path / "o")]
    argv += ["--manifest", str(data / "test.tsv")] if command == "reconstruct" else ["--data", str(data)]
    code, err = _run(argv, capsys)
    assert code == 2 and "\n" not in err and f"'{command}' needs fairseq-signals" in err and "install it" in err
