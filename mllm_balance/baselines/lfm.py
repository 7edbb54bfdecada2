"""LFM: supervised fusion loss dynamically integrated with an unsupervised cross-modal term."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .base import BaselineModel, Features, Mask, present_stack
from .config import BaselineConfig


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the Jensen-Shannon divergence between `softmax(logits_p)` and `softmax(logits_q)`."""
    log_p, log_q = F.log_softmax(logits_p, dim=-1), F.log_softmax(logits_q, dim=-1)  # (B, C)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - torch.log(torch.tensor(2.0))  # (B, C)
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    return (0.5 * (kl_pm + kl_qm)).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between paired rows of `a` and `b` `(B, d)` (the pairs are the positives)."""
    sim = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature  # (B, B)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))


class LFMModel(BaselineModel):
    """**LFM** baseline: unimodal heads whose averaged logits are the prediction, trained with a weighted sum of the
    supervised fusion loss and an unsupervised cross-modal term whose weight changes during training.

    Yang, Wan, Jiang & Xu, "Facilitating Multimodal Classification via Dynamically Learning Modality Gap",
    NeurIPS 2024. Loss: `w(t) * CE(mean_m g_m(h_m), y) + (1 - w(t)) * U`, where `U` is the mean over modality pairs
    of the Jensen-Shannon divergence between their predictions (`lfm_alignment="js"`, the term of the authors'
    released script) or of a symmetric InfoNCE between their adapted features (`"contrastive"`, the paper's
    contrastive intervention), and `w(t)` rises linearly from `lfm_cls_weight_start` to `lfm_cls_weight_end` over
    the optimizer steps ([`TrainingProgressCallback`] sets the progress).

    Departures: the released script uses a degree-5 polynomial of the epoch fitted to its learned weights (rising
    from about 0.2); here the schedule is linear over the run's steps, and the paper's learnable bilevel strategy
    is not implemented. The released script multiplies the loss by 2 (a constant scale, left out).
    """

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        self.heads = nn.ModuleDict({m: nn.Linear(config.hidden_size, config.num_labels) for m in config.modalities})
        self.train_progress = 0.0
        self.post_init()

    def cls_weight(self) -> float:
        start, end = self.config.lfm_cls_weight_start, self.config.lfm_cls_weight_end
        return float(start + (end - start) * self.train_progress)

    def unimodal(self, adapted: Features) -> dict[str, torch.Tensor]:
        return {m: self.heads[m](h) for m, h in adapted.items()}  # (B, C) each

    def fuse(self, adapted: Features, present: Mask):
        mods = list(present)
        uni = torch.stack([self.heads[m](adapted[m]) for m in mods])  # (M, B, C)
        weight = present_stack(present, mods).unsqueeze(-1)  # (M, B, 1)
        return (uni * weight).sum(0) / weight.sum(0), None

    def training_loss(self, adapted, present, labels, logits, features):
        terms = []
        for m, k in itertools.combinations(list(adapted), 2):
            rows = present[m] & present[k]
            if int(rows.sum()) < 2:
                continue
            if self.config.lfm_alignment == "js":
                terms.append(js_divergence(self.heads[m](adapted[m][rows]), self.heads[k](adapted[k][rows])))
            else:
                terms.append(info_nce(adapted[m][rows], adapted[k][rows], self.config.lfm_temperature))
        unsupervised = torch.stack(terms).mean() if terms else logits.sum() * 0.0
        w = self.cls_weight()
        return w * F.cross_entropy(logits, labels) + (1.0 - w) * unsupervised


__all__ = ["LFMModel", "js_divergence", "info_nce"]
