"""Task ``ecg_triplet``: fairseq-signals' ``ecg_classification`` with class-balanced training batches for
triplet fine-tuning (model ``ecg_triplet``, criterion ``triplet``).

With ``class_balanced: true`` every training batch holds ``classes_per_batch`` classes (0: all of them)
with ``dataset.batch_size // classes_per_batch`` windows each, drawn by
:func:`physioclr_ext.losses.triplet_batches.class_balanced_batches` seeded from ``(seed, epoch)``, so every
anchor has a positive in its batch. The batches go to fairseq-signals' ``EpochBatchIterator`` as a callable
batch sampler: redrawn every epoch, sharded over data-parallel workers as usual (each worker draws the same
batches), repeated exactly when a run resumes mid-epoch. Validation and test subsets keep the plain batches
(the k-NN selection metric reads every window once). ``class_balanced: false`` is the study's shuffled
batches. Labels are read from the windows' ``.mat`` files (``label``, or ``idx`` into ``task.label_file``)
when the training subset is loaded.

YAML::

    task:
      _name: ecg_triplet
      data: /path/to/preprocessed
      class_balanced: true
      classes_per_batch: 0
"""

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import scipy.io
from fairseq_signals.dataclass import Dataclass
from fairseq_signals.tasks import register_task
from fairseq_signals.tasks.ecg_classification import ECGClassificationConfig, ECGDiagnosisTask
from omegaconf import II

from physioclr_ext.losses.triplet_batches import class_balanced_batches

logger = logging.getLogger(__name__)


@dataclass
class ECGTripletTaskConfig(ECGClassificationConfig):
    class_balanced: bool = field(
        default=True, metadata={"help": "training batches of classes_per_batch classes x K windows (false: shuffled)"}
    )
    classes_per_batch: int = field(
        default=0, metadata={"help": "classes in each balanced batch (0: every class with two windows)"}
    )
    seed: int = II("common.seed")


def window_labels(dataset: Any) -> np.ndarray:
    """Labels (N, L) of every window of a fairseq-signals ``FileECGDataset``, read from its ``.mat`` files
    (only the ``label`` / ``idx`` variables are read, not the signals)."""
    label_array = getattr(dataset, "label_array", None)
    key = "idx" if label_array is not None else "label"
    rows = []
    for name in dataset.fnames:
        mat = scipy.io.loadmat(os.path.join(dataset.root_dir, str(name)), variable_names=[key])
        value = np.asarray(mat[key]).reshape(-1)
        rows.append(label_array[int(value[0])] if label_array is not None else value)
    return np.stack(rows).reshape(len(rows), -1)


@register_task("ecg_triplet", dataclass=ECGTripletTaskConfig)
class ECGTripletTask(ECGDiagnosisTask):
    cfg: ECGTripletTaskConfig

    @classmethod
    def setup_task(cls, cfg: ECGTripletTaskConfig, **kwargs: Any) -> "ECGTripletTask":
        return cls(cfg)

    def load_dataset(self, split: str, task_cfg: Optional[Dataclass] = None, label: bool = True, **kwargs: Any) -> None:
        super().load_dataset(split, task_cfg=task_cfg, label=label, **kwargs)
        if self.cfg.class_balanced and label and "train" in split:
            dataset = self.datasets[split]
            dataset.window_labels = window_labels(dataset)
            logger.info(f"class-balanced batches on {split}: {len(dataset.window_labels)} labelled windows")

    def get_batch_iterator(self, dataset: Any, max_signals: Optional[int] = None, **kwargs: Any) -> Any:
        labels = getattr(dataset, "window_labels", None)
        if labels is None:
            return super().get_batch_iterator(dataset, max_signals=max_signals, **kwargs)
        if not max_signals:
            raise ValueError("class_balanced needs dataset.batch_size (a number of windows per batch)")
        reuse = not kwargs.get("disable_iterator_cache", False) and self.can_reuse_epoch_itr(dataset)
        if reuse and dataset in self.dataset_to_epoch_iter:
            return self.dataset_to_epoch_iter[dataset]
        from fairseq_signals.data import iterators

        cfg = self.cfg
        first = class_balanced_batches(labels, max_signals, cfg.classes_per_batch, cfg.seed, 1)  # fails early

        def sampler(_dataset: Any, epoch: int) -> Any:
            return class_balanced_batches(labels, max_signals, cfg.classes_per_batch, cfg.seed, epoch)

        epoch = kwargs.get("epoch", 1)
        dataset.set_epoch(epoch)
        logger.info(f"class-balanced batches: {len(first)} an epoch, up to {max_signals} windows each")
        epoch_iter = iterators.EpochBatchIterator(
            dataset=dataset,
            collate_fn=dataset.collator,
            batch_sampler=sampler,
            seed=kwargs.get("seed", 1),
            num_shards=kwargs.get("num_shards", 1),
            shard_id=kwargs.get("shard_id", 0),
            num_workers=kwargs.get("num_workers", 0),
            epoch=epoch,
            buffer_size=kwargs.get("data_buffer_size", 0),
        )
        if reuse:
            self.dataset_to_epoch_iter[dataset] = epoch_iter
        return epoch_iter
