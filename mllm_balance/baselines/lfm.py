"""LFM: supervised fusion loss dynamically integrated with an unsupervised cross-modal term."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .base import BaselineModel, Features, Mask, present_stack
from .config import LFM_SCHEDULES, LFMConfig

# `getAlpha_Learnable_Fitted` of the authors' `Crema_epoch.py` (njustkmg/NeurIPS24-LFM): the weight of the
# supervised term at epoch e (0-based, of 200) is sum_i c_i e^i, the alignment term gets 1 minus it.
LFM_RELEASE_COEFFICIENTS = (
    2.04623704e-01,
    3.35472727e-03,
    1.22989557e-04,
    -2.92947416e-06,
    2.23835486e-08,
    -5.39717505e-11,
)
LFM_RELEASE_EPOCHS = 200
# The release optimises 2 * (w * CE + (1 - w) * JS).
LFM_LOSS_SCALE = 2.0


def lfm_release_weight(progress: float) -> float:
    """Weight of the supervised term of the released schedule at `progress` in [0, 1] of training: the release's
    polynomial at epoch `progress * 199`, so a run of any length traverses the release's epochs 0-199.

    It is 0.2046 at the start, rises to about 1.0106 near epoch 183 (the alignment term's weight is then slightly
    negative, as in the release) and ends at 0.9160.
    """
    epoch = min(max(progress, 0.0), 1.0) * (LFM_RELEASE_EPOCHS - 1)
    return float(sum(c * epoch**i for i, c in enumerate(LFM_RELEASE_COEFFICIENTS)))


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the Jensen-Shannon divergence between `softmax(logits_p)` and `softmax(logits_q)`."""
    log_p, log_q = F.log_softmax(logits_p, dim=-1), F.log_softmax(logits_q, dim=-1)  # (B, C)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - torch.log(torch.tensor(2.0))  # (B, C)
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(-1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(-1)
    return (0.5 * (kl_pm + kl_qm)).mean()


def release_alignment(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """The alignment term of the authors' released `Crema_epoch.py` (`Alignment`): `0.5 * (KL(m || p) + KL(m || q))`,
    `m = (p + q) / 2`, mean over the batch, `p, q` the softmax of the logits.

    The release calls it a Jensen-Shannon score, but `F.kl_div(p.log(), m)` is `KL(m || p)`: the divergences run
    from the mixture to each prediction, the reverse of the Jensen-Shannon divergence ([`js_divergence`]). It is
    also symmetric in `p, q` and zero exactly when they agree.
    """
    log_p, log_q = F.log_softmax(logits_p, dim=-1), F.log_softmax(logits_q, dim=-1)  # (B, C)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - torch.log(torch.tensor(2.0))  # (B, C)
    m = log_m.exp()
    kl_mp = (m * (log_m - log_p)).sum(-1)
    kl_mq = (m * (log_m - log_q)).sum(-1)
    return (0.5 * (kl_mp + kl_mq)).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between paired rows of `a` and `b` `(B, d)` (the pairs are the positives)."""
    sim = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature  # (B, B)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))


class LFMModel(BaselineModel):
    """**LFM** baseline: unimodal heads whose averaged logits are the prediction, trained with a weighted sum of the
    supervised fusion loss and an unsupervised cross-modal term whose weight changes during training.

    Yang, Wan, Jiang & Xu, "Facilitating Multimodal Classification via Dynamically Learning Modality Gap",
    NeurIPS 2024. Loss: `2 * (w(t) * CE(mean_m g_m(h_m), y) + (1 - w(t)) * U)`, as in the authors' released
    `Crema_epoch.py` (njustkmg/NeurIPS24-LFM), where `U` is the mean over modality pairs of a divergence between
    their predictions or features (`alignment`): `"release"` (default), the release's `Alignment`,
    `0.5 * (KL(m || p) + KL(m || q))` with `m` the mean prediction ([`release_alignment`]); `"js"`, the
    Jensen-Shannon divergence `0.5 * (KL(p || m) + KL(q || m))` that the release's name for it suggests; or
    `"contrastive"`, a symmetric InfoNCE between the adapted features (the paper's contrastive intervention). `t` is
    the share of the optimizer steps done ([`TrainingProgressCallback`] sets it). `w(t)` (`schedule`):

    - `"release"` (default): the release's `getAlpha_Learnable_Fitted`, a degree-5 polynomial of the epoch fitted to
      the weights its learnable strategy found over 200 epochs, evaluated at epoch `199 t` ([`lfm_release_weight`]):
      0.205 at the start, 0.436 at a quarter, 0.538 at half, about 1.01 around 92 % (the alignment term then gets
      a small negative weight, as in the release) and 0.916 at the end, so late training is nearly pure
      cross-entropy;
    - `"linear"`: from `cls_weight_start` to `cls_weight_end`, linear in `t`.

    The registry trains it as the release does: SGD with momentum 0.9, learning rate 1e-2 and weight decay 1e-4.

    Departures: the schedule follows the steps (the release holds the weight of an epoch for the whole epoch) and
    is stretched over the run whatever its length; the paper's learnable bilevel strategy
    (`Crema_epoch_learnable.py`) is not implemented; the learning rate follows the Trainer's scheduler (the release
    uses StepLR, x0.1 every 70 epochs), the Trainer clips gradients when `max_grad_norm > 0` and exempts biases from
    weight decay (the release does neither); with several pairs of modalities `U` is their mean.
    """

    config_class = LFMConfig

    def __init__(self, config: LFMConfig):
        super().__init__(config)
        self.heads = nn.ModuleDict({m: nn.Linear(config.hidden_size, config.num_labels) for m in config.modalities})
        self.train_progress = 0.0
        self.post_init()

    def cls_weight(self) -> float:
        """Weight `w(t)` of the supervised term at the current progress `t = self.train_progress`."""
        schedule = self.config.schedule
        if schedule == "release":
            return lfm_release_weight(self.train_progress)
        if schedule == "linear":
            start, end = self.config.cls_weight_start, self.config.cls_weight_end
            return float(start + (end - start) * self.train_progress)
        raise ValueError(f"schedule must be one of {LFM_SCHEDULES}, got {schedule!r}")

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
            if self.config.alignment == "release":
                terms.append(release_alignment(self.heads[m](adapted[m][rows]), self.heads[k](adapted[k][rows])))
            elif self.config.alignment == "js":
                terms.append(js_divergence(self.heads[m](adapted[m][rows]), self.heads[k](adapted[k][rows])))
            else:
                terms.append(info_nce(adapted[m][rows], adapted[k][rows], self.config.temperature))
        unsupervised = torch.stack(terms).mean() if terms else logits.sum() * 0.0
        w = self.cls_weight()
        return LFM_LOSS_SCALE * (w * F.cross_entropy(logits, labels) + (1.0 - w) * unsupervised)


__all__ = [
    "LFMModel",
    "js_divergence",
    "release_alignment",
    "info_nce",
    "lfm_release_weight",
    "LFM_RELEASE_COEFFICIENTS",
]
