"""The pooled representation of any fairseq-signals model, (B, E).

In order of preference:

1. ``model.extract_embedding(source, padding_mask) -> (B, E)`` where a model defines it (the
   package's methods do, returning their paper's representation);
2. otherwise the mean over time (padding excluded) of ``extract_features(...)["x"]``
   (B, T, C) of the model, or of its ``encoder`` for fine-tuning models (fairseq-signals'
   ``wav2vec2``, ``ecg_transformer`` and ``*_classifier`` models).
"""

from __future__ import annotations

from typing import Any

import torch

from physioclr_ext.modules.pooling import masked_mean


def pooled_embedding(model: Any, net_input: dict) -> torch.Tensor:
    """The representation of a batch, (B, E); see the module docstring."""
    source, padding_mask = net_input["source"], net_input.get("padding_mask")
    if callable(getattr(model, "extract_embedding", None)):
        return model.extract_embedding(source, padding_mask=padding_mask)
    from fairseq_signals.models.finetuning_model import FinetuningModel

    # Pretraining models (wav2vec2, ecg_transformer) extract features themselves (their
    # `encoder` attribute is the bare transformer stack); fine-tuning models wrap theirs.
    encoder = model.encoder if isinstance(model, FinetuningModel) else model
    res = encoder.extract_features(source, padding_mask=padding_mask)
    return masked_mean(res["x"], res.get("padding_mask"))
