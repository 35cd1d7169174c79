"""No ``python -m`` entry point prints a traceback for a user error (issue 15): each subcommand given a
missing file, an unknown option and, where it passes argparse, a bad value exits non-zero with one
message line naming the file or option. The subcommands that drive fairseq-signals are checked up to
where they need it: here, without it, they stop with one line saying so (``needs fairseq-signals``);
what they do past that point is in ``tests/integration/test_cli_errors.py``.
"""

from __future__ import annotations

import pytest

from physioclr_ext.runners.registration import fairseq_signals_error

from ._cli import MISSING, case, check_one_line_error, run_cases, selected_cases, write_data, write_embeddings

CKPT = "{repo}/tests/fixtures/checkpoints_a712cee/ecg_mae_tiny.pt"
EMB = "{tmp}/emb"
DATA = "{tmp}/data"
MITDB = "{repo}/data/sample/mitdb"
BAD = "--bogus-option"
EVAL = ("-m", "physioclr_ext.evaluation")
CKPTS = ("-m", "physioclr_ext.runners.checkpoints")
SHAPE = ("-m", "physioclr_ext.runners.data_shape", "overrides")
NEEDS_FSS = "needs fairseq-signals"
FSS_ERROR = fairseq_signals_error()
"""None where fairseq-signals imports: the needs-fairseq-signals cases would run, so they are skipped."""

