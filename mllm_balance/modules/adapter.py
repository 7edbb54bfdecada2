"""Per-modality adapter: `a_m(x) = ReLU(W_m x + b_m)`."""

from __future__ import annotations

import torch
from torch import nn


class ModalityAdapter(nn.Module):
    """Linear + ReLU projection of one modality's frozen features to the shared hidden size.

    Args:
        in_features (`int`): Feature size `D_m` of the modality.
        hidden_size (`int`): Output size `d`, shared by all modalities.
        dropout (`float`, *optional*, defaults to 0.0): Dropout on the input features during training.
    """

    def __init__(self, in_features: int, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(in_features, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., D_m) -> (..., d)
        return torch.relu(self.proj(self.dropout(x)))
