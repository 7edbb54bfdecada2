"""`BalancedModel`: adapters -> chain over an order (mapping + memory) -> shared classifier."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .alternating import alternating_step
from .classifier import FeatureClassifier, Features, Mask, put, take
from .configuration import BalanceConfig
from .hub import push_adapters_to_hub
from .hybrid_fusion import hybrid_fusion, hybrid_orders
from .modules import CrossModalMapping, ModalityMemory


@dataclass
class BalancedModelOutput(ModelOutput):
    """Output of [`BalancedModel`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): Cross-entropy, returned when `labels` are given.
        logits (`torch.FloatTensor` of shape `(B, num_labels)`): Classifier scores before softmax.
        fused (`torch.FloatTensor` of shape `(B, hidden_size)`, *optional*): The fused feature fed to the
            classifier (the averaged one for hybrid-order fusion); `None` for entropy-weighted inference.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    fused: torch.Tensor | None = None


def entropy_weights(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MLA-style fusion weights from the entropy of each modality's prediction.

    Args:
        logits (`torch.Tensor` of shape `(M, B, C)`): unimodal logits of M modalities.
        mask (`torch.BoolTensor` of shape `(M, B)`, *optional*): `False` where a modality is missing.

    Returns:
        `torch.Tensor` of shape `(M, B)`: `w_m = exp(-H_m) / sum_k exp(-H_k)` over the present modalities,
        with `H_m` the entropy of `softmax(logits_m)`: the more certain a modality, the larger its weight.
    """
    log_p = F.log_softmax(logits, dim=-1)  # (M, B, C)
    entropy = -(log_p.exp() * log_p).sum(-1)  # (M, B)
    if mask is not None:
        entropy = entropy.masked_fill(~mask, float("inf"))
    return torch.softmax(-entropy, dim=0)


class BalancedModel(FeatureClassifier):
    """Trainable part of a balanced multimodal classifier on frozen per-modality features.

    Holds only the per-modality adapters, the cross-modal mapping (with its running statistics), the modality
    memory unit and the shared classifier; the backbone stays outside and is referenced by
    `config.backbone_id`.

    Inputs are dicts keyed by modality name. A missing modality is a missing key or a `False` entry of
    `modality_mask[m]`. Samples are grouped by presence pattern and each group runs the chain over the present
    modalities only, so a sample missing a modality is predicted exactly as by the chain over its present ones.
    """

    config_class = BalanceConfig
    base_model_prefix = "balanced"
    step_options = ("step_orders", "unimodal_loss_weight", "hybrid_loss_weight")

    def __init__(self, config: BalanceConfig):
        super().__init__(config)
        self.mapping = CrossModalMapping(
            config.hidden_size,
            threshold=config.mapping_threshold,
            level=config.mapping_level,
            at_eval=config.mapping_at_eval,
            normalize=config.mapping_normalize,
            momentum=config.mapping_momentum,
        )
        self.memory = ModalityMemory(config.hidden_size, residual=config.memory_residual)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self._order_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, ...]]] = {}
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            module.reset_parameters()
        elif isinstance(module, CrossModalMapping) and hasattr(module, "running_correlation"):
            module.running_correlation.copy_(torch.eye(module.running_correlation.shape[0]))

    # ------------------------------------------------------------------ orders
    def hybrid_orders(self, present: Sequence[str]) -> list[tuple[str, ...]]:
        """Orders hybrid-order fusion averages for a sample whose present modalities are `present`
        ([`~mllm_balance.hybrid_fusion.hybrid_orders`] of the last training order, cached)."""
        key = tuple(m for m in self.train_order if m in present)  # the set and the order it is drawn from
        if key not in self._order_cache:
            self._order_cache[key] = hybrid_orders(key, key, self.config.max_orders, self.config.order_seed)
        return self._order_cache[key]

    # ------------------------------------------------------------------ chain
    def chain(self, adapted: Features, order: Sequence[str]) -> list[torch.Tensor]:
        """Run the chain over `order` and return every prefix state `h_1 .. h_k`.

        Args:
            adapted (`dict[str, torch.Tensor]`): adapter outputs, each of shape `(..., B, d)`.
            order (`Sequence[str]`): modalities in chain order (weakest first during training).
        """
        h = adapted[order[0]]  # (..., B, d)
        states = [h]
        for m in order[1:]:
            h = self.step(h, adapted[m])
            states.append(h)
        return states

    def step(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One chain step: `Memory(h, Map(h, x))`, honouring the ablation switches."""
        x_hat = self.mapping(h, x) if self.config.use_mapping else x  # (..., B, d)
        if self.config.use_memory:
            return self.memory(h, x_hat)
        return (h + x_hat) / 2

    def adapt(self, features: Features, modalities: Iterable[str], grad: Iterable[str] | None = None):  # type: ignore[override]
        """Adapter outputs `{m: (B, d)}`; modalities outside `grad` (when given) run without gradients."""
        out = {}
        for m in modalities:
            if grad is None or m in grad:
                out[m] = self.adapters[m](features[m])
            else:
                with torch.no_grad():
                    out[m] = self.adapters[m](features[m])
        return out

    @staticmethod
    def presence_groups(present: Mask, modalities: Sequence[str]):
        """Yield `(rows, present_modalities)` for every presence pattern of the batch (modalities in order);
        `rows` is `None` when the whole batch shares one pattern."""
        pattern = torch.stack([present[m] for m in modalities], dim=1)  # (B, n)
        if bool(pattern.all()):
            yield None, list(modalities)
            return
        patterns, inverse = torch.unique(pattern, dim=0, return_inverse=True)
        for p_idx, p in enumerate(patterns.tolist()):
            rows = (inverse == p_idx).nonzero().flatten()
            yield rows, [m for m, on in zip(modalities, p) if on]

    def fuse(self, adapted: Features, present: Mask, mode: str, order: Sequence[str]) -> torch.Tensor:
        """Fused feature `(B, d)` of every sample, each group of presence pattern on its own.

        Args:
            mode (`str`): `"hybrid"` (average over the hybrid orders) or `"order"` (the chain over `order`).
        """
        mods = [m for m in order if m in present]
        ref = adapted[mods[0]]
        fused = ref.new_zeros(ref.shape[0], self.config.hidden_size)  # (B, d)
        for rows, group in self.presence_groups(present, mods):
            if not group:
                continue
            sub = {m: take(adapted[m], rows) for m in group}  # (b, d) each
            if mode == "hybrid":
                h = hybrid_fusion(self, sub, self.hybrid_orders(group))  # Algorithm 1
            else:
                h = self.chain(sub, group)[-1]
            fused = put(fused, rows, h)
        return fused

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
        step_orders: str = "shapley",
        unimodal_loss_weight: float = 0.0,
        hybrid_loss_weight: float = 0.0,
        return_dict: bool = True,
    ) -> BalancedModelOutput:
        r"""
        Args:
            features (`dict[str, torch.Tensor]`): `{modality: (B, D_m)}` frozen features.
            labels (`torch.LongTensor` of shape `(B,)`, *optional*): class indices; the loss is returned.
            modality_mask (`dict[str, torch.BoolTensor]`, *optional*): `{modality: (B,)}`, `False` = missing.
            order (`list[str]`, *optional*): chain order. Given, it overrides `inference_mode` and the model
                runs the chain over it (restricted to each sample's present modalities). Defaults to the last
                training order while training.
            active_modality (`str`, *optional*): training only. The alternating step that trains this modality
                ([`mllm_balance.alternating`]). Without it, training is joint (loss on the fused feature, all
                adapters learn).
            inference_mode (`str`, *optional*): overrides `config.inference_mode` in eval mode.
            check_values (`bool`, *optional*, defaults to `True`): scan present features for NaN/inf and labels
                for values outside the label set (a trainer that validated its datasets turns it off).
            step_orders (`str`, *optional*, defaults to `"shapley"`): with `active_modality`, the orders whose
                chains the step trains ([`BalanceTrainingArguments.step_orders`]): `"shapley"` (the paper: `order`
                only) or `"all"` (the mean loss over the hybrid orders of the sample's present modalities).
            unimodal_loss_weight (`float`, *optional*, defaults to 0.0): with `active_modality`, adds this times
                `CE(g(a_m(x_m)), y)` for the active modality `m` ([`BalanceTrainingArguments.unimodal_loss_weight`]).
            hybrid_loss_weight (`float`, *optional*, defaults to 0.0): with `active_modality`, adds this times
                `CE(g(X*), y)`, `X*` the hybrid-order fused feature with gradients into every adapter
                ([`BalanceTrainingArguments.hybrid_loss_weight`]; the trainer passes it to each batch's last step).

        Returns:
            [`BalancedModelOutput`]
        """
        present, _ = self.check_inputs(features, modality_mask, labels if check_values else None, check_values)
        if order is not None:
            order = self.config.check_order(order)
            missing = [m for m in present if m not in order]
            if missing:
                raise ValueError(f"order {order} leaves out present modalities {missing}")
        if active_modality is not None:
            if not self.training:
                raise ValueError("active_modality is only meaningful in training mode")
            return self.alternating_step(
                features, present, labels, order or self.train_order, active_modality, step_orders,
                unimodal_loss_weight, hybrid_loss_weight,
            )  # fmt: skip

        fused = None
        if order is not None:
            fused = self.fuse(self.adapt(features, present), present, "order", order)
            logits = self.classifier(fused)
        else:
            mode = "train_order" if self.training else (inference_mode or self.config.inference_mode)
            if mode not in ("hybrid", "train_order", "entropy"):
                raise ValueError(f"unknown inference_mode {mode!r}")
            adapted = self.adapt(features, present)
            if mode == "entropy":
                logits = self._entropy_logits(adapted, present)
            else:
                fused = self.fuse(adapted, present, "hybrid" if mode == "hybrid" else "order", self.train_order)
                logits = self.classifier(fused)
        loss = F.cross_entropy(logits, labels.reshape(-1)) if labels is not None else None
        return BalancedModelOutput(loss=loss, logits=logits, fused=fused)

    def _entropy_logits(self, adapted: Features, present: Mask) -> torch.Tensor:
        mods = list(adapted)
        uni = torch.stack([self.classifier(adapted[m]) for m in mods])  # (M, B, C)
        weights = entropy_weights(uni, torch.stack([present[m] for m in mods]))  # (M, B)
        return (weights.unsqueeze(-1) * uni).sum(0)  # (B, C)

    def alternating_step(
        self,
        features: Features,
        present: Mask,
        labels: torch.Tensor | None,
        order: Sequence[str],
        active: str,
        step_orders: str = "shapley",
        unimodal_loss_weight: float = 0.0,
        hybrid_loss_weight: float = 0.0,
    ) -> BalancedModelOutput:
        """One alternating step training modality `active`: [`~mllm_balance.alternating.alternating_step`]."""
        logits, loss = alternating_step(
            self, features, present, labels, order, active, step_orders, unimodal_loss_weight, hybrid_loss_weight
        )
        return BalancedModelOutput(loss=loss, logits=logits, fused=None)

    def push_to_hub(self, repo_id: str, *, results=None, max_shard_size=None, **kwargs):
        """Push the trained weights, config, model card and contribution plot (never the backbone).

        See [`~mllm_balance.hub.push_adapters_to_hub`]; `results` is a results dict or a `results.json` path.
        """
        return push_adapters_to_hub(self, repo_id, results=results, **kwargs)

    # ---------------------------------------------------------------- subsets
    def scoring_order(self, order: Sequence[str] | None) -> list[str]:
        """A coalition is scored by the chain over `order` (defaults to the last training order) restricted to it."""
        return list(order) if order is not None else self.train_order

    def score_subset(self, adapted: Features, present: Mask, order: Sequence[str]) -> torch.Tensor:
        """The classifier on the chain over `order` restricted to the coalition's modalities."""
        return self.classifier(self.fuse(adapted, present, "order", [m for m in order if m in present]))


__all__ = ["BalancedModel", "BalancedModelOutput", "entropy_weights"]