PREPROCESS = [
    case(
        "preprocess/missing-input",
        MISSING,
        "-m",
        "physioclr_ext.preprocess",
        "--input",
        MISSING,
        "--output",
        "{tmp}/p1",
    ),
    case(
        "preprocess/unknown-option",
        BAD,
        "-m",
        "physioclr_ext.preprocess",
        "--input",
        MITDB,
        "--output",
        "{tmp}/p2",
        BAD,
    ),
    case(
        "preprocess/bad-lead",
        "'XYZ'",
        "-m",
        "physioclr_ext.preprocess",
        "--input",
        MITDB,
        "--output",
        "{tmp}/p3",
        "--leads",
        "XYZ",
    ),
]
FEATURES = [
    case("features/missing-dir", MISSING, "-m", "physioclr_ext.features", MISSING),
    case("features/unknown-option", BAD, "-m", "physioclr_ext.features", MISSING, BAD),
    case("features/bad-pca", "'lots'", "-m", "physioclr_ext.features", MISSING, "--pca", "lots"),
]
PREDICTIONS = ("predictions", "--manifest", MISSING + ".tsv", "--out-dir", "{tmp}/o")
EVALUATION = [
    case("evaluation/unknown-command", "'no-such-command'", *EVAL, "no-such-command"),
    case("predictions/missing-outputs", MISSING + ".npy", *EVAL, *PREDICTIONS, "--outputs", MISSING + ".npy"),
    case("predictions/unknown-option", BAD, *EVAL, *PREDICTIONS, "--outputs", MISSING + ".npy", BAD),
    case(
        "predictions/bad-threshold", "'half'", *EVAL, *PREDICTIONS, "--outputs", MISSING + ".npy", "--threshold", "half"
    ),
    case(
        "loss-curve/missing-log",
        MISSING + ".log",
        *EVAL,
        "loss-curve",
        "--log",
        MISSING + ".log",
        "--out",
        "{tmp}/c.png",
    ),
    case("loss-curve/unknown-option", BAD, *EVAL, "loss-curve", "--log", MISSING + ".log", "--out", "{tmp}/c.png", BAD),
    case("cluster/missing-embeddings", MISSING, *EVAL, "cluster", "--embeddings", MISSING, "--out", "{tmp}/o"),
    case(
        "cluster/missing-subset",
        "'nosuch'",
        *EVAL,
        "cluster",
        "--embeddings",
        EMB,
        "--out",
        "{tmp}/o",
        "--subset",
        "nosuch",
    ),
    case("cluster/unknown-option", BAD, *EVAL, "cluster", "--embeddings", EMB, "--out", "{tmp}/o", BAD),
    case("knn/missing-embeddings", MISSING, *EVAL, "knn", "--embeddings", MISSING, "--out", "{tmp}/o"),
    case("knn/unknown-option", BAD, *EVAL, "knn", "--embeddings", EMB, "--out", "{tmp}/o", BAD),
    case("knn/k-zero", "k must be at least 1", *EVAL, "knn", "--embeddings", EMB, "--out", "{tmp}/o", "--k", "0"),
    case(
        "linear-probe/missing-embeddings", MISSING, *EVAL, "linear-probe", "--embeddings", MISSING, "--out", "{tmp}/o"
    ),
    case("linear-probe/unknown-option", BAD, *EVAL, "linear-probe", "--embeddings", EMB, "--out", "{tmp}/o", BAD),
    case(
        "linear-probe/n-train-too-large",
        "1000 examples requested",
        *EVAL,
        *("linear-probe", "--embeddings", EMB, "--out", "{tmp}/o", "--n-train", "1000", "--seeds", "0"),
    ),
]
# the subcommands that drive fairseq-signals: their checks run before they need it
FSS_COMMANDS = [
    case(
        "embed/missing-checkpoint",
        MISSING + ".pt",
        *EVAL,
        "embed",
        "--checkpoint",
        MISSING + ".pt",
        "--data",
        DATA,
        "--out",
        "{tmp}/o",
    ),
    case("embed/missing-data", MISSING, *EVAL, "embed", "--checkpoint", CKPT, "--data", MISSING, "--out", "{tmp}/o"),
    case("embed/unknown-option", BAD, *EVAL, "embed", "--checkpoint", CKPT, "--data", DATA, "--out", "{tmp}/o", BAD),
    case(
        "embed/needs-fairseq-signals",
        NEEDS_FSS,
        *EVAL,
        "embed",
        "--checkpoint",
        CKPT,
        "--data",
        DATA,
        "--out",
        "{tmp}/o",
    ),
]
for _name in ("reconstruct", "codebook"):
    _args = ("--manifest", DATA + "/test.tsv", "--out", "{tmp}/o")
    FSS_COMMANDS += [
        case(f"{_name}/missing-checkpoint", MISSING + ".pt", *EVAL, _name, "--checkpoint", MISSING + ".pt", *_args),
        case(
            f"{_name}/missing-manifest",
            MISSING + ".tsv",
            *EVAL,
            _name,
            "--checkpoint",
            CKPT,
            "--manifest",
            MISSING + ".tsv",
            "--out",
            "{tmp}/o",
        ),
        case(f"{_name}/unknown-option", BAD, *EVAL, _name, "--checkpoint", CKPT, *_args, BAD),
        case(f"{_name}/needs-fairseq-signals", NEEDS_FSS, *EVAL, _name, "--checkpoint", CKPT, *_args),
    ]
