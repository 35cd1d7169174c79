"""Read what a fairseq-signals checkpoint says about its model.

fairseq-signals builds a fine-tuning model's head (and, at inference, its whole
encoder) from the fine-tuning configuration, not from the pretrained checkpoint, so
the architecture fields must be repeated there. :func:`architecture_overrides` reads
them from a pretrained checkpoint and writes them as Hydra overrides, which
``finetuning_ecg.sh`` passes along so that a fine-tuning run always matches its
checkpoint.

Usage::

    python -m physioclr_ext.runners.checkpoints arch-overrides checkpoint_last.pt --config finetune.yaml
    python -m physioclr_ext.runners.checkpoints model-name checkpoint_best.pt
    python -m physioclr_ext.runners.checkpoints finetune-config checkpoint_last.pt --tiny [--data DIR]
    python -m physioclr_ext.runners.checkpoints import --from lfbt encoder_group_gamma_0.8.pth --out lfbt.pt
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional, Set

ARCHITECTURE_FIELDS = (
    "encoder_layers",
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "layer_norm_first",
    "extractor_mode",
    "conv_feature_layers",
    "conv_bias",
    "conv_pos",
    "conv_pos_groups",
    "in_d",
)
"""Fields of fairseq-signals' transformer encoders that fix the weights' shapes."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as given (the message is one line naming the file and the fix)."""


def check_checkpoint_file(path: str) -> None:
    """Cheap checks before a checkpoint is unpickled: it exists, is a file and is a complete zip archive
    (``torch.save``'s format since PyTorch 1.6; a truncated copy loses the archive's central directory).

    Raises:
        CheckpointError: missing, a directory, empty or truncated.
    """
    import zipfile

    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint; check the path (e.g. <save_dir>/checkpoint_last.pt)")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file; pass <save_dir>/checkpoint_last.pt")
    with open(path, "rb") as fh:
        head = fh.read(2)
    legacy = head[:1] == b"\x80"  # pre-1.6 torch.save: a bare pickle, checked when loaded
    if not legacy and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path}: truncated or not a PyTorch checkpoint ({os.path.getsize(path)} bytes); copy it again "
            "or use another checkpoint of the run (checkpoint_last.pt, checkpoint_best.pt)"
        )


def read_checkpoint(path: str) -> Dict[str, Any]:
    """The unpickled checkpoint (``{"model", "cfg", ...}``) after :func:`check_checkpoint_file`.

    Loading unpickles the file (``weights_only=False``, as fairseq-signals does):
    only load checkpoints you trust.

    Raises:
        CheckpointError: unreadable, corrupt, or not a fairseq-signals checkpoint.
    """
    import torch

    check_checkpoint_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - corrupt archives fail in many ways, all the same user error
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(
            f"{path}: corrupt checkpoint ({type(exc).__name__}: {first[:120]}); copy it again or use another "
            "checkpoint of the run"
        ) from None
    if not isinstance(state, dict) or "cfg" not in state:
        raise CheckpointError(
            f"{path}: not a fairseq-signals checkpoint (no 'cfg'); pass one saved by physioclr-hydra-train"
        )
    return state


def load_model_config(path: str) -> Dict[str, Any]:
    """The ``model`` section of a checkpoint's configuration, as a plain dict.

    Raises:
        CheckpointError: see :func:`read_checkpoint`, or the checkpoint has no model configuration.
    """
    cfg = read_checkpoint(path).get("cfg") or {}
    model = cfg.get("model") if hasattr(cfg, "get") else None
    if model is None:
        raise CheckpointError(f"{path}: no model configuration in this checkpoint")
    return dict(model)


def is_finetuned(model_cfg: Dict[str, Any]) -> bool:
    """Whether a checkpoint's model is a fine-tuned classifier (``*_classifier``) rather than a pretrained
    encoder."""
    return str(model_cfg.get("_name", "")).endswith("_classifier")


def check_pretrained(path: str) -> str:
    """The model name of a checkpoint meant as the *pretrained* start of fine-tuning.

    Raises:
        CheckpointError: unreadable (see :func:`read_checkpoint`), or a fine-tuned classifier, which would be
            fine-tuned again with a new head and no warning.
    """
    model = load_model_config(path)
    if is_finetuned(model):
        source = model.get("model_path") or "the pretraining run's checkpoint_last.pt"
        raise CheckpointError(
            f"{path}: is a fine-tuned {model.get('_name')}, not a pretrained checkpoint; pass the pretrained "
            f"checkpoint it started from ({source})"
        )
    return str(model.get("_name", ""))


