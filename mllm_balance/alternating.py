"""The alternating step of the balanced model (Section 4 of "Modality Equilibrium Matters").

Within every training batch [`BalanceTrainer.training_step`] walks the epoch's Shapley order (weakest first) and,
for each modality `m` of it, runs one step that trains `m` alone: `forward(..., active_modality=m, order=order)`,
backward, and an optimizer step before the next modality's step (the last one is the Trainer's own optimizer
step, with its clipping and scheduler). A modality that nobody in the batch has gets no step.

The step of modality `m` at position `t` of an order `pi`: the prefix state `h_{t-1}`, the chain over the
modalities before `m`, is computed without gradients; `h_t = Memory(h_{t-1}, Map(h_{t-1}, a_m(x_m)))` (Eq. 9-14),
or `h_1 = a_m(x_m)` when `m` comes first; the loss is `CE(g(h_t), y)`. So only `a_m`, the mapping, the memory and
the classifier `g` learn. Samples missing `m` are left out, and every sample runs the chain over its present
modalities only. [`BalanceTrainingArguments.step_orders`] chooses the orders a step trains:

- `"shapley"` (the paper): the epoch's order alone ([`paper_step`]);
- `"all"`: the mean loss over the orders hybrid-order inference averages ([`hybrid_orders`]), so `m` also learns
  at the front and in the middle of a chain ([`alternating_step`]).

[`BalanceTrainingArguments.unimodal_loss_weight`] `lambda` adds `lambda * CE(g(a_m(x_m)), y)` to the step.
[`BalanceTrainingArguments.hybrid_loss_weight`] `mu` adds `mu * CE(g(X*), y)` to the last step of every batch
(the trainer decides which step that is): `X*` is the hybrid-order fused feature that inference classifies, computed
with gradients into every adapter ([`hybrid_loss`]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .classifier import put, take
from .training_args import STEP_ORDERS

if TYPE_CHECKING:
    from .modeling import BalancedModel


def alternating_step(
    model: BalancedModel,
    features: Mapping[str, torch.Tensor],
    present: Mapping[str, torch.Tensor],
    labels: torch.Tensor | None,
    order: Sequence[str],
    active: str,
    step_orders: str = "shapley",
    unimodal_loss_weight: float = 0.0,
    hybrid_loss_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The step of modality `active` (see the module docstring): `(logits (B, C), loss)`, the logits the mean over
    the trained orders, the loss `None` without `labels`.

    Args:
        present (`dict[str, torch.BoolTensor]`): `{m: (B,)}` presence, as [`FeatureClassifier.check_inputs`] returns.
        order (`Sequence[str]`): the epoch's training order (weakest first).
        step_orders (`str`): `"shapley"` or `"all"`.
        unimodal_loss_weight (`float`): weight `lambda` of the unimodal term.
        hybrid_loss_weight (`float`): weight `mu` of the hybrid term ([`hybrid_loss`]).
    """
    if active not in model.config.modality_dims:
        raise ValueError(f"active_modality {active!r} is not one of {model.modalities}")
    if active not in order:
        raise ValueError(f"active_modality {active!r} is not in the order {list(order)}")
    if step_orders not in STEP_ORDERS:
        raise ValueError(f"step_orders must be one of {STEP_ORDERS}, got {step_orders!r}")
    if step_orders == "shapley" and not unimodal_loss_weight:
        logits, loss = paper_step(model, features, present, labels, order, active)
    else:
        logits, loss = orders_step(model, features, present, labels, order, active, step_orders, unimodal_loss_weight)
    if loss is not None and hybrid_loss_weight:
        loss = loss + hybrid_loss_weight * hybrid_loss(model, features, present, labels, order)
    return logits, loss


def hybrid_loss(
    model: BalancedModel,
    features: Mapping[str, torch.Tensor],
    present: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    order: Sequence[str],
) -> torch.Tensor:
    """`CE(g(X*), y)`, the mean over the batch: `X*` the hybrid-order fused feature of every sample over its present
    modalities (what inference classifies), computed with gradients into every adapter, no prefix detached."""
    mods = [m for m in order if m in present]
    fused = model.fuse(model.adapt(features, mods), present, "hybrid", mods)  # (B, d)
    return F.cross_entropy(model.classifier(fused), labels.reshape(-1))


