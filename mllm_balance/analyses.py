"""Analyses of a trained model on a feature dataset for the comparison figures: accuracy per inference order
(Figure 5) and snapshots of the adapted features (Figure 4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .collator import LABEL_COLUMN, BalanceDataCollator, feature_view
from .hybrid_fusion import hybrid_orders


def _batches(dataset, modality_dims: Mapping[str, int], batch_size: int, device) -> Iterator[dict[str, Any]]:
    """[`BalanceDataCollator`] batches of `dataset`, in row order, with features and masks on `device`."""
    loader = DataLoader(feature_view(dataset), batch_size=batch_size, collate_fn=BalanceDataCollator(modality_dims))
    for batch in loader:
        batch["features"] = {m: x.to(device) for m, x in batch["features"].items()}  # {m: (b, D_m)}
        if "modality_mask" in batch:
            batch["modality_mask"] = {m: x.to(device) for m, x in batch["modality_mask"].items()}  # {m: (b,)}
        yield batch


@torch.no_grad()
def order_analysis(
    model,
    dataset,
    fixed_order: Sequence[str] | None = None,
    batch_size: int = 256,
    max_orders: int = 120,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy (percent) of a [`BalancedModel`] under the inference orders compared in the paper's Figure 5.

    Args:
        model ([`BalancedModel`]): the trained model.
        dataset (`datasets.Dataset`): test features.
        fixed_order (`Sequence[str]`, *optional*): the order of the "fixed" row; defaults to `model.train_order`
            (the order set after the last scoring; pass the order the last epoch trained with to compare with it).
        batch_size (`int`, *optional*, defaults to 256): samples per forward pass.
        max_orders (`int`, *optional*, defaults to 120): the most orders evaluated.
        seed (`int`, *optional*, defaults to 0): seed of the order sampling beyond `max_orders`.

    Returns:
        `dict` with `fixed` (chain over `fixed_order`), `hybrid` (hybrid-order fusion), `best_order` (the
        best single order on this dataset), `oracle` (a sample counts as correct if some order classifies it
        correctly: the upper bound) and `per_order` (`{"m1>m2>...": accuracy}`, orders in the modalities'
        permutation order). The orders are picked as hybrid-order fusion picks them
        ([`~mllm_balance.hybrid_fusion.hybrid_orders`]): every order when there are at most `max_orders`, else
        `max_orders` orders sampled with `seed`, `fixed_order` always among them.
    """
    was_training = model.training
    model.eval()
    mods = list(model.config.modalities)
    train = tuple(fixed_order or model.train_order)
    rank = {m: i for i, m in enumerate(mods)}
    orders = sorted(hybrid_orders(train, mods, max_orders, seed), key=lambda o: [rank[m] for m in o])
    correct = {o: [] for o in orders}
    hybrid = []
    for batch in _batches(dataset, model.config.modality_dims, batch_size, model.device):
        labels = batch[LABEL_COLUMN].to(model.device)  # (b,)
        mask = batch.get("modality_mask")
        for o in orders:
            logits = model(batch["features"], modality_mask=mask, order=list(o)).logits  # (b, C)
            correct[o].append((logits.argmax(-1) == labels).cpu())
        logits = model(batch["features"], modality_mask=mask, inference_mode="hybrid").logits  # (b, C)
        hybrid.append((logits.argmax(-1) == labels).cpu())
    model.train(was_training)
    hits = {o: torch.cat(v) for o, v in correct.items()}  # {order: (N,)}
    per_order = {">".join(o): float(h.float().mean() * 100) for o, h in hits.items()}
    return {
        "fixed": per_order[">".join(train)],
        "hybrid": float(torch.cat(hybrid).float().mean() * 100),
        "best_order": max(per_order.values()),
        "oracle": float(torch.stack(list(hits.values())).any(0).float().mean() * 100),
        "per_order": per_order,
    }


@torch.no_grad()
def feature_snapshot(model, dataset, max_samples: int = 300, batch_size: int = 256) -> dict[str, Any]:
    """Adapted per-modality features and the fused feature of the first `max_samples` rows (eval mode).

    Returns:
        `dict` with `modalities` (`{m: (N, d)}` adapter outputs, present rows only per modality), `fused`
        (`(N, F)` or `None` when the model has no fused representation) and `labels` (`(N,)`).
    """
    was_training = model.training
    model.eval()
    subset = dataset.select(range(min(max_samples, len(dataset))))
    per_mod: dict[str, list[np.ndarray]] = defaultdict(list)
    fused, labels = [], []
    for batch in _batches(subset, model.config.modality_dims, batch_size, model.device):
        mask = batch.get("modality_mask") or {}
        if hasattr(model, "adapters"):
            for m, x in batch["features"].items():
                keep = mask[m] if m in mask else torch.ones(x.shape[0], dtype=torch.bool, device=x.device)  # (b,)
                per_mod[m].append(model.adapters[m](x[keep]).float().cpu().numpy())  # (b_m, d)
        out = model(batch["features"], modality_mask=batch.get("modality_mask"))
        if getattr(out, "fused", None) is not None:
            fused.append(out.fused.float().cpu().numpy())  # (b, F)
        labels.append(batch[LABEL_COLUMN].numpy())
    model.train(was_training)
    return {
        "modalities": {m: np.concatenate(v) for m, v in per_mod.items()},
        "fused": np.concatenate(fused) if fused else None,
        "labels": np.concatenate(labels),
    }


__all__ = ["order_analysis", "feature_snapshot"]