def lead_overrides(path: str) -> List[str]:
    """The lead selection a checkpoint was trained with (``task.leads_to_load``), as Hydra overrides
    for fairseq-signals' inference, which otherwise reads every lead with its own task config;
    empty where the checkpoint used every lead."""
    cfg = read_checkpoint(path).get("cfg") or {}
    task = (cfg.get("task") if hasattr(cfg, "get") else None) or {}
    if not task.get("leads_to_load"):
        return []
    return [
        format_override("+task.leads_to_load", task["leads_to_load"]),
        format_override("task.enable_padding_leads", bool(task.get("enable_padding_leads"))),
    ]


def format_override(key: str, value: Any) -> str:
    """One Hydra 1.0 command-line override; strings are quoted so that brackets
    and commas inside them (``"[(256, 2, 2)] * 4"``) stay one string."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = "'" + str(value).replace("'", "\\'") + "'"
    return f"{key}={text}"


def architecture_overrides(
    model_cfg: Dict[str, Any], present: Optional[Set[str]] = None, prefix: str = "model."
) -> List[str]:
    """Overrides that give a fine-tuning model the encoder shape of ``model_cfg``.

    Args:
        model_cfg: the pretrained checkpoint's model configuration.
        present: keys the fine-tuning YAML's ``model`` section already has. Hydra 1.0
            only overrides keys the composed YAML has; the others must be appended
            with ``+``. ``None`` treats every key as present.
    """
    out = []
    for key in ARCHITECTURE_FIELDS:
        if key in model_cfg:
            plus = "" if present is None or key in present else "+"
            out.append(plus + format_override(prefix + key, model_cfg[key]))
    return out


def yaml_model_section(config_path: str) -> Dict[str, Any]:
    """The ``model`` section of a Hydra YAML config file."""
    import yaml

    with open(config_path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    return dict(cfg.get("model") or {})


def yaml_model_keys(config_path: str) -> Set[str]:
    """Keys of the ``model`` section of a Hydra YAML config file."""
    return set(yaml_model_section(config_path))


SELF_DESCRIBING_MODELS = ("ecg_ssl_classifier",)
"""Fine-tuning models that read the architecture from the checkpoint themselves."""


def finetuning_overrides(checkpoint: str, config_path: str) -> List[str]:
    """Architecture overrides a fine-tuning config needs for ``checkpoint`` (none for
    models that read it from the checkpoint, such as ``ecg_ssl_classifier``)."""
    if yaml_model_section(config_path).get("_name") in SELF_DESCRIBING_MODELS:
        return []
    return architecture_overrides(load_model_config(checkpoint), yaml_model_keys(config_path))


FINETUNE_CONFIGS = {
    "wav2vec2_physioCLR": "physioclr_classifier",
    "wav2vec2": "ecg_transformer_classifier",
    "ecg_transformer": "ecg_transformer_classifier",
}
"""Fine-tuning config (in ``configs/finetuning``) per pretrained model; every other model of the
package is fine-tuned with ``ecg_ssl_classifier``."""


def default_finetune_config(model_name: str, tiny: bool = False) -> str:
    """The fine-tuning config for a checkpoint of ``model_name`` (``_tiny`` variant with ``tiny``).

    >>> default_finetune_config("ecg_mae", tiny=True), default_finetune_config("wav2vec2")
    ('ecg_ssl_classifier_tiny', 'ecg_transformer_classifier')
    """
    name = FINETUNE_CONFIGS.get(model_name, "ecg_ssl_classifier")
    return f"{name}_tiny" if tiny else name


REPO_FINETUNE_CONFIGS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs", "finetuning"
)
MULTICLASS_SCHEMES = ("multiclass", "aami")
"""``labels.scheme`` values of ``preprocess.json`` whose ``label`` is one class index per window."""


def data_label_scheme(data_dir: str) -> Optional[str]:
    """``labels.scheme`` of ``DATA/preprocess.json``; None where the file or its labels are absent."""
    import json

    path = os.path.join(data_dir, "preprocess.json")
    if not os.path.isfile(path):
        return None
    with open(path) as fh:
        labels = json.load(fh).get("labels") or {}
    return labels.get("scheme")


def label_finetune_config(config: str, data_dir: Optional[str], config_dir: str = REPO_FINETUNE_CONFIGS) -> str:
    """``config``, or its ``_multiclass`` variant (cross-entropy head) where ``data_dir`` holds class
    indices (``--labels`` with one class column, ``--label-scheme aami``): the default configs train a
    binary cross-entropy head, which needs one 0/1 target per output.

    >>> label_finetune_config("ecg_ssl_classifier_tiny", None)
    'ecg_ssl_classifier_tiny'

    Raises:
        CheckpointError: class-index labels and no ``_multiclass`` variant of ``config`` in ``config_dir``.
    """
    scheme = data_label_scheme(data_dir) if data_dir else None
    if scheme not in MULTICLASS_SCHEMES:
        return config
    base, tiny = (config[: -len("_tiny")], "_tiny") if config.endswith("_tiny") else (config, "")
    variant = f"{base}_multiclass{tiny}"
    if os.path.isfile(os.path.join(config_dir, f"{variant}.yaml")):
        return variant
    raise CheckpointError(
        f"{data_dir} has {scheme} labels (one class index per window) but {config} trains a binary "
        f"cross-entropy head and {config_dir} has no {variant}.yaml: pass --config with a cross_entropy criterion"
    )


def checkpoint_finetune_config(checkpoint: str, tiny: bool = False, data: Optional[str] = None) -> str:
    """:func:`default_finetune_config` for the model stored in ``checkpoint``, fitted to the labels of
    ``data`` by :func:`label_finetune_config`."""
    name = default_finetune_config(str(load_model_config(checkpoint).get("_name", "")), tiny)
    return label_finetune_config(name, data)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m physioclr_ext.runners.checkpoints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    arch = sub.add_parser("arch-overrides", help="print the encoder architecture of a checkpoint as Hydra overrides")
    arch.add_argument("checkpoint")
    arch.add_argument(
        "--config", default=None, help="the fine-tuning YAML: keys its model section lacks are written as +key=value"
    )
    name = sub.add_parser("model-name", help="print the registered model name of a checkpoint")
    name.add_argument("checkpoint")
    ft = sub.add_parser("finetune-config", help="print the default fine-tuning config name for a checkpoint")
    ft.add_argument("checkpoint")
    ft.add_argument("--tiny", action="store_true", help="the tiny CPU variant")
    ft.add_argument(
        "--data", default=None, help="labelled data: class-index labels (preprocess.json) choose the _multiclass config"
    )
    leads = sub.add_parser("lead-overrides", help="print the checkpoint's lead selection as Hydra overrides")
    leads.add_argument("checkpoint")
    _add_import_parser(sub)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add_import_parser(sub: Any) -> None:
    from physioclr_ext.runners.import_weights import SOURCES  # imports torch: only where the command is parsed

    imp = sub.add_parser(
        "import",
        help="convert released weights of an original code (ST-MEM, ECG-JEPA, LFBT) into a checkpoint of this package",
    )
    imp.add_argument("weights", help="the file saved by the original code (.pth)")
    imp.add_argument("--from", dest="source", required=True, choices=SOURCES)
    imp.add_argument("--out", required=True, help="the fairseq-signals checkpoint to write (.pt)")
    imp.add_argument("--config", default=None, help="pretraining config recorded (default: the method's paper config)")
    imp.add_argument(
        "--leads", nargs="+", default=None, help="lfbt: the backbones' leads in order; ecg_jepa: restrict_leads rows"
    )
    imp.add_argument("--heads", type=int, default=None, help="ecg_jepa: encoder heads of an unpublished width")
    imp.add_argument("--predictor-heads", type=int, default=None, help="ecg_jepa: predictor heads, likewise")
    imp.add_argument("--data", default=None, help="preprocessed data directory recorded as task.data")
    imp.add_argument("--seed", type=int, default=0, help="initialisation of the parts the file does not hold")
    imp.add_argument("--force", action="store_true", help="overwrite --out")


def _run_import(args: argparse.Namespace) -> int:
    from physioclr_ext.runners.compat import UnsupportedEnvironment
    from physioclr_ext.runners.import_weights import WeightsImportError, import_weights, report

    try:
        result = import_weights(
            args.source,
            args.weights,
            args.out,
            config=args.config,
            leads=args.leads,
            heads=args.heads,
            predictor_heads=args.predictor_heads,
            data=args.data,
            seed=args.seed,
            force=args.force,
        )
    except (UnsupportedEnvironment, WeightsImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report(result):
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "import":
        return _run_import(args)
    if args.command == "lead-overrides":
        for line in lead_overrides(args.checkpoint):
            print(line)
        return 0
    if args.command == "model-name":
        print(load_model_config(args.checkpoint).get("_name", ""))
        return 0
    if args.command == "finetune-config":
        print(checkpoint_finetune_config(args.checkpoint, args.tiny, args.data))
        return 0
    if args.config:
        lines = finetuning_overrides(args.checkpoint, args.config)
    else:
        lines = architecture_overrides(load_model_config(args.checkpoint))
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
