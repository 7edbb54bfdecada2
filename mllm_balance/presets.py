"""Presets of the method: `paper` (Section 4 as written) and `default` (the library's measured default).

A preset is a set of [`BalanceConfig`] and [`BalanceTrainingArguments`] values. Every departure of `default` from
`paper` is a named switch with its own ablation row (see `mllm_balance.baselines.ABLATIONS`), and README's
comparison tables say what each is worth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """Values of one preset.

    Args:
        name (`str`): `"paper"` or `"default"`.
        description (`str`): one line for tables and help texts.
        config (`dict`): [`BalanceConfig`] fields.
        training (`dict`): [`BalanceTrainingArguments`] fields.
    """

    name: str
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)


PAPER = Preset(
    "paper",
    "Section 4 as written: each alternating step trains its modality at its place in the Shapley order; "
    "hybrid-order inference averages every order",
    config={"hybrid_weighting": "mean", "hybrid_states": "final", "memory_residual": False},
    training={"step_orders": "shapley", "unimodal_loss_weight": 0.0, "hybrid_loss_weight": 0.0},
)

DEFAULT = Preset(
    "default",
    "each alternating step trains its modality in every order that hybrid-order inference averages, hybrid fusion "
    "averages every prefix state of those orders, and the memory unit adds the state back (a residual path)",
    config={"hybrid_weighting": "mean", "hybrid_states": "all", "memory_residual": True},
    training={"step_orders": "all", "unimodal_loss_weight": 0.0, "hybrid_loss_weight": 0.0},
)

PRESETS: dict[str, Preset] = {p.name: p for p in (DEFAULT, PAPER)}


def get_preset(name: str) -> Preset:
    """The [`Preset`] registered as `name` (`"default"` or `"paper"`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


__all__ = ["Preset", "PRESETS", "PAPER", "DEFAULT", "get_preset"]
