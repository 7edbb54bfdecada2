"""CRMT: certifiable robust multi-modal training (orthogonal unimodal classifiers, margin regulariser,
integration weights tuned for the certified bound)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import TrainerCallback

from .base import BaselineModel, Features, Mask
from .config import CRMTConfig


class OrthonormalLinear(nn.Module):
    """Bias-free linear map `x -> W~ x` whose `(out, in)` weight has orthonormal rows: `W~ = U V^T`, the orthonormal
    polar factor of a free parameter `W = U S V^T` (the closest matrix with orthonormal rows, as in orthogonal weight
    normalisation, Huang et al., AAAI 2018).

    Args:
        in_features (`int`): input size `d`.
        out_features (`int`): output size `C <= d`.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        if out_features > in_features:
            raise ValueError(f"orthonormal rows need out_features ({out_features}) <= in_features ({in_features})")
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def orthonormal_weight(self) -> torch.Tensor:
        """`W~`: `(C, d)` with `W~ W~^T = I`."""
        u, _, vh = torch.linalg.svd(self.weight, full_matrices=False)  # (C, C), (C, d)
        return u @ vh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.orthonormal_weight.T  # (..., d) -> (..., C)


class CRMTModel(BaselineModel):
    """**CRMT** baseline (the joint-training variant, CRMT-JT): per-modality classifiers with orthonormal rows
    `W~^(m)`, integration weights `a^(m)` (one per class), `logits = sum_m a^(m) * (W~^(m) h_m) + b`.

    Yang, Wei, Liang & Hu, "Quantifying and Enhancing Multi-modal Robustness with Modality Preference", ICLR 2024.
    Stage 1 (most epochs) minimises `CE + rho * log sum_m sum_{k != y} exp(u_k^(m) - u_y^(m))`, `u^(m) = W~^(m) h_m`,
    which enlarges every unimodal margin. Stage 2 (the last `stage2_fraction` of the epochs; [`CRMTCallback`]
    switches) freezes everything but `a` and maximises the certified lower bound
    `r(x) = (sum_m [a_y u_y - a_j u_j]^(m) + b_y - b_j) / sqrt(sum_m (a_y L_y + a_j L_j)^(m)2)`, `j` the runner-up
    class and `L_k^(m)` the Lipschitz constant of `u_k^(m)` in the modality's input, estimated as the largest
    gradient norm over the training set when stage 2 starts.

    Departures from the authors' code: their "orthogonal" layer centres and unit-normalises each class row
    separately (one normalisation group per class), while this one keeps the rows exactly orthonormal, as the paper
    states (the polar factor of a free weight, [`OrthonormalLinear`], so it needs `num_labels <= hidden_size`);
    their Lipschitz estimate differentiates the weighted fused logit, this one the unimodal logit `u_k^(m)` that
    the bound multiplies by `a`; stage 2 runs inside the same training run with the Trainer's optimizer (they use a
    separate SGD with a smaller learning rate for `a`); the adversarial-training and mix-up variants are left out.
    """

    config_class = CRMTConfig

    def __init__(self, config: CRMTConfig):
        super().__init__(config)
        if config.num_labels > config.hidden_size:
            raise ValueError(
                f"CRMT keeps orthonormal classifier rows: num_labels ({config.num_labels}) must not exceed "
                f"hidden_size ({config.hidden_size})"
            )
        self.classifiers = nn.ModuleDict(
            {m: OrthonormalLinear(config.hidden_size, config.num_labels) for m in config.modalities}
        )
        init = float(config.init_weight)
        self.integration = nn.ParameterDict(
            {m: nn.Parameter(torch.full((config.num_labels,), init)) for m in config.modalities}
        )
        self.bias = nn.Parameter(torch.zeros(config.num_labels))
        self.register_buffer("crmt_lipschitz", torch.zeros(len(config.modalities), config.num_labels))
        self.crmt_stage = 1
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, OrthonormalLinear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
        elif isinstance(module, nn.Linear):
            module.reset_parameters()

    def unimodal(self, adapted: Features) -> dict[str, torch.Tensor]:
        return {m: self.classifiers[m](h) for m, h in adapted.items()}  # (B, C) each

    def fuse(self, adapted: Features, present: Mask):
        logits = self.bias.expand(next(iter(adapted.values())).shape[0], -1)  # (B, C)
        for m, u in self.unimodal(adapted).items():
            logits = logits + self.integration[m] * u * present[m].unsqueeze(-1)
        return logits, None

    # --------------------------------------------------------------- training
    def training_loss(self, adapted, present, labels, logits, features):
        if self.crmt_stage == 2:
            return self._certified_bound_loss(adapted, present, labels, logits)
        rows = torch.arange(labels.shape[0], device=labels.device)
        margin = 0.0
        for m, u in self.unimodal(adapted).items():
            diff = u - u[rows, labels].unsqueeze(-1)  # (B, C): u_k - u_y
            others = diff.exp().masked_fill(F.one_hot(labels, u.shape[-1]).bool(), 0.0).sum(-1)  # (B,)
            margin = margin + others * present[m]
        regulariser = torch.log(margin + 1e-5).mean()
        return F.cross_entropy(logits, labels) + self.config.rho * regulariser

    def _certified_bound_loss(self, adapted, present, labels, logits):
        rows = torch.arange(labels.shape[0], device=labels.device)
        with torch.no_grad():
            runner_up = logits.detach().masked_fill(F.one_hot(labels, logits.shape[-1]).bool(), float("-inf"))
            runner_up = runner_up.argmax(-1)  # (B,)
            unimodal = {m: u.detach() for m, u in self.unimodal(adapted).items()}
        bias = self.bias.detach()
        numerator = bias[labels] - bias[runner_up]  # (B,)
        denominator = 0.0
        for m, u in unimodal.items():
            i = self.modalities.index(m)
            a, lip, on = self.integration[m], self.crmt_lipschitz[i], present[m].float()
            numerator = numerator + on * (a[labels] * u[rows, labels] - a[runner_up] * u[rows, runner_up])
            denominator = denominator + on * (a[labels] * lip[labels] + a[runner_up] * lip[runner_up]) ** 2
        return -(numerator / torch.sqrt(denominator + 1e-12)).mean()

    def stage1_epochs(self, num_train_epochs: float) -> int:
        """Epochs of the first stage out of `num_train_epochs`."""
        return math.ceil(num_train_epochs * (1.0 - self.config.stage2_fraction))

    @torch.enable_grad()
    def estimate_lipschitz(self, dataloader) -> torch.Tensor:
        """`(n, C)`: the largest norm of `d u_k^(m) / d x_m` over the samples of `dataloader` (eval mode)."""
        was_training = self.training
        self.eval()
        lip = torch.zeros_like(self.crmt_lipschitz)
        for batch in dataloader:
            features = {m: x.to(self.device) for m, x in batch["features"].items()}
            masks = batch.get("modality_mask") or {}
            for i, m in enumerate(self.modalities):
                if m not in features:
                    continue
                x = features[m].detach().clone().requires_grad_(True)  # (B, D_m)
                u = self.classifiers[m](self.adapters[m](x))  # (B, C)
                on = (
                    masks[m].to(self.device)
                    if m in masks
                    else torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
                )
                if not on.any():
                    continue
                for k in range(u.shape[-1]):
                    (grad,) = torch.autograd.grad(u[:, k].sum(), x, retain_graph=True)  # rows are independent
                    lip[i, k] = torch.maximum(lip[i, k], grad[on].norm(dim=-1).max())
        self.train(was_training)
        return lip

    def enter_stage2(self, lipschitz: torch.Tensor) -> None:
        """Store the Lipschitz estimates and train only the integration weights from now on."""
        self.crmt_lipschitz.copy_(lipschitz)
        self.crmt_stage = 2


class CRMTCallback(TrainerCallback):
    """Switches a [`CRMTModel`] to its second stage at the start of the first stage-2 epoch."""

    def on_epoch_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        if not isinstance(model, CRMTModel) or model.crmt_stage == 2 or model.config.stage2_fraction == 0:
            return
        epoch = int(round(state.epoch or 0.0))
        if epoch >= model.stage1_epochs(args.num_train_epochs):
            model.enter_stage2(model.estimate_lipschitz(train_dataloader))


__all__ = ["CRMTModel", "CRMTCallback", "OrthonormalLinear"]
