"""Task ``ecg_ssl_pretraining``: self-supervised pretraining on the package's manifests.

Reads what ``python -m physioclr_ext.preprocess`` writes and builds the views a method asks
for (see :mod:`physioclr_ext.data.ecg_ssl_dataset`): ``mode: views`` with a list of
augmentations (two views per window, SimCLR-style), or a CLOCS mode (``cmsc``, ``cmlc``,
``cmsmlc``) with segment and patient ids. Usable by every method of the package; methods
that need no views simply read ``net_input["source"]``.

YAML::

    task:
      _name: ecg_ssl_pretraining
      data: /path/to/preprocessed
      mode: views
      packed: false       # true: read DATA/packed/ (preprocess with --packed)
      augmentations:
        - {name: time_warp, p: 0.5, n_segments: 4, warp: 0.2}
        - {name: gaussian_noise, factor: 0.1}
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from fairseq_signals.dataclass import Dataclass
from fairseq_signals.tasks import Task, register_task
from omegaconf import II, MISSING, OmegaConf

from physioclr_ext.data.ecg_ssl_dataset import MODES, ECGSegmentPairDataset, ECGSSLDataset
from physioclr_ext.data.packed_dataset import PackedECGSegmentPairDataset, PackedECGSSLDataset


@dataclass
class ECGSSLPretrainingConfig(Dataclass):
    data: str = field(default=MISSING, metadata={"help": "preprocessed data directory (train.tsv, cmsc/train.tsv)"})
    mode: str = field(
        default="views",
        metadata={"help": "views | cmsc | cmlc | cmsmlc (the CLOCS modes are also read by the clocs criterion)"},
    )
    augmentations: Any = field(
        default=None,
        metadata={
            "help": "mode views: list of {name, p, **params}; names: time_warp, permutation, zero_mask, dropout_mask, "
            "gaussian_noise, random_resized_crop, time_out. Empty: two identical views"
        },
    )
    sample_rate: Optional[int] = field(default=None, metadata={"help": "expected sampling rate (None: no check)"})
    leads_to_load: Optional[str] = field(
        default=None, metadata={"help": "leads to read, e.g. \"[0]\" or \"['II','V1']\" (None: all 12)"}
    )
    max_sample_size: Optional[int] = field(default=None, metadata={"help": "crop windows to at most this length"})
    min_sample_size: Optional[int] = field(default=None, metadata={"help": "skip shorter windows"})
    normalize: bool = False
    filter: bool = False
    packed: bool = field(
        default=False,
        metadata={
            "help": "read the windows from DATA/packed/ (one memory-mapped array per split, written by "
            "python -m physioclr_ext.preprocess ... --packed) instead of one .mat file per window; same items"
        },
    )
    seed: int = II("common.seed")


@register_task("ecg_ssl_pretraining", dataclass=ECGSSLPretrainingConfig)
class ECGSSLPretrainingTask(Task):
    cfg: ECGSSLPretrainingConfig

    def __init__(self, cfg: ECGSSLPretrainingConfig) -> None:
        super().__init__(cfg)
        if cfg.mode not in MODES:
            raise ValueError(f"task.mode must be one of {MODES}, not {cfg.mode!r}")

    @classmethod
    def setup_task(cls, cfg: ECGSSLPretrainingConfig, **kwargs: Any) -> "ECGSSLPretrainingTask":
        return cls(cfg)

    def _dataset_kwargs(self, split: str) -> Dict[str, Any]:
        cfg = self.cfg
        return dict(
            sample_rate=cfg.sample_rate,
            max_sample_size=cfg.max_sample_size,
            min_sample_size=cfg.min_sample_size,
            leads_to_load=cfg.leads_to_load,
            normalize=cfg.normalize,
            filter=cfg.filter,
            pad=False,
            seed=cfg.seed,
            training="train" in split,
        )

    def load_dataset(self, split: str, task_cfg: Optional[Dataclass] = None, **kwargs: Any) -> None:
        cfg = self.cfg
        common = self._dataset_kwargs(split)
        if cfg.mode in ("cmsc", "cmsmlc"):
            path = os.path.join(cfg.data, "cmsc", f"{split}.tsv")
            pairs = PackedECGSegmentPairDataset if cfg.packed else ECGSegmentPairDataset
            self.datasets[split] = pairs(path, mode=cfg.mode, **common)
        else:
            augmentations = (
                OmegaConf.to_container(cfg.augmentations, resolve=True)
                if OmegaConf.is_config(cfg.augmentations)
                else cfg.augmentations
            )
            path = os.path.join(cfg.data, f"{split}.tsv")
            self.datasets[split] = self._windows_class()(path, mode=cfg.mode, augmentations=augmentations, **common)

    def load_windows(self, split: str) -> None:
        """Every window of ``<data>/<split>.tsv`` on its own, in manifest order and without augmentation:
        what embedding and evaluation read, whatever the pretraining mode (CMSC and CMSMLC otherwise
        read pairs of adjacent windows from the pair manifest)."""
        common = {**self._dataset_kwargs(split), "training": False}
        path = os.path.join(self.cfg.data, f"{split}.tsv")
        self.datasets[split] = self._windows_class()(path, mode="views", augmentations=None, **common)

    def _windows_class(self) -> type:
        return PackedECGSSLDataset if self.cfg.packed else ECGSSLDataset

    def max_positions(self) -> tuple:
        return (sys.maxsize, sys.maxsize)

    def filter_indices_by_size(
        self, indices: Any, dataset: Any, max_positions: Any = None, ignore_invalid_inputs: bool = False
    ) -> Any:
        return indices  # windows are cropped in the collator; nothing to filter
