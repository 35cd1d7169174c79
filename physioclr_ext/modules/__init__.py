"""Framework-free network modules (torch only): ECG encoders ``(B, C, T) -> (B, E)``, MLP heads, and the
transformer, patching and masking pieces of the masked autoencoders."""

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
from physioclr_ext.modules.patching import patchify, random_masking, unpatchify
from physioclr_ext.modules.transformer import Transformer, TransformerBlock, init_weights, sincos_1d

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
    "Transformer",
    "TransformerBlock",
    "build_encoder",
    "init_weights",
    "patchify",
    "projection_head_simclr",
    "random_masking",
    "sincos_1d",
    "unpatchify",
]
