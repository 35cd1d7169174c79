"""Task ``ecg_feature``: PhysioCLR pretraining (Maghsoodi et al., arXiv 2509.08116).

fairseq-signals' ECG pretraining configuration (``ECGPretrainingConfig``: sampling rate, lead
selection, padding, the random-leads-masking perturbations, ...) plus what PhysioCLR needs: the
feature tables written by ``python -m physioclr_ext.preprocess ... --features`` (which set,
their expected width after PCA), the heartbeat-shuffling mode and the temporal neighbour.
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
"""


import os
from dataclasses import dataclass, field
from typing import Any, Optional

from fairseq_signals.dataclass import Dataclass
from fairseq_signals.tasks import register_task
from fairseq_signals.tasks.ecg_pretraining import ECGPretrainingConfig, ECGPretrainingTask
from omegaconf import II

from physioclr_ext.data.physioclr_dataset import FEATURE_SETS, PhysioCLRDataset
from physioclr_ext.features.store import split_path


@dataclass
class ECGFeatureConfig(ECGPretrainingConfig):
    feature_set: str = field(default="vectors", metadata={
        "help": "vectors (z-scored and PCA-reduced on the training windows) | raw (the extracted features)"})
    feature_dim: Optional[int] = field(default=None, metadata={
        "help": "expected width of the feature vectors, e.g. 50 PCA components as in the paper "
                "(None: accept what the tables hold)"})
    shuffle_mode: str = field(default="keep_ends", metadata={
        "help": "heartbeat shuffling: keep_ends (beats between the first and last R-peak permuted, ends kept) | "
                "published (the release: prefix dropped, zero-filled tail)"})
    use_neighbour: bool = field(default=True, metadata={
        "help": "load each window's temporal neighbour (next window of the same record, from windows.csv) "
                "as an extra positive"})
    seed: int = II("common.seed")


@register_task("ecg_feature", dataclass=ECGFeatureConfig)
class ECGFeatureTask(ECGPretrainingTask):
    cfg: ECGFeatureConfig

    def __init__(self, cfg: ECGFeatureConfig) -> None:
        super().__init__(cfg)
        if cfg.feature_set not in FEATURE_SETS:
            raise ValueError(f"task.feature_set must be one of {FEATURE_SETS}, not {cfg.feature_set!r}")

    @classmethod
    def setup_task(cls, cfg: ECGFeatureConfig, **kwargs: Any) -> "ECGFeatureTask":
        return cls(cfg)

    def load_dataset(self, split: str, task_cfg: Optional[Dataclass] = None, **kwargs: Any) -> None:
        cfg = self.cfg
        if not os.path.exists(split_path(cfg.data, split)):
            raise FileNotFoundError(
                f"task ecg_feature: no feature table {split_path(cfg.data, split)}; run preprocess with --features "
                f"(python -m physioclr_ext.preprocess ... --features, or ./preprocess_ecg.sh), or "
                f"python -m physioclr_ext.features {cfg.data}")
        kwargs.pop("combine", None)
        kwargs.pop("epoch", None)
        dataset = PhysioCLRDataset(
            os.path.join(cfg.data, f"{split}.tsv"), sample_rate=cfg.sample_rate, feature_set=cfg.feature_set,
            shuffle_mode=cfg.shuffle_mode, use_neighbour=cfg.use_neighbour, seed=cfg.seed,
            perturbation_mode=cfg.perturbation_mode, max_sample_size=cfg.max_sample_size,
            min_sample_size=cfg.min_sample_size, pad=cfg.enable_padding, pad_leads=cfg.enable_padding_leads,
            leads_to_load=cfg.leads_to_load, filter=cfg.filter, normalize=cfg.normalize, mean_path=cfg.mean_path,
            std_path=cfg.std_path, training="train" in split, **self._get_perturbation_kwargs(), **kwargs)
        width = dataset.features.shape[1]
        if cfg.feature_dim is not None and width != cfg.feature_dim:
            raise ValueError(f"task.feature_dim is {cfg.feature_dim} but the {cfg.feature_set} features of {split} "
                             f"have {width} dimensions; re-extract with --features-pca {cfg.feature_dim} or set "
                             f"task.feature_dim={width}")
        self.datasets[split] = dataset
