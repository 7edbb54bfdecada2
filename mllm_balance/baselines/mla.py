"""MLA: alternating unimodal adaptation with a shared head, gradient projection and entropy-weighted fusion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..modeling import entropy_weights
from .base import BaselineModel, BaselineOutput, Features, Mask
from .config import MLAConfig


def orthonormal_basis(directions: torch.Tensor, rtol: float = 1e-6) -> torch.Tensor:
    """Orthonormal rows spanning the rows of `directions` `(K, d)`; `(r, d)` with `r` the numerical rank."""
    if directions.numel() == 0:
        return directions.new_zeros(0, directions.shape[-1])
    _, s, vh = torch.linalg.svd(directions.float(), full_matrices=False)  # s: (min(K, d),), vh: (min(K, d), d)
    keep = s > rtol * s.max().clamp_min(1e-30)
    return vh[keep].to(directions.dtype)


class _ProjectGradient(torch.autograd.Function):
    """Identity in the forward pass; the backward pass removes from the weight's gradient its components along
    the rows of `basis`: `g <- g - (g U^T) U` for a `(C, d)` weight and an orthonormal `(r, d)` basis `U`."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(basis)
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (basis,) = ctx.saved_tensors
        if basis.shape[0] == 0:
            return grad, None
        return grad - (grad @ basis.T) @ basis, None  # (C, d)


def project_gradient(weight: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """`weight` unchanged, with its gradient made orthogonal (row-wise) to the orthonormal rows of `basis`."""
    return _ProjectGradient.apply(weight, basis)


class MLAModel(BaselineModel):
    """**MLA** baseline: alternating unimodal steps through one shared head, with gradient projection so that a
    modality's update of the head does not overwrite what the other modalities taught it, and entropy-weighted
    fusion at inference.

    Zhang, Yoon, Bansal & Yao, "Multimodal Representation Learning by Alternating Unimodal Adaptation", CVPR 2024.
    Train with [`BalanceTrainer`] and `alternation="step"` (one optimizer step per modality and batch, in a fixed
    order): the step of modality m minimises `CE(g(a_m(x_m)), y)`, and the gradient of the head's weight is
    projected onto the orthogonal complement of the stored input directions of the other modalities. The directions
    are the batch means of each modality's head inputs, the most recent `max_directions` kept per modality (a
    buffer, saved with the model). Inference: `sum_m w_m g(a_m(x_m))` with `w = softmax(-H)` over the present
    modalities, `H_m` the entropy of modality m's prediction for that sample.

    This follows the paper where the authors' released code (Cecile-hi/Multimodal-Learning-with-Alternating-
    Unimodal-Adaptation) differs. Departures from that code: (1) the gradient projection runs; in the release,
    `GSPlugin.before_update` (`utils/utils.py`) only projects a parameter named `"module.weight"`, but it is given
    the head `fusion_module.fc_out` itself, whose parameters are `"weight"` and `"bias"`, so at HEAD the projection
    never runs. The projector here is exact (`I - U U^T`, `U` an orthonormal basis of the stored directions of the
    other modalities), not their recursive least-squares projector with a decaying regulariser, Frobenius
    renormalisation and a shared history of every modality. (2) The fusion weights are per sample: the entropy is
    computed per sample over the classes, while the release's `calculate_entropy` (`main.py`) applies softmax over
    the batch dimension and sums the entropy over the whole batch, giving one weight per modality and batch.
    """

    config_class = MLAConfig

    def __init__(self, config: MLAConfig):
        super().__init__(config)
        self.head = nn.Linear(config.hidden_size, config.num_labels)
        n, k, d = len(config.modalities), config.max_directions, config.hidden_size
        self.register_buffer("mla_directions", torch.zeros(n, k, d))
        self.register_buffer("mla_counts", torch.zeros(n, dtype=torch.long))
        self.post_init()

    # ------------------------------------------------------------ directions
    def stored_directions(self, modality: str) -> torch.Tensor:
        """The stored head-input directions of `modality`: `(k_m, d)`."""
        i = self.modalities.index(modality)
        count = min(int(self.mla_counts[i]), self.config.max_directions)
        return self.mla_directions[i, :count]

    @torch.no_grad()
    def store_direction(self, modality: str, direction: torch.Tensor) -> None:
        i = self.modalities.index(modality)
        slot = int(self.mla_counts[i]) % self.config.max_directions
        self.mla_directions[i, slot] = direction.to(self.mla_directions.dtype)
        self.mla_counts[i] += 1

    def projection_basis(self, modality: str) -> torch.Tensor:
        """Orthonormal basis `(r, d)` of the stored directions of every modality other than `modality`."""
        others = [self.stored_directions(m) for m in self.modalities if m != modality]
        return orthonormal_basis(torch.cat(others) if others else self.mla_directions.new_zeros(0, 1)).detach()

    # --------------------------------------------------------------- training
    def alternating_loss(self, features, present, labels, active):
        h = self.adapters[active](features[active])  # (B, d)
        rows = present[active]
        basis = self.projection_basis(active)
        weight = project_gradient(self.head.weight, basis) if basis.shape[0] else self.head.weight
        logits = F.linear(h, weight, self.head.bias)  # (B, C)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[rows], labels[rows]) if rows.any() else logits.sum() * 0.0
        if rows.any():
            self.store_direction(active, h[rows].detach().mean(0))
        return BaselineOutput(loss=loss, logits=logits, fused=None)

    def training_loss(self, adapted, present, labels, logits, features):
        raise ValueError("MLA trains one modality at a time: use BalanceTrainer with alternation='step'")

    # -------------------------------------------------------------- inference
    def unimodal(self, adapted: Features) -> dict[str, torch.Tensor]:
        return {m: self.head(h) for m, h in adapted.items()}  # (B, C) each

    def fuse(self, adapted: Features, present: Mask):
        mods = list(present)
        uni = torch.stack([self.head(adapted[m]) for m in mods])  # (M, B, C)
        weights = entropy_weights(uni, torch.stack([present[m] for m in mods]))  # (M, B)
        return (weights.unsqueeze(-1) * uni).sum(0), None  # (B, C)


__all__ = ["MLAModel", "orthonormal_basis", "project_gradient"]
