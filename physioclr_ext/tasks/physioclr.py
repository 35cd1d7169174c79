"""Task ``ecg_feature``: PhysioCLR pretraining (Maghsoodi et al., arXiv 2509.08116).

fairseq-signals' ECG pretraining configuration (``ECGPretrainingConfig``: sampling rate, lead
selection, padding, the random-leads-masking perturbations, ...) plus what PhysioCLR needs: the
feature tables written by ``python -m physioclr_ext.preprocess ... --features`` (which set; their
width, ``feature_dim``, is read from ``DATA/features/transform.npz``), the heartbeat-shuffling mode
and the temporal neighbour.
Batches come from :class:`physioclr_ext.data.physioclr_dataset.PhysioCLRDataset`.

The released code imported ``AudioPretrainingTask`` / ``AudioPretrainingConfig`` from
``fairseq_signals.tasks``, which do not exist there; this task extends the real
``ECGPretrainingTask``.

YAML::

    task:
      _name: ecg_feature
      data: /path/to/preprocessed      # train.tsv, windows.csv, features/train.npz
      feature_set: vectors
      shuffle_mode: keep_ends
      use_neighbour: true
      packed: false                    # true: read DATA/packed/ (preprocess with --packed)
"""

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from fairseq_signals.dataclass import Dataclass
from fairseq_signals.tasks import register_task
from fairseq_signals.tasks.ecg_pretraining import ECGPretrainingConfig, ECGPretrainingTask
from omegaconf import II

from physioclr_ext.data.packed_dataset import PackedPhysioCLRDataset
from physioclr_ext.data.physioclr_dataset import FEATURE_SETS, PhysioCLRDataset
from physioclr_ext.features.store import split_path, stored_feature_dim, transform_path

logger = logging.getLogger(__name__)


@dataclass
class PhysioCLRTaskConfig(ECGPretrainingConfig):
    feature_set: str = field(
        default="vectors",
        metadata={"help": "vectors (z-scored and PCA-reduced on the training windows) | raw (the extracted features)"},
    )
    feature_dim: Optional[int] = field(
        default=None,
        metadata={
            "help": "width of the feature vectors; leave unset (null or 0): the task reads it from "
            "DATA/features/transform.npz. When set, it must equal that width (a check, not a choice: the "
            "width is chosen at extraction, --features-pca)"
        },
    )
    shuffle_mode: str = field(
        default="keep_ends",
        metadata={
            "help": "heartbeat shuffling: keep_ends (beats between the first and last R-peak permuted, ends kept) | "
            "published (the release: prefix dropped, zero-filled tail)"
        },
    )
    use_neighbour: bool = field(
        default=True,
        metadata={
            "help": "load each window's temporal neighbour (next window of the same record, from windows.csv) "
            "as an extra positive of the physioclr criterion, which reads this option"
        },
    )
    packed: bool = field(
        default=False,
        metadata={
            "help": "read the windows from DATA/packed/ (one memory-mapped array per split, written by "
            "python -m physioclr_ext.preprocess ... --packed) instead of one .mat file per window; same items"
        },
    )
    seed: int = II("common.seed")


@register_task("ecg_feature", dataclass=PhysioCLRTaskConfig)
class PhysioCLRTask(ECGPretrainingTask):
    cfg: PhysioCLRTaskConfig

    def __init__(self, cfg: PhysioCLRTaskConfig) -> None:
        super().__init__(cfg)
        if cfg.feature_set not in FEATURE_SETS:
            raise ValueError(f"task.feature_set must be one of {FEATURE_SETS}, not {cfg.feature_set!r}")
        self.feature_dim: Optional[int] = resolve_feature_dim(cfg)

    @classmethod
    def setup_task(cls, cfg: PhysioCLRTaskConfig, **kwargs: Any) -> "PhysioCLRTask":
        return cls(cfg)

    def load_dataset(self, split: str, task_cfg: Optional[Dataclass] = None, **kwargs: Any) -> None:
        cfg = self.cfg
        if not os.path.exists(split_path(cfg.data, split)):
            raise FileNotFoundError(
                f"task ecg_feature: no feature table {split_path(cfg.data, split)}; run preprocess with --features "
                f"(python -m physioclr_ext.preprocess ... --features, or ./preprocess_ecg.sh), or "
                f"python -m physioclr_ext.features {cfg.data}"
            )
        kwargs.pop("combine", None)
        kwargs.pop("epoch", None)
        dataset = (PackedPhysioCLRDataset if cfg.packed else PhysioCLRDataset)(
            os.path.join(cfg.data, f"{split}.tsv"),
            sample_rate=cfg.sample_rate,
            feature_set=cfg.feature_set,
            shuffle_mode=cfg.shuffle_mode,
            use_neighbour=cfg.use_neighbour,
            seed=cfg.seed,
            perturbation_mode=cfg.perturbation_mode,
            max_sample_size=cfg.max_sample_size,
            min_sample_size=cfg.min_sample_size,
            pad=cfg.enable_padding,
            pad_leads=cfg.enable_padding_leads,
            leads_to_load=cfg.leads_to_load,
            filter=cfg.filter,
            normalize=cfg.normalize,
            mean_path=cfg.mean_path,
            std_path=cfg.std_path,
            training="train" in split,
            **self._get_perturbation_kwargs(),
            **kwargs,
        )
        width = dataset.features.shape[1]
        if self.feature_dim and width != self.feature_dim:
            raise ValueError(
                f"the {cfg.feature_set} features of {split} ({split_path(cfg.data, split)}) have "
                f"{width} dimensions but {transform_path(cfg.data)} gives {self.feature_dim}: "
                f"the feature tables are stale, re-extract them (python -m physioclr_ext.features "
                f"{cfg.data})"
            )
        self.datasets[split] = dataset


def resolve_feature_dim(cfg: PhysioCLRTaskConfig) -> Optional[int]:
    """``task.feature_dim``: the width saved with the data's features; a set value must equal it.

    Writes the width into ``cfg`` and logs it (fairseq-signals' ``setup_task`` hands the task a merged
    copy of its config, so the checkpoint keeps the configured value). Returns ``cfg.feature_dim``
    unchanged when the data has no features (``load_dataset`` then says how to extract them).
    ``None`` and 0 mean unset.

    Raises:
        ValueError: ``cfg.feature_dim`` is set and differs from the data's width (naming both and the file).
    """
    try:
        width, path = stored_feature_dim(cfg.data, cfg.feature_set)
    except FileNotFoundError:
        return cfg.feature_dim
    if cfg.feature_dim and cfg.feature_dim != width:
        raise ValueError(
            f"task.feature_dim is {cfg.feature_dim} but the {cfg.feature_set} features of {cfg.data} "
            f"have {width} dimensions ({path}); leave task.feature_dim unset (null) to read it from "
            f"the data, or re-extract the features with --features-pca {cfg.feature_dim}"
        )
    cfg.feature_dim = width
    logger.info("task.feature_dim: %d (read from %s)", width, path)
    return width
