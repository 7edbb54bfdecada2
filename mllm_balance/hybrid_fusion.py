"""Hybrid-order fusion (Algorithm 1 of "Modality Equilibrium Matters"): at inference no order is known to be weak
first, so the chain runs over several orders and their fused features are averaged before the classifier.

For the modalities `S` a sample has, Algorithm 1 runs the chain `f(U, pi_k)` over every order `pi_k` of `S`
(`K = |S|!`, step 1), averages the fused features `X* = (1/K) sum_k X~^(k)` (step 8) and predicts
`softmax(g(X*))` (step 9). [`hybrid_orders`] picks the orders (all of them, or `max_orders` sampled with a
seed beyond that) and [`hybrid_fusion`] computes `X*`, with two options of [`BalanceConfig`]:
`hybrid_states="all"` averages every prefix state `h_1 .. h_k` of every order, not only `h_k`;
`hybrid_weighting="confidence"` weights each averaged state per sample by `softmax(-entropy)` of its prediction.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .modeling import BalancedModel


def hybrid_orders(
    train_order: Sequence[str], present: Sequence[str], max_orders: int, seed: int
) -> list[tuple[str, ...]]:
    """The orders Algorithm 1 averages for a sample whose present modalities are `present` (step 1).

    All `|S|!` orders when that is at most `max_orders`; otherwise `max_orders` distinct orders drawn with a seed
    fixed by `seed` and the modality set, always including `train_order` (restricted to `present`) first.
    """
    train = tuple(m for m in train_order if m in present)
    if math.factorial(len(train)) <= max_orders:
        return list(itertools.permutations(train))
    rng = np.random.default_rng([seed, zlib.crc32(",".join(sorted(present)).encode())])
    chosen = {train: None}
    while len(chosen) < max_orders:
        chosen.setdefault(tuple(train[i] for i in rng.permutation(len(train))), None)
    return list(chosen)


def order_states(
    model: BalancedModel, adapted: Mapping[str, torch.Tensor], orders: Sequence[tuple[str, ...]], every_state: bool
) -> torch.Tensor:
    """The chain of `model` over each of `orders`, all orders batched (step 5).

    Args:
        adapted (`dict[str, torch.Tensor]`): `{m: (b, d)}` adapter outputs of the modalities of the orders.
        every_state (`bool`): return every prefix state of every order, not only the fused one.

    Returns:
        `torch.Tensor`: `(K, b, d)` fused features, or `(K * k, b, d)` prefix states with `every_state`.
    """
    k = len(orders[0])
    mapping_reads_state = model.config.use_mapping and model.mapping.depends_on_state
    if mapping_reads_state or not model.config.use_memory:
        stacked = {t: torch.stack([adapted[o[t]] for o in orders]) for t in range(k)}  # (K, b, d) per position
        states = model.chain(stacked, list(range(k)))
        return torch.cat(states) if every_state else states[-1]
    # The mapped feature does not depend on the state: map each modality and project it into the memory's gates
    # once, then reuse both in every order it appears in.
    x_hat = {m: model.mapping(None, x) if model.config.use_mapping else x for m, x in adapted.items()}  # (b, d)
    x_proj = {m: model.memory.project_input(x) for m, x in x_hat.items()}  # (b, 3d)
    h = torch.stack([adapted[o[0]] for o in orders])  # (K, b, d)
    states = [h]
    for t in range(1, k):
        step_x = torch.stack([x_hat[o[t]] for o in orders])  # (K, b, d)
        step_proj = torch.stack([x_proj[o[t]] for o in orders])  # (K, b, 3d)
        h = model.memory.forward_projected(h, step_x, step_proj)
        states.append(h)
    return torch.cat(states) if every_state else h  # (K * k, b, d) or (K, b, d)


def hybrid_fusion(
    model: BalancedModel, adapted: Mapping[str, torch.Tensor], orders: Sequence[tuple[str, ...]]
) -> torch.Tensor:
    """`X*` of Algorithm 1 (step 8) for `b` samples that share their present modalities: `{m: (b, d)} -> (b, d)`.

    The mean over `orders` of the fused feature; with `config.hybrid_states="all"` of every prefix state; with
    `config.hybrid_weighting="confidence"` the per-sample weighted mean `sum_k w_k h^(k)`,
    `w = softmax_k(-H(softmax(g(h^(k)))))` (the more certain an order's prediction, the larger its weight).
    """
    every_state = model.config.hybrid_states == "all"
    states = order_states(model, adapted, orders, every_state)  # (K, b, d)
    if model.config.hybrid_weighting == "confidence" and states.shape[0] > 1:
        log_p = F.log_softmax(model.classifier(states), dim=-1)  # (K, b, C)
        entropy = -(log_p.exp() * log_p).sum(-1)  # (K, b)
        weights = torch.softmax(-entropy, dim=0).unsqueeze(-1)  # (K, b, 1)
        return (weights * states).sum(0)  # (b, d)
    return states.mean(0)  # (b, d)


__all__ = ["hybrid_fusion", "hybrid_orders", "order_states"]
