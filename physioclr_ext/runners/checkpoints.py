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
    python -m physioclr_ext.runners.checkpoints finetune-config checkpoint_last.pt --tiny
"""

from __future__ import annotations

import argparse
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


def load_model_config(path: str) -> Dict[str, Any]:
    """The ``model`` section of a checkpoint's configuration, as a plain dict.

    Loading unpickles the file (``weights_only=False``, as fairseq-signals does):
    only load checkpoints you trust.
    """
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    cfg = state.get("cfg") or {}
    model = cfg.get("model") if hasattr(cfg, "get") else None
    if model is None:
        raise ValueError(f"{path}: no model configuration in this checkpoint")
    return dict(model)


def lead_overrides(path: str) -> List[str]:
    """The lead selection a checkpoint was trained with (``task.leads_to_load``), as Hydra overrides
    for fairseq-signals' inference, which otherwise reads every lead with its own task config;
    empty where the checkpoint used every lead."""
    import torch

    cfg = torch.load(path, map_location="cpu", weights_only=False).get("cfg") or {}
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


def checkpoint_finetune_config(checkpoint: str, tiny: bool = False) -> str:
    """:func:`default_finetune_config` for the model stored in ``checkpoint``."""
    return default_finetune_config(str(load_model_config(checkpoint).get("_name", "")), tiny)


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
    leads = sub.add_parser("lead-overrides", help="print the checkpoint's lead selection as Hydra overrides")
    leads.add_argument("checkpoint")
    args = parser.parse_args(argv)
    if args.command == "lead-overrides":
        for line in lead_overrides(args.checkpoint):
            print(line)
        return 0
    if args.command == "model-name":
        print(load_model_config(args.checkpoint).get("_name", ""))
        return 0
    if args.command == "finetune-config":
        print(checkpoint_finetune_config(args.checkpoint, args.tiny))
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
