"""Late fusion: one classifier per modality, trained separately, predictions combined at inference."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import BaselineModel, Features, Mask, present_stack
from .config import LateFusionConfig


class LateFusionModel(BaselineModel):
    """**Late Fusion** baseline: unimodal classifiers `g_m(a_m(x_m))` trained independently, combined at inference.

    After Gunes & Piccardi, "Affect recognition from face and body: early fusion vs. late fusion" (IEEE SMC 2005),
    listed among the alternating-training baselines of "Modality Equilibrium Matters". The training loss is the sum
    of the unimodal cross-entropies (each over the samples that have the modality); the parameters of different
    modalities are disjoint, so this is separate training done in one loop (only a global gradient-norm clip, when
    enabled, couples them). Inference averages the unimodal probabilities of the present modalities
    (`combine="prob"`, returned as their log) or sums their log-probabilities (`"logprob"`).
    """

    config_class = LateFusionConfig

    def __init__(self, config: LateFusionConfig):
        super().__init__(config)
        self.heads = nn.ModuleDict({m: nn.Linear(config.hidden_size, config.num_labels) for m in config.modalities})
        self.post_init()

    def fuse(self, adapted: Features, present: Mask):
        mods = list(present)
        log_p = torch.stack([F.log_softmax(self.heads[m](adapted[m]), dim=-1) for m in mods])  # (M, B, C)
        weight = present_stack(present, mods).unsqueeze(-1)  # (M, B, 1)
        if self.config.combine == "logprob":
            return (log_p * weight).sum(0), None
        probs = (log_p.exp() * weight).sum(0) / weight.sum(0)  # (B, C)
        return probs.clamp_min(1e-12).log(), None

    def training_loss(self, adapted, present, labels, logits, features):
        losses = []
        for m, h in adapted.items():
            rows = present[m]
            if rows.any():
                losses.append(F.cross_entropy(self.heads[m](h[rows]), labels[rows]))
        return torch.stack(losses).sum()


__all__ = ["LateFusionModel"]
