"""Released weights of an original method's code -> a fairseq-signals checkpoint of this package's model.

``python -m physioclr_ext.runners.checkpoints import --from {st_mem,ecg_jepa,lfbt} WEIGHTS --out PT`` reads a
file saved by the original code (bakqui/ST-MEM, sehunfromdaegu/ECG_JEPA, Aiwiscal/ECG_SSL_LFBT), maps its tensors
with the core converters (:mod:`physioclr_ext.modules.st_mem_import`, :mod:`~physioclr_ext.modules.ecg_jepa_import`,
:mod:`~physioclr_ext.modules.lfbt_import`), builds the registered model (``st_mem``, ``ecg_jepa``, ``lfbt``) inside
the configuration that ``physioclr-hydra-train`` composes from the method's pretraining config, loads the
weights and writes a checkpoint in the trainer's format (``{"cfg", "model", "optimizer_history", ...}``). That
checkpoint is a pretrained checkpoint like any other: ``finetuning_ecg.sh --checkpoint PT``,
``python -m physioclr_ext.evaluation embed --checkpoint PT``, ``inference_ecg.sh --embed``.

Parts the released file does not hold keep their initialisation, drawn from ``--seed``, and are listed: the
ECG-JEPA predictor (its files hold the context encoder; the target encoder becomes a copy of it), the LFBT
projectors (its files hold the per-lead encoders), the ST-MEM decoder of an encoder-only file. None of them enter
the downstream representation.

Reading the original files unpickles them; only convert files you trust. LFBT's files pickle whole modules of
the original code (``models.vgg_1d.VGG16``): their classes are read as plain ``torch.nn.Module`` s, so the original
code is not needed and a ``models`` package on the path is never imported.

This module imports fairseq-signals (through Hydra and the model registry): use it where fairseq-signals is
installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch


class WeightsImportError(ValueError):
    """A released file or an option that cannot be converted (the message is one line naming the file and the fix)."""


SOURCES = ("st_mem", "ecg_jepa", "lfbt")
"""Original codes whose released weights convert (``--from``)."""
MODEL_NAMES = {"st_mem": "st_mem", "ecg_jepa": "ecg_jepa", "lfbt": "lfbt"}
ORIGINAL_REPOS = {"st_mem": "bakqui/ST-MEM", "ecg_jepa": "sehunfromdaegu/ECG_JEPA", "lfbt": "Aiwiscal/ECG_SSL_LFBT"}
INITIALISED_PREFIXES = {
    "st_mem": ("decoder.", "decoder_embed.", "decoder_pred.", "mask_token"),
    "ecg_jepa": ("predictor.",),
    "lfbt": ("projectors.",),
}
"""Parameters a released file may leave out (they stay at their seeded initialisation)."""
TRAINING_ONLY_FIELDS = {"ema_total_updates"}
"""Model fields taken from the pretraining config, not from the converter (interpolations of the run)."""
ORIGINAL_PACKAGES = ("models",)
"""Top-level packages of the original codes whose pickled classes are read as ``nn.Module`` (never imported)."""
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "pretraining"


@dataclass
class ImportResult:
    """What :func:`import_weights` wrote."""

    out: str
    model_name: str
    config_name: str
    loaded: int
    """Tensors of the model set from the released file."""
    initialised: List[str]
    """Parameter groups left at their seeded initialisation (``predictor``, ``projectors`` ...)."""
    model_cfg: Dict[str, Any]


# ------------------------------------------------------------------------------------------ reading the file
class _OriginalModule(torch.nn.Module):
    """What a pickled module of an original code becomes: its parameters, buffers and submodules, no code."""


class _OriginalUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in ORIGINAL_PACKAGES:
            return _OriginalModule
        return super().find_class(module, name)


_ORIGINAL_PICKLE = types.ModuleType("physioclr_original_pickle")
_ORIGINAL_PICKLE.Unpickler = _OriginalUnpickler  # type: ignore[attr-defined]
_ORIGINAL_PICKLE.load = lambda f, **kw: _OriginalUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_ORIGINAL_PICKLE.__dict__["__name__"] = "physioclr_original_pickle"


def load_original_file(path: str) -> Any:
    """The content of a file saved by an original code with ``torch.save``, on CPU.

    Tensors-only files load with ``weights_only=True``; files that pickle the original's modules (LFBT) are read
    with those classes as plain ``nn.Module`` s (see the module docstring).

    Raises:
        WeightsImportError: missing, a directory, empty, or not a ``torch.save`` file (one line).
    """
    if not os.path.exists(path):
        raise WeightsImportError(f"{path}: no such file; pass the released weights file of the original code")
    if not os.path.isfile(path):
        raise WeightsImportError(f"{path}: is a directory; pass the weights file itself (a .pth/.pt file)")
    if os.path.getsize(path) == 0:
        raise WeightsImportError(f"{path}: empty file; download it again")
    with open(path, "rb") as fh:
        legacy = fh.read(1) == b"\x80"  # torch.save before PyTorch 1.6: a bare pickle
    if not legacy and not zipfile.is_zipfile(path):
        raise WeightsImportError(f"{path}: not a PyTorch weights file (neither a torch.save archive nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # classes outside torch's allow-list: the original's pickled modules
    except Exception as exc:  # noqa: BLE001 - zip, pickle and storage errors: all "not a torch file"
        raise WeightsImportError(f"{path}: not a PyTorch weights file ({_first_line(exc)})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_ORIGINAL_PICKLE)
    except Exception as exc:  # noqa: BLE001
        raise WeightsImportError(f"{path}: cannot be read as a PyTorch weights file ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


# ------------------------------------------------------------------------------------------ conversion
@dataclass
class Converted:
    """A released file mapped onto a core network: its config and state dict (keys of the core module)."""

    core_cfg: Any
    state: Dict[str, torch.Tensor]
    default_config: str


def convert(
    source: str,
    content: Any,
    leads: Optional[Sequence[str]] = None,
    heads: Optional[int] = None,
    predictor_heads: Optional[int] = None,
    name: str = "weights",
) -> Converted:
    """The core config and state dict of ``content`` (the content of the file ``name``) for ``source``.

    Raises:
        WeightsImportError: an unknown source, or a file the converter refuses (its one-line reason).
    """
    converters: Dict[str, Callable[[], Converted]] = {
        "st_mem": lambda: _convert_st_mem(content, leads),
        "ecg_jepa": lambda: _convert_ecg_jepa(content, leads, heads, predictor_heads),
        "lfbt": lambda: _convert_lfbt(content, leads),
    }
    if source not in converters:
        raise WeightsImportError(f"--from {source}: not one of {', '.join(SOURCES)}")
    try:
        return converters[source]()
    except KeyError as exc:
        raise WeightsImportError(f"{name}: not a {ORIGINAL_REPOS[source]} checkpoint (no {exc})") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise WeightsImportError(f"{name}: {exc}") from None


def _convert_st_mem(content: Any, leads: Optional[Sequence[str]]) -> Converted:
    from physioclr_ext.modules.st_mem_import import convert_original_state_dict, original_config

    if leads is not None:
        raise ValueError("--leads is not used for st_mem (12 leads in the standard order)")
    if not isinstance(content, dict):
        raise ValueError(f"a {type(content).__name__}, expected a state dict")
    cfg = original_config(content)
    name = "st_mem_vit_b" if cfg.embed_dim == 768 else "st_mem_vit_s"
    return Converted(cfg, convert_original_state_dict(content), name)


def _convert_ecg_jepa(
    content: Any, leads: Optional[Sequence[str]], heads: Optional[int], predictor_heads: Optional[int]
) -> Converted:
    from physioclr_ext.modules.ecg_jepa_import import convert_original_state_dict, original_config

    extra: Dict[str, Any] = {}
    if leads is not None:
        extra["leads"] = [int(i) for i in leads]
    cfg = original_config(content, heads=heads, predictor_heads=predictor_heads, **extra)
    name = "ecg_jepa" if cfg.embed_dim == 768 else "ecg_jepa_small"
    return Converted(cfg, convert_original_state_dict(content), name)


def _convert_lfbt(content: Any, leads: Optional[Sequence[str]]) -> Converted:
    from physioclr_ext.modules.lfbt_import import convert_original_state_dict, original_config

    cfg = original_config(content, leads=leads)
    return Converted(cfg, convert_original_state_dict(content), "lfbt")


# ------------------------------------------------------------------------------------------ the checkpoint
def compose_pretraining_config(config_name: str, model_fields: Dict[str, Any], data: Optional[str]) -> Dict[str, Any]:
    """The configuration ``physioclr-hydra-train --config-dir configs/pretraining --config-name NAME`` composes,
    with ``model_fields`` set in its model section, resolved to plain containers (as the trainer saves it)."""
    from fairseq_signals.dataclass.initialize import add_defaults, hydra_init
    from hydra.core.global_hydra import GlobalHydra
    from hydra.experimental import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    import physioclr_ext

    physioclr_ext.register()
    if not (CONFIG_DIR / f"{config_name}.yaml").exists():
        raise WeightsImportError(f"--config {config_name}: no configs/pretraining/{config_name}.yaml")
    hydra_init(config_name)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR)):
        cfg = compose(config_name=config_name)
    add_defaults(cfg)
    with open_dict(cfg):
        for key, value in model_fields.items():
            cfg.model[key] = value
        if data is not None:
            cfg.task.data = os.path.abspath(data)
    container: Dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[assignment]
    return container


def _model_fields(core_cfg: Any) -> Dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(core_cfg).items() if k not in TRAINING_ONLY_FIELDS}


def _load_into(model: torch.nn.Module, source: str, state: Dict[str, torch.Tensor]) -> Tuple[int, List[str]]:
    """Load the converted ``state`` into ``model.net``; returns ``(tensors loaded, groups left initialised)``."""
    net = model.get_submodule("net")
    result = net.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise WeightsImportError(f"the converted weights do not fit the model: unexpected {result.unexpected_keys[:5]}")
    allowed = INITIALISED_PREFIXES[source]
    wrong = [k for k in result.missing_keys if not k.startswith(allowed)]
    if wrong:
        raise WeightsImportError(f"the released file lacks weights the representation needs: {wrong[:5]}")
    groups = sorted({next(p for p in allowed if k.startswith(p)).rstrip(".") for k in result.missing_keys})
    return len(state), groups


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_weights(
    source: str,
    weights: str,
    out: str,
    config: Optional[str] = None,
    leads: Optional[Sequence[str]] = None,
    heads: Optional[int] = None,
    predictor_heads: Optional[int] = None,
    data: Optional[str] = None,
    seed: int = 0,
    force: bool = False,
) -> ImportResult:
    """Convert the released ``weights`` of ``source`` and write a fairseq-signals checkpoint to ``out``.

    Args:
        source: ``st_mem``, ``ecg_jepa`` or ``lfbt``.
        weights: the file saved by the original code.
        out: the checkpoint to write (``.pt``); refused if it exists unless ``force``.
        config: pretraining config in ``configs/pretraining`` whose task, criterion and optimisation settings the
            checkpoint records (default: the method's paper config for the file's width).
        leads: LFBT: the backbones' lead names in order (default II, III, V1-V6); ECG-JEPA: ``restrict_leads``
            row indices.
        heads, predictor_heads: ECG-JEPA attention heads for unpublished widths.
        data: a preprocessed data directory recorded as ``task.data`` (optional).
        seed: initialisation of the parts the file does not hold.

    Raises:
        WeightsImportError: any of the above refused, in one line.
        UnsupportedEnvironment: fairseq-signals cannot run here (after the file was read and converted).
    """
    if os.path.exists(out) and not force:
        raise WeightsImportError(f"{out}: exists; pass --force to overwrite it")
    converted = convert(source, load_original_file(weights), leads, heads, predictor_heads, name=weights)
    from physioclr_ext.runners.compat import check_environment

    check_environment()  # writing the checkpoint composes the trainer's config and builds the registered model
    config_name = config or converted.default_config
    cfg = compose_pretraining_config(config_name, _model_fields(converted.core_cfg), data)
    if cfg["model"].get("_name") != MODEL_NAMES[source]:
        raise WeightsImportError(
            f"--config {config_name} trains {cfg['model'].get('_name')}, not {MODEL_NAMES[source]}; pick a "
            f"{MODEL_NAMES[source]} config"
        )
    from fairseq_signals.models import build_model
    from omegaconf import OmegaConf

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(OmegaConf.create(cfg["model"]), None)
    loaded, initialised = _load_into(model, source, converted.state)
    state = {
        "args": None,
        "cfg": cfg,
        "model": model.state_dict(),
        "criterion": None,
        "optimizer_history": [
            {"criterion_name": "", "optimizer_name": "", "lr_scheduler_state": {"best": None}, "num_updates": 0}
        ],
        "task_state": {},
        "extra_state": {
            "train_iterator": {"epoch": 1, "iterations_in_epoch": 0},
            "val_loss": None,
            "previous_training_time": 0.0,
            "physioclr_import": {
                "from": source,
                "original": ORIGINAL_REPOS[source],
                "weights": os.path.abspath(weights),
                "sha256": _sha256(weights),
                "initialised": initialised,
                "seed": seed,
            },
        },
        "last_optimizer_state": None,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{out}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, out)
    return ImportResult(out, MODEL_NAMES[source], config_name, loaded, initialised, dict(cfg["model"]))


def report(result: ImportResult) -> List[str]:
    """The lines printed after an import: what was written and the commands that use it."""
    lines = [
        f"wrote {result.out}: model {result.model_name} (config {result.config_name}), "
        f"{result.loaded} tensors from the released file",
    ]
    if result.initialised:
        lines.append(
            f"left at initialisation (not in the released file, not used downstream): {', '.join(result.initialised)}"
        )
    lines += [
        "next:",
        f"  ./finetuning_ecg.sh --data DATA --checkpoint {result.out}",
        f"  python -m physioclr_ext.evaluation embed --checkpoint {result.out} --data DATA --out EMB",
    ]
    return lines
