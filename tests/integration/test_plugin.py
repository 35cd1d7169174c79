"""Loading the plugin into the real fairseq-signals: registration, user_dir, compat fixes."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import physioclr_ext
from physioclr_ext.runners import compat, registration

from ._util import REPO, console_script, run

PKG = Path(physioclr_ext.__file__).resolve().parent
CONFIGS = REPO / "configs"


def _declared_registrations():
    """(kind, name) of every @register_model/criterion/task/lr_scheduler/optimizer decorator in the package."""
    found = []
    for layer in registration.LAYERS:
        for path in (PKG / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "").startswith("register_"):
                    if node.args and isinstance(node.args[0], ast.Constant):
                        found.append((node.func.id, node.args[0].value))
    return found


def test_import_registers_every_declared_component():
    from fairseq_signals.criterions import CRITERION_REGISTRY
    from fairseq_signals.models import MODEL_REGISTRY
    from fairseq_signals.optim import OPTIMIZER_REGISTRY
    from fairseq_signals.optim.lr_scheduler import LR_SCHEDULER_REGISTRY
    from fairseq_signals.tasks import TASK_REGISTRY

    registries = {
        "register_model": MODEL_REGISTRY,
        "register_criterion": CRITERION_REGISTRY,
        "register_task": TASK_REGISTRY,
        "register_lr_scheduler": LR_SCHEDULER_REGISTRY,
        "register_optimizer": OPTIMIZER_REGISTRY,
    }
    assert physioclr_ext.fairseq_signals_available()
    imported = set(registration.register_all())
    for layer in registration.LAYERS:
        assert set(registration.layer_modules(layer)) <= imported
    for kind, name in _declared_registrations():
        assert name in registries[kind], f"{kind}({name!r}) is declared but not registered"


def test_patches_are_applied_and_idempotent():
    from fairseq_signals.utils import checkpoint_utils, utils

    assert compat.apply_patches() == compat.apply_patches()
    assert utils.clip_grad_norm_ is compat.clip_grad_norm_
    assert isinstance(checkpoint_utils.torch, compat._TrustedTorchLoad)
    assert compat.patch_clip_grad_norm() is False  # already fixed: a no-op


def test_clip_grad_norm_runs_on_cpu_through_fairseq_signals():
    from fairseq_signals.utils import utils

    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    params[0].grad, params[1].grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])
    norm = utils.clip_grad_norm_(params, 1.0)
    assert float(norm) == pytest.approx(5.0)
    assert float(torch.cat([p.grad for p in params]).norm()) == pytest.approx(1.0, rel=1e-4)


def test_import_user_module_with_the_package_path_registers_it():
    """What plain `fairseq-hydra-train common.user_dir=<physioclr_ext>` does where the field exists."""
    code = (
        "import sys, types\n"
        "from fairseq_signals.utils.utils import import_user_module\n"
        f"import_user_module(types.SimpleNamespace(user_dir={str(PKG)!r}))\n"
        "import physioclr_ext\n"
        "from fairseq_signals.utils import utils\n"
        "from physioclr_ext.runners import compat\n"
        "assert physioclr_ext.runners.registration.is_registered(), 'plugin not registered'\n"
        "assert utils.clip_grad_norm_ is compat.clip_grad_norm_\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def _tiny_pretrain(tmp_path, data, *extra):
    save = tmp_path / "pt"
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            "wav2vec2_tiny",
            f"task.data={data}",
            f"checkpoint.save_dir={save}",
            f"hydra.run.dir={save}",
            "optimization.max_update=3",
            *extra,
        ]
    )
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from physioclr_ext.preprocess import PreprocessConfig
    from physioclr_ext.preprocess import run as preprocess

    out = tmp_path_factory.mktemp("data")
    split = out / "split.csv"
    split.write_text("record,split\n100,train\n119,valid\n208,test\n")
    src = tmp_path_factory.mktemp("src")
    for rec in ("100", "119", "208"):
        for ext in ("dat", "hea", "atr"):
            (src / f"{rec}.{ext}").write_bytes((REPO / "data/sample/mitdb" / f"{rec}.{ext}").read_bytes())
    cfg = PreprocessConfig.from_preset(
        "fairseq_signals",
        input=str(src),
        output=str(out / "mitdb"),
        split="file",
        split_file=str(split),
        label_scheme="binary",
        progress=False,
    )
    preprocess(cfg)
    return out / "mitdb"


@pytest.mark.parametrize(
    "form",
    ["common.user_dir", pytest.param("+common.user_dir", marks=pytest.mark.slow)],  # same path, 19 s
)
def test_user_dir_override_trains_wav2vec2_on_cpu_and_finetunes(tmp_path, small_data, form):
    ckpt = _tiny_pretrain(tmp_path, small_data, f"{form}={PKG}")
    assert ckpt.exists()
    ft = tmp_path / "ft"
    arch = subprocess.run(
        [
            sys.executable,
            "-m",
            "physioclr_ext.runners.checkpoints",
            "arch-overrides",
            str(ckpt),
            "--config",
            str(CONFIGS / "finetuning/ecg_transformer_classifier.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "finetuning"),
            "--config-name",
            "ecg_transformer_classifier",
            f"task.data={small_data}",
            f"model.model_path={ckpt}",
            "model.num_labels=1",
            f"checkpoint.save_dir={ft}",
            f"hydra.run.dir={ft}",
            "optimization.max_update=2",
            "dataset.batch_size=16",
            "dataset.num_workers=0",
            f"{form}={PKG}",
            *arch,
        ]
    )
    assert (ft / "checkpoint_best.pt").exists()


def test_upstream_launcher_rejects_user_dir_without_the_field(tmp_path, small_data):
    """Documents why the launcher exists: upstream has no common.user_dir."""
    from physioclr_ext.runners.launcher import common_config_has_user_dir

    if common_config_has_user_dir():
        pytest.skip("this fairseq-signals build has common.user_dir")
    proc = subprocess.run(
        [
            console_script("fairseq-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            "wav2vec2_tiny",
            f"task.data={small_data}",
            f"common.user_dir={PKG}",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "common.user_dir" in proc.stdout + proc.stderr


def test_cmsc_manifest_is_read_by_fairseq_signals(small_data):
    from fairseq_signals.data.ecg.cmsc_ecg_dataset import CMSCECGDataset

    ds = CMSCECGDataset(
        manifest_path=str(small_data / "cmsc" / "train.tsv"),
        sample_rate=500,
        max_sample_size=2500,
        min_sample_size=2500,
    )
    assert len(ds) > 0
    batch = ds.collator([ds[0], ds[1]])
    assert batch["net_input"]["source"].shape == (4, 12, 2500)
    assert batch["segment"].tolist() == [0, 1, 0, 1]
    pid = batch["patient_id"].tolist()
    assert pid[0] == pid[1] and pid[2] == pid[3]


def test_resume_from_a_mid_epoch_checkpoint_under_new_torch(tmp_path, small_data):
    """A crash mid-epoch must be resumable: torch >= 2.6 loading and the iterator state."""
    ckpt = _tiny_pretrain(tmp_path, small_data)
    from fairseq_signals.utils import checkpoint_utils

    state = checkpoint_utils.load_checkpoint_to_cpu(str(ckpt))
    assert state["cfg"]["model"]["_name"] == "wav2vec2"
    # a second run in the same directory resumes from checkpoint_last.pt
    run(
        [
            console_script("physioclr-hydra-train"),
            "--config-dir",
            str(CONFIGS / "pretraining"),
            "--config-name",
            "wav2vec2_tiny",
            f"task.data={small_data}",
            f"checkpoint.save_dir={ckpt.parent}",
            f"hydra.run.dir={ckpt.parent}",
            "optimization.max_update=5",
        ]
    )
    log = (ckpt.parent / "hydra_train.log").read_text()
    assert "Loaded checkpoint" in log and "num_updates 5" in log
