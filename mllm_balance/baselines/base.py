"""`BaselineModel`: what every feature-level baseline shares on top of [`FeatureClassifier`]: one fusion rule,
a training objective, and coalition scoring through that fusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import TrainerCallback
from transformers.utils import ModelOutput

from ..classifier import FeatureClassifier, Features, Mask
from .config import BaselineConfig


@dataclass
class BaselineOutput(ModelOutput):
    """Output of a baseline model.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): the method's training loss (cross-entropy of the fused
            prediction in eval mode), returned when `labels` are given.
        logits (`torch.FloatTensor` of shape `(B, num_labels)`): fused scores before softmax.
        fused (`torch.FloatTensor` of shape `(B, F)`, *optional*): the fused representation, for methods that have
            one (e.g. the summed features of `sum`, the concatenation of `concat`).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    fused: torch.Tensor | None = None


class BaselineModel(FeatureClassifier):
    """Base of the feature-level baselines: per-modality adapters on cached features and a method-specific fusion.

    Inputs are the ones of [`BalancedModel`]: `features: {m: (B, D_m)}`, `labels`, `modality_mask: {m: (B,)}`. A
    missing modality (missing key or `False` in the mask) contributes nothing: its adapted feature is zeroed and
    the fusion only uses the present ones. `subset_logits` scores any coalition of modalities the same way, so
    [`BalanceTrainer.score_modalities`] gives Shapley values, EDM and per-modality accuracy for every baseline.

    Subclasses implement `fuse(adapted, present) -> (logits, fused)` and may override `training_loss`.
    """

    config_class = BaselineConfig
    base_model_prefix = "baseline"

    # ------------------------------------------------------------------ parts
    def adapt(self, features: Features, present: Mask) -> dict[str, torch.Tensor]:
        """Adapter outputs `{m: (B, d)}` of the present modalities, rows of missing samples zeroed."""
        return {m: self.adapters[m](features[m]) * present[m].unsqueeze(-1).to(features[m].dtype) for m in present}

    def fuse(self, adapted: Features, present: Mask) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fused logits `(B, C)` (and representation) from the present modalities only.

        Args:
            adapted (`dict[str, torch.Tensor]`): `{m: (B, d)}` adapter outputs, zero where missing.
            present (`dict[str, torch.BoolTensor]`): `{m: (B,)}`; every row has at least one modality present.
        """
        raise NotImplementedError

    def training_loss(
        self, adapted: Features, present: Mask, labels: torch.Tensor, logits: torch.Tensor, features: Features
    ) -> torch.Tensor:
        """The method's training objective; plain cross-entropy of the fused prediction by default."""
        return F.cross_entropy(logits, labels)

    def alternating_loss(self, features: Features, present: Mask, labels: torch.Tensor | None, active: str):
        raise ValueError(
            f"{type(self).__name__} trains jointly: use alternation='joint' (active_modality={active!r} was given)"
        )

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        features: Features,
        labels: torch.Tensor | None = None,
        modality_mask: Mask | None = None,
        order: Sequence[str] | None = None,
        active_modality: str | None = None,
        inference_mode: str | None = None,
        check_values: bool = True,
        return_dict: bool = True,
    ) -> BaselineOutput:
        r"""
        Args:
            features (`dict[str, torch.Tensor]`): `{modality: (B, D_m)}` cached features.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class indices; the loss is returned.
            modality_mask (`dict[str, torch.BoolTensor]`, *optional*): `{modality: (B,)}`, `False` = missing.
            order (`list[str]`, *optional*): accepted for interface compatibility with [`BalancedModel`]; only the
                alternating baselines read it.
            active_modality (`str`, *optional*): training only, for alternating baselines (MLA): the unimodal step.
            inference_mode (`str`, *optional*): ignored (each baseline has one inference rule).
            check_values (`bool`, *optional*, defaults to `True`): scan present features for NaN/inf and labels
                for values outside the label set (a trainer that validated its datasets turns it off).

        Returns:
            [`BaselineOutput`]
        """
        present, _ = self.check_inputs(features, modality_mask, labels if check_values else None, check_values)
        if order is not None:
            self.config.check_order(order)
        if labels is not None:
            labels = labels.reshape(-1)
        if active_modality is not None:
            if not self.training:
                raise ValueError("active_modality is only meaningful in training mode")
            if active_modality not in self.config.modality_dims:
                raise ValueError(f"active_modality {active_modality!r} is not one of {self.modalities}")
            return self.alternating_loss(features, present, labels, active_modality)
        adapted = self.adapt(features, present)
        logits, fused = self.fuse(adapted, present)
        loss = None
        if labels is not None:
            if self.training:
                loss = self.training_loss(adapted, present, labels, logits, features)
            else:
                loss = F.cross_entropy(logits, labels)
        return BaselineOutput(loss=loss, logits=logits, fused=fused)

    # ---------------------------------------------------------------- subsets
    def score_subset(self, adapted: Features, present: Mask, order: Sequence[str]) -> torch.Tensor:
        """The method's fusion of the coalition's modalities (the rows of an absent one zeroed)."""
        return self.fuse({m: adapted[m] * present[m].unsqueeze(-1) for m in present}, present)[0]


class TrainingProgressCallback(TrainerCallback):
    """Sets `model.train_progress` (share of the optimizer steps done, in [0, 1]) before every step, for baselines
    whose objective follows a schedule (LFM)."""

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if model is not None and hasattr(model, "train_progress") and state.max_steps:
            model.train_progress = min(1.0, state.global_step / state.max_steps)


def present_stack(present: Mask, modalities: Sequence[str]) -> torch.Tensor:
    """`(M, B)` float presence of `modalities` (in that order)."""
    return torch.stack([present[m] for m in modalities]).float()


__all__ = ["BaselineModel", "BaselineOutput", "TrainingProgressCallback", "present_stack"]