def orders_step(
    model: BalancedModel,
    features: Mapping[str, torch.Tensor],
    present: Mapping[str, torch.Tensor],
    labels: torch.Tensor | None,
    order: Sequence[str],
    active: str,
    step_orders: str,
    unimodal_loss_weight: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[`alternating_step`] over the orders `step_orders` names, with the unimodal term (see the module docstring)."""
    mods = [m for m in order if m in present]
    adapted = model.adapt(features, mods, grad=[active])
    ref = adapted[active]
    logits = ref.new_zeros(ref.shape[0], model.config.num_labels)  # (B, C) mean over the trained orders
    row_loss = ref.new_zeros(ref.shape[0])  # (B,)
    used = torch.zeros(ref.shape[0], dtype=torch.bool, device=ref.device)
    for rows, group in model.presence_groups(present, mods):
        if active not in group:
            continue
        sub = {m: take(adapted[m], rows) for m in group}  # (b, d) each
        orders = model.hybrid_orders(group) if step_orders == "all" else [tuple(group)]
        # Orders sharing the prefix before `active` share the step: run each distinct prefix once, weighted.
        prefixes: dict[tuple[str, ...], int] = {}
        for o in orders:
            prefix = tuple(o[: o.index(active)])
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
        group_logits, group_loss = 0.0, 0.0
        y = take(labels.reshape(-1), rows) if labels is not None else None
        for prefix, count in prefixes.items():
            if prefix:
                with torch.no_grad():
                    h_prev = model.chain(sub, prefix)[-1]  # (b, d), the weaker side, detached
                h = model.step(h_prev, sub[active])
            else:
                h = sub[active]
            step_logits = model.classifier(h)  # (b, C)
            group_logits = group_logits + step_logits * (count / len(orders))
            if y is not None:
                group_loss = group_loss + F.cross_entropy(step_logits, y, reduction="none") * (count / len(orders))
        if y is not None and unimodal_loss_weight:
            uni = F.cross_entropy(model.classifier(sub[active]), y, reduction="none")  # (b,)
            group_loss = group_loss + unimodal_loss_weight * uni
        logits = put(logits, rows, group_logits)
        if y is not None:
            row_loss = put(row_loss, rows, group_loss)
        used = put(used, rows, torch.ones_like(used[: sub[active].shape[0]]))
    loss = None
    if labels is not None:
        # nobody in this batch has the active modality: a zero loss that touches no weight
        loss = row_loss[used].mean() if used.any() else logits.sum() * 0.0
    return logits, loss


def paper_step(
    model: BalancedModel,
    features: Mapping[str, torch.Tensor],
    present: Mapping[str, torch.Tensor],
    labels: torch.Tensor | None,
    order: Sequence[str],
    active: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[`alternating_step`] over `order` alone, computed as the `paper` preset always has (bit for bit)."""
    mods = [m for m in order if m in present]
    adapted = model.adapt(features, mods, grad=[active])
    ref = adapted[mods[0]]
    logits = ref.new_zeros(ref.shape[0], model.config.num_labels)  # (B, C)
    used = torch.zeros(ref.shape[0], dtype=torch.bool, device=ref.device)
    for rows, group in model.presence_groups(present, mods):
        if active not in group:
            continue
        t = group.index(active)
        sub = {m: take(adapted[m], rows) for m in group[: t + 1]}
        if t == 0:
            h = sub[active]
        else:
            with torch.no_grad():
                h_prev = model.chain(sub, group[:t])[-1]  # (b, d), the weaker side, detached
            h = model.step(h_prev, sub[active])
        logits = put(logits, rows, model.classifier(h))
        used = put(used, rows, torch.ones_like(used[: h.shape[0]]))
    loss = None
    if labels is not None:
        if used.any():
            loss = F.cross_entropy(logits[used], labels.reshape(-1)[used])
        else:  # nobody in this batch has the active modality: a zero loss that touches no weight
            loss = logits.sum() * 0.0
    return logits, loss


__all__ = ["alternating_step", "paper_step"]
