"""Concatenation fusion: one linear head on the concatenated adapted features (zeros for a missing modality)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import BaselineModel, Features, Mask
from .config import ConcatConfig


class ConcatHead(nn.Module):
    """`logits = W [h_1; ...; h_n] + b = sum_m W_m h_m + b`, a missing modality's block being zero.

    Args:
        modalities (`Sequence[str]`): block order of the concatenation.
        hidden_size (`int`): size `d` of every block.
        num_labels (`int`): number of classes `C`.
    """

    def __init__(self, modalities: Sequence[str], hidden_size: int, num_labels: int):
        super().__init__()
        self.modalities = list(modalities)
        self.hidden_size = hidden_size
        self.classifier = nn.Linear(hidden_size * len(self.modalities), num_labels)

    def forward(self, adapted: Features, present: Mask) -> tuple[torch.Tensor, torch.Tensor]:
        ref = next(iter(adapted.values()))
        zeros = ref.new_zeros(ref.shape[0], self.hidden_size)
        fused = torch.cat([adapted.get(m, zeros) for m in self.modalities], dim=-1)  # (B, n * d)
        return self.classifier(fused), fused

    def block(self, modality: str) -> torch.Tensor:
        """`W_m`, the columns of the weight that read modality `modality`: `(C, d)`."""
        i = self.modalities.index(modality)
        return self.classifier.weight[:, i * self.hidden_size : (i + 1) * self.hidden_size]

    def unimodal(self, adapted: Features) -> dict[str, torch.Tensor]:
        """Additive decomposition `W_m h_m + b / n`, as the OGM-GE authors split their concatenation head."""
        bias = self.classifier.bias / len(self.modalities)
        return {m: h @ self.block(m).T + bias for m, h in adapted.items()}  # (B, C) each


class ConcatModel(BaselineModel):
    """**Concat** fusion baseline: `y = W [a_1(x_1); ...; a_n(x_n)] + b`, trained jointly with cross-entropy.

    The concatenation baseline of OGM-GE (Peng et al., CVPR 2022) and of Table 1 of "Modality Equilibrium Matters".
    A missing modality's block is zero, so coalition scores (Shapley values) use the same head.
    """

    config_class = ConcatConfig

    def __init__(self, config: ConcatConfig):
        super().__init__(config)
        self.head = ConcatHead(config.modalities, config.hidden_size, config.num_labels)
        self.post_init()

    def fuse(self, adapted: Features, present: Mask):
        return self.head(adapted, present)


__all__ = ["ConcatHead", "ConcatModel"]
