"""Framework-free network modules (torch only): ECG encoders ``(B, C, T) -> (B, E)`` and MLP heads."""

from physioclr_ext.modules.clocs_encoder import ClocsCNN, ClocsCNNConfig
from physioclr_ext.modules.encoders import (
    CNNAttentionLSTMConfig,
    CNNAttentionLSTMEncoder,
    CNNConfig,
    CNNEncoder,
    CNNLSTMConfig,
    CNNLSTMEncoder,
    CNNTransformerConfig,
    CNNTransformerEncoder,
    build_encoder,
)
from physioclr_ext.modules.heads import MLPHead, projection_head_simclr

__all__ = [
    "ClocsCNN",
    "ClocsCNNConfig",
    "CNNAttentionLSTMConfig",
    "CNNAttentionLSTMEncoder",
    "CNNConfig",
    "CNNEncoder",
    "CNNLSTMConfig",
    "CNNLSTMEncoder",
    "CNNTransformerConfig",
    "CNNTransformerEncoder",
    "MLPHead",
    "build_encoder",
    "projection_head_simclr",
]
