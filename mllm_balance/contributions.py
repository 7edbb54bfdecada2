"""Per-sample modality contributions: the Shapley value of every present modality to one prediction.

For a sample whose present modalities are `N` and whose predicted label is `c`, the game is
`v(S) = p_S(c)`, the probability of `c` in the model's own prediction (`model(...)`, same inference mode) from the
modalities in `S` only, and `v(empty) = prior[c]`, the training label prior recorded in `config.label_prior`
(uniform when none is recorded). The Shapley values then sum to `p_N(c) - prior[c]` (efficiency).

The features are computed once; every coalition of every sample of a batch is scored in one call of the model on
the stacked rows, so the frozen backbone never runs again. Up to [`EXACT_MAX_MODALITIES`] present modalities the
values are exact (all `2^n` coalitions); beyond, they are estimated from `num_permutations` seeded orders (the
permutation estimator of [`shapley_values`], whose standard errors come with each result).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .shapley import ShapleyValues, coalitions_needed, shapley_values

#: Largest number of present modalities whose contributions are exact; beyond it orders are sampled.
EXACT_MAX_MODALITIES = 5
#: Orders sampled per sample beyond [`EXACT_MAX_MODALITIES`] modalities.
NUM_PERMUTATIONS = 64

Features = Mapping[str, torch.Tensor]
Mask = Mapping[str, torch.Tensor]


@dataclass
class SampleContributions:
    """Contributions of the modalities to the predictions of a batch.

    Args:
        values (`list[ShapleyValues]`): per sample, `{modality: phi}` over its present modalities (declared order),
            with a `stderr` attribute (zeros for exact values).
        target (`torch.LongTensor` of shape `(B,)`): the explained label (the predicted one unless given).
        full (`torch.FloatTensor` of shape `(B,)`): `p_N(target)`, its probability with every present modality.
        base (`torch.FloatTensor` of shape `(B,)`): `prior[target]`, the value of the empty coalition.
    """

    values: list[ShapleyValues]
    target: torch.Tensor
    full: torch.Tensor
    base: torch.Tensor


def label_prior(config) -> torch.Tensor:
    """`(C,)` training label prior recorded in `config.label_prior`, or the uniform prior when none is recorded.

    Raises:
        `ValueError`: the recorded prior does not have one entry per label.
    """
    prior = getattr(config, "label_prior", None)
    if prior is None:
        return torch.full((config.num_labels,), 1.0 / config.num_labels)
    if len(prior) != config.num_labels:
        raise ValueError(f"config.label_prior has {len(prior)} entries for {config.num_labels} labels")
    return torch.tensor([float(p) for p in prior])


def contribution_method(num_modalities: int) -> str:
    """`"exact"` up to [`EXACT_MAX_MODALITIES`] present modalities, `"permutation"` beyond."""
    return "exact" if num_modalities <= EXACT_MAX_MODALITIES else "permutation"


@torch.no_grad()
def modality_contributions(
    model,
    features: Features,
    modality_mask: Mask | None = None,
    *,
    inference_mode: str | None = None,
    probs: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    num_permutations: int = NUM_PERMUTATIONS,
    seed: int = 0,
) -> SampleContributions:
    """Shapley value of every present modality of every sample to the probability of its predicted label.

    Args:
        model ([`BalancedModel`] or a baseline): any model of the library, used in eval mode.
        features (`dict[str, torch.Tensor]`): `{modality: (B, D_m)}` features (the backbone's output).
        modality_mask (`dict[str, torch.BoolTensor]`, *optional*): `{modality: (B,)}`, `False` = missing.
        inference_mode (`str`, *optional*): passed to the model for every coalition (its config's by default).
        probs (`torch.Tensor` of shape `(B, C)`, *optional*): the model's probabilities with every present modality,
            when the caller already has them (the coalition of all present modalities is then not scored again).
        target (`torch.LongTensor` of shape `(B,)`, *optional*): the label to explain; the predicted one by default.
        num_permutations (`int`, *optional*, defaults to [`NUM_PERMUTATIONS`]): orders sampled for a sample with
            more than [`EXACT_MAX_MODALITIES`] present modalities.
        seed (`int`, *optional*, defaults to 0): seed of those orders (the same for every sample, so a sample's
            values do not depend on its batch).

    Returns:
        [`SampleContributions`]: `sum(values[b].values()) == full[b] - base[b]` for every sample `b`.

    Raises:
        `ValueError`: the model's own input errors (unknown modality, wrong feature size, NaN, a sample with no
            modality), or `probs` / `target` of the wrong shape.
    """
    present, batch = model.check_inputs(features, modality_mask)  # {m: (B,)}
    modalities = [m for m in model.config.modalities if m in present]
    was_training = model.training
    model.eval()
    try:
        if probs is None:
            probs = _probabilities(model, features, present, inference_mode)  # (B, C)
        if tuple(probs.shape) != (batch, model.config.num_labels):
            raise ValueError(f"probs has shape {tuple(probs.shape)}; expected ({batch}, {model.config.num_labels})")
        probs = probs.float()
        target = probs.argmax(-1) if target is None else target.to(probs.device).long().reshape(-1)  # (B,)
        if target.shape[0] != batch:
            raise ValueError(f"target has {target.shape[0]} entries for a batch of {batch}")
        full = probs.gather(1, target[:, None])[:, 0]  # (B,)
        base = label_prior(model.config).to(probs.device)[target]  # (B,)

        players = [[m for m in modalities if bool(present[m][b])] for b in range(batch)]
        kwargs = {"num_permutations": num_permutations, "seed": seed}
        needed = [
            [s for s in coalitions_needed(p, method=contribution_method(len(p)), **kwargs) if s and len(s) < len(p)]
            for p in players
        ]
        rows = [b for b, coalitions in enumerate(needed) for _ in coalitions]
        scored: list[float] = []
        if rows:
            index = torch.tensor(rows, device=probs.device)  # (R,)
            stacked = {m: features[m].index_select(0, index.to(features[m].device)) for m in modalities}  # (R, D_m)
            masks = {
                m: torch.tensor([m in s for coalitions in needed for s in coalitions], device=stacked[m].device)
                for m in modalities
            }  # (R,) each
            coalition_probs = _probabilities(model, stacked, masks, inference_mode)  # (R, C)
            scored = coalition_probs.gather(1, target[index][:, None].to(coalition_probs.device))[:, 0].tolist()
    finally:
        model.train(was_training)

    values = []
    position = 0
    for b, p in enumerate(players):
        game = {frozenset(): float(base[b]), frozenset(p): float(full[b])}
        for s in needed[b]:
            game[s] = scored[position]
            position += 1
        values.append(shapley_values(game.__getitem__, p, method=contribution_method(len(p)), **kwargs))
    return SampleContributions(values=values, target=target, full=full, base=base)


def _probabilities(model, features: Features, mask: Mask, inference_mode: str | None) -> torch.Tensor:
    """`(B, C)` probabilities of the model's prediction from the masked features."""
    logits = model(features=dict(features), modality_mask=dict(mask), inference_mode=inference_mode).logits
    return logits.float().softmax(-1)


def contribution_matrix(values: Sequence[Mapping[str, float]], modalities: Sequence[str]) -> torch.Tensor:
    """`(B, n)` float tensor of per-sample contributions in `modalities` order, NaN where a modality is absent."""
    return torch.tensor([[float(v.get(m, float("nan"))) for m in modalities] for v in values], dtype=torch.float64)


__all__ = [
    "EXACT_MAX_MODALITIES",
    "NUM_PERMUTATIONS",
    "SampleContributions",
    "contribution_matrix",
    "contribution_method",
    "label_prior",
    "modality_contributions",
]
