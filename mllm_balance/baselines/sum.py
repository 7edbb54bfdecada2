"""Sum fusion: the adapted features of the present modalities are summed and one linear head classifies them."""

from __future__ import annotations

import torch
from torch import nn

from .base import BaselineModel, Features, Mask
from .config import SumConfig


class SumHead(nn.Module):
    """`logits = g(sum_m h_m)` over the present modalities (missing ones are zero), `g` linear `d -> C`.

    Args:
        hidden_size (`int`): size `d` of every adapted feature.
        num_labels (`int`): number of classes `C`.
        num_modalities (`int`): `n`, used to split the bias in the unimodal decomposition.
    """

    def __init__(self, hidden_size: int, num_labels: int, num_modalities: int):
        super().__init__()
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.num_modalities = num_modalities

    def forward(self, adapted: Features, present: Mask) -> tuple[torch.Tensor, torch.Tensor]:
        fused = torch.stack([adapted[m] for m in present]).sum(0)  # (B, d)
        return self.classifier(fused), fused

    def unimodal(self, adapted: Features) -> dict[str, torch.Tensor]:
        """Additive decomposition `W h_m + b / n`: the terms sum to the fused logits when all are present."""
        bias = self.classifier.bias / self.num_modalities
        return {m: h @ self.classifier.weight.T + bias for m, h in adapted.items()}  # (B, C) each


class SumModel(BaselineModel):
    """**Sum** fusion baseline: `y = g(sum_m a_m(x_m))`, trained jointly with cross-entropy.

    The simple feature-sum baseline of the OGM-GE comparison (Peng et al., "Balanced Multimodal Learning via
    On-the-fly Gradient Modulation", CVPR 2022) and of Table 1 of "Modality Equilibrium Matters". The authors'
    `SumFusion` adds two linear heads `fc_x(x) + fc_y(y)`, which equals a concatenation with two biases; here Sum
    sums the features before one shared head, so that it differs from [`ConcatModel`] and matches Eq. 3 with
    `Fusion = sum`.
    """

    config_class = SumConfig

    def __init__(self, config: SumConfig):
        super().__init__(config)
        self.head = SumHead(config.hidden_size, config.num_labels, len(config.modalities))
        self.post_init()

    def fuse(self, adapted: Features, present: Mask):
        return self.head(adapted, present)


__all__ = ["SumHead", "SumModel"]
