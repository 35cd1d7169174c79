"""Integration tests run the real fairseq-signals; they skip, with the reason, where it cannot run."""

from pathlib import Path

import pytest

from physioclr_ext.runners.compat import find_problems

from ._util import REPO, run

PROBLEMS = find_problems()
SKIP_REASON = (
    "fairseq-signals cannot run here, integration tests skipped: " + "; ".join(str(p) for p in PROBLEMS)
    if PROBLEMS
    else ""
)


def pytest_collection_modifyitems(config, items):
    if not PROBLEMS:
        return
    marker = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:  # by folder: a test elsewhere may have "integration" in its name
        if "integration" in Path(str(item.fspath)).parent.parts:
            item.add_marker(marker)


def pytest_report_header(config):
    return SKIP_REASON or "fairseq-signals: available, integration tests will run"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """The four scripts run in order with no arguments (the README's demo)."""
    if PROBLEMS:
        pytest.skip(SKIP_REASON)
    out = tmp_path_factory.mktemp("demo")
    env = {"PHYSIOCLR_DEMO_DIR": str(out)}
    for script in ("preprocess_ecg.sh", "pre-training_ecg.sh", "finetuning_ecg.sh", "inference_ecg.sh"):
        proc = run(["bash", str(REPO / script)], env=env)
        (out / f"{script}.log").write_text(proc.stdout + proc.stderr)
    return out