FEW = (*EVAL, "few-shot", "--out", "{tmp}/o")
REP = (*EVAL, "repeated", "--out", "{tmp}/o")
FSS_COMMANDS += [
    case("few-shot/missing-checkpoint", MISSING + ".pt", *FEW, "--checkpoint", MISSING + ".pt", "--data", DATA),
    case("few-shot/missing-data", MISSING, *FEW, "--checkpoint", CKPT, "--data", MISSING),
    case("few-shot/unknown-option", BAD, *FEW, "--checkpoint", CKPT, "--data", DATA, BAD),
    case("few-shot/bad-n", "'ten'", *FEW, "--checkpoint", CKPT, "--data", DATA, "--n", "ten"),
    case("few-shot/needs-fairseq-signals", NEEDS_FSS, *FEW, "--checkpoint", CKPT, "--data", DATA, "--n", "1"),
    case(
        "few-shot/head-init-needs-scratch",
        "--scratch-checkpoint",
        *FEW,
        "--checkpoint",
        CKPT,
        "--data",
        DATA,
        "--head-init",
        "probe",
    ),
    case(
        "few-shot/missing-scratch-checkpoint",
        MISSING + ".pt",
        *FEW,
        "--checkpoint",
        CKPT,
        "--data",
        DATA,
        "--scratch-checkpoint",
        MISSING + ".pt",
    ),
    case("few-shot/bad-head-init", "'linear'", *FEW, "--checkpoint", CKPT, "--data", DATA, "--head-init", "linear"),
    case("repeated/missing-data", MISSING, *REP, "--data", MISSING),
    case("repeated/missing-checkpoint", MISSING + ".pt", *REP, "--data", DATA, "--checkpoint", MISSING + ".pt"),
    case("repeated/unknown-option", BAD, *REP, "--data", DATA, BAD),
    case("repeated/needs-fairseq-signals", NEEDS_FSS, *REP, "--data", DATA),
]
CHECKPOINTS = [
    case("checkpoints/unknown-command", "'no-such-command'", *CKPTS, "no-such-command"),
    case(
        "arch-overrides/missing-config",
        MISSING + ".yaml",
        *CKPTS,
        "arch-overrides",
        CKPT,
        "--config",
        MISSING + ".yaml",
    ),
    case(
        "import/missing-weights",
        MISSING + ".pth",
        *CKPTS,
        "import",
        MISSING + ".pth",
        "--from",
        "st_mem",
        "--out",
        "{tmp}/w.pt",
    ),
    case(
        "import/unknown-option", BAD, *CKPTS, "import", MISSING + ".pth", "--from", "st_mem", "--out", "{tmp}/w.pt", BAD
    ),
    case(
        "import/bad-source", "'nosuch'", *CKPTS, "import", MISSING + ".pth", "--from", "nosuch", "--out", "{tmp}/w.pt"
    ),
]
for _name in ("arch-overrides", "model-name", "finetune-config", "lead-overrides"):
    CHECKPOINTS += [
        case(f"{_name}/missing-checkpoint", MISSING + ".pt", *CKPTS, _name, MISSING + ".pt"),
        case(f"{_name}/unknown-option", BAD, *CKPTS, _name, CKPT, BAD),
    ]
DATA_SHAPE = [
    case("data-shape/missing-config", MISSING + ".yaml", *SHAPE, "--config", MISSING + ".yaml", "--data", DATA),
    case(
        "data-shape/missing-data",
        MISSING,
        *SHAPE,
        "--config",
        "{repo}/configs/pretraining/ecg_mae_tiny.yaml",
        "--data",
        MISSING,
    ),
    case(
        "data-shape/unknown-option",
        BAD,
        *SHAPE,
        "--config",
        "{repo}/configs/pretraining/ecg_mae_tiny.yaml",
        "--data",
        DATA,
        BAD,
    ),
    case(
        "data-shape/missing-checkpoint",
        MISSING + ".pt",
        *SHAPE,
        "--config",
        "{repo}/configs/finetuning/ecg_ssl_classifier_tiny.yaml",
        "--data",
        DATA,
        "--checkpoint",
        MISSING + ".pt",
    ),
]
CASES = PREPROCESS + FEATURES + EVALUATION + FSS_COMMANDS + CHECKPOINTS + DATA_SHAPE


@pytest.fixture(scope="module")
def results(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    write_embeddings(str(tmp / "emb"))
    write_data(tmp / "data")
    cases = [c for c in selected_cases(request) if FSS_ERROR or c.names != NEEDS_FSS]
    return str(tmp), run_cases(cases, str(tmp))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_user_error_is_one_line(case, results):
    if case.names == NEEDS_FSS and not FSS_ERROR:
        pytest.skip("fairseq-signals imports here: this command would run (tests/integration/test_cli_errors.py)")
    tmp, procs = results
    check_one_line_error(case, procs[case.id], tmp)
