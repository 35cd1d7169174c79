"""The core config of a component from its fairseq-signals config.

The fairseq-signals dataclasses inherit the core ones, but at training time the config is an
omegaconf node (lists are ``ListConfig``); the core modules and losses get a plain dataclass.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Type, TypeVar

from omegaconf import OmegaConf

T = TypeVar("T")


def core_config(cls: Type[T], cfg: Any) -> T:
    """``cls`` (a core config dataclass) built from the same-named fields of ``cfg``, a dataclass or
    omegaconf node; omegaconf containers become plain lists and dicts.

    Example:
        >>> from physioclr_ext.modules.ecg_mae import ECGMAEConfig
        >>> core_config(ECGMAEConfig, OmegaConf.create({"embed_dim": 32, "_name": "ecg_mae"})).embed_dim
        32
    """
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if hasattr(cfg, f.name):
            value = getattr(cfg, f.name)
            values[f.name] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return cls(**values)
