"""No console script, and no subcommand that drives fairseq-signals, prints a traceback for a user error
(issue 15), against the real fairseq-signals: a missing config directory, config file, ``task.data`` or
checkpoint, an unknown option or override key, a value of the wrong type, an output folder that cannot
be created, and a fine-tuning protocol whose override a run rejects. Each exits non-zero with one message
line naming the file or option (``tests/test_cli_errors.py`` has the rest, without fairseq-signals).
"""

from __future__ import annotations

import pytest

from .._cli import MISSING, case, check_one_line_error, run_cases, selected_cases, write_data

CKPT = "{repo}/tests/fixtures/checkpoints_a712cee/ecg_mae_tiny.pt"
DATA = "{tmp}/data"
PRE = "{repo}/configs/pretraining"
FT = "{repo}/configs/finetuning"
INF = "{repo}/configs/inference"
RUN = ("hydra.run.dir={tmp}/run", "checkpoint.save_dir={tmp}/run")
BAD = "--bogus-option"

pytestmark = pytest.mark.slow  # 25 fresh processes that import fairseq-signals, two fine-tuning starts: minutes


def _train(id: str, names: str, *argv: str):
    return case(f"train/{id}", names, *argv, *RUN, script="physioclr-hydra-train")


def _eval_scripts():
    """validate and inference: the classifier config of inference_ecg.sh."""
    cases = []
    for kind in ("validate", "inference"):
        script = f"physioclr-hydra-{kind}"
        base = ("--config-dir", INF, "--config-name", "classifier", f"task.data={DATA}")
        out = ("hydra.run.dir={tmp}/" + kind, "common_eval.results_path={tmp}/" + kind)
        cases += [
            case(f"{kind}/missing-config-dir", MISSING, "--config-dir", MISSING, "--config-name", "classifier", script=script),
            case(f"{kind}/missing-config-name", "no_such_config", "--config-dir", INF, "--config-name", "no_such_config", script=script),
            case(f"{kind}/missing-task-data", f"task.data={MISSING}", "--config-dir", INF, "--config-name", "classifier", f"task.data={MISSING}", script=script),
            case(f"{kind}/missing-checkpoint", MISSING + ".pt", *base, f"common_eval.path={MISSING}.pt", *out, script=script),
            case(f"{kind}/unknown-override-key", "common_eval.bogus_key", *base, f"common_eval.path={CKPT}", "common_eval.bogus_key=1", *out, script=script),
            case(f"{kind}/unknown-option", BAD, *base, BAD, script=script),
        ]  # fmt: skip
    return cases


PRETRAIN = ("--config-dir", PRE, "--config-name", "ecg_mae_tiny")
CONSOLE = [
    _train("missing-config-dir", MISSING, "--config-dir", MISSING, "--config-name", "ecg_mae_tiny"),
    _train("missing-config-name", "no_such_config", "--config-dir", PRE, "--config-name", "no_such_config"),
    _train("missing-task-data", f"task.data={MISSING}", *PRETRAIN, f"task.data={MISSING}"),
    _train("data-without-manifest", "train.tsv", *PRETRAIN, "task.data={tmp}"),
    _train("unknown-override-key", "task.bogus_key", *PRETRAIN, f"task.data={DATA}", "task.bogus_key=1"),
    _train("wrong-type", "optimization.max_update=abc", *PRETRAIN, f"task.data={DATA}", "optimization.max_update=abc"),
    _train("unknown-option", BAD, *PRETRAIN, f"task.data={DATA}", BAD),
    _train(
        "missing-pretrained-checkpoint",
        MISSING + ".pt",
        *("--config-dir", FT, "--config-name", "ecg_ssl_classifier_tiny", f"task.data={DATA}"),
        f"model.model_path={MISSING}.pt",
    ),
    *_eval_scripts(),
]
EVAL = ("-m", "physioclr_ext.evaluation")
NO_DIR = "/dev/null/out"
"""An output folder that cannot be created (its parent is a file)."""
SUBCOMMANDS = [
    case("embed/output-not-creatable", NO_DIR, *EVAL, "embed", "--checkpoint", CKPT, "--data", DATA, "--out", NO_DIR, "--device", "cpu"),
    case("reconstruct/output-not-creatable", NO_DIR, *EVAL, "reconstruct", "--checkpoint", CKPT, "--manifest", DATA + "/test.tsv", "--out", NO_DIR, "--device", "cpu"),
    case("codebook/not-a-vqvae-checkpoint", "has no codebook", *EVAL, "codebook", "--checkpoint", CKPT, "--manifest", DATA + "/test.tsv", "--out", "{tmp}/cb", "--device", "cpu"),
    case(
        "few-shot/unknown-override-key",
        "model.bogus_key",
        *EVAL,
        *("few-shot", "--checkpoint", CKPT, "--data", DATA, "--out", "{tmp}/fs", "--n", "1", "--seeds", "0", "--no-scratch"),
        *("--override", "model.bogus_key=1"),
    ),
    case(
        "repeated/unknown-override-key",
        "model.bogus_key",
        *EVAL,
        *("repeated", "--checkpoint", CKPT, "--data", DATA, "--out", "{tmp}/rep", "--repeats", "1"),
        *("--fractions", "0.34", "0.33", "0.33", "--override", "model.bogus_key=1"),
    ),
]  # fmt: skip
CASES = CONSOLE + SUBCOMMANDS


@pytest.fixture(scope="module")
def results(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    write_data(tmp / "data")
    return str(tmp), run_cases(selected_cases(request), str(tmp))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_user_error_is_one_line(case, results):
    tmp, procs = results
    check_one_line_error(case, procs[case.id], tmp)
