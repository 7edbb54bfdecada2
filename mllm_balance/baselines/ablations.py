"""Ablations of the balanced method (Table 2): each one switches off a single component, or undoes one departure
of the `default` preset from the paper (see `mllm_balance.presets`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..configuration import BalanceConfig
from ..training_args import BalanceTrainingArguments


@dataclass(frozen=True)
class Ablation:
    """One ablation: the [`BalanceConfig`] and [`BalanceTrainingArguments`] fields it changes.

    Args:
        name (`str`): e.g. `"no_mapping"`.
        description (`str`): the row label of the ablation table.
        config (`dict`): config overrides.
        training (`dict`): training-argument overrides.
    """

    name: str
    description: str
    config: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)


ABLATIONS: dict[str, Ablation] = {
    a.name: a
    for a in (
        Ablation("full", "Full model"),
        Ablation("no_mapping", "w/o cross-modal mapping", config={"use_mapping": False}),
        Ablation("no_memory", "w/o modality memory", config={"use_memory": False}),
        Ablation("random_order", "Random modality ordering", training={"order_schedule": "random"}),
        Ablation("fixed_order", "Fixed modality ordering", training={"order_schedule": "fixed"}),
        Ablation(
            "paper_steps",
            "Steps in the Shapley order only (the paper's)",
            training={"step_orders": "shapley"},
        ),
        Ablation("final_states", "Hybrid fusion of final states only (Algorithm 1)", config={"hybrid_states": "final"}),
        Ablation(
            "no_residual",
            "Memory without the residual path (Eq. 14 as written)",
            config={"memory_residual": False},
        ),
    )
}


def get_ablation(name: str) -> Ablation:
    """The [`Ablation`] registered as `name` (see `ABLATIONS`)."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; known: {sorted(ABLATIONS)}")
    return ABLATIONS[name]


def ablation_config(name: str, config: BalanceConfig) -> BalanceConfig:
    """A copy of `config` with the ablation's switches applied (the original is left untouched)."""
    ablation = get_ablation(name)
    values = config.to_dict()
    values.update(ablation.config)
    return type(config).from_dict(values)


def ablation_args(name: str, args: BalanceTrainingArguments) -> BalanceTrainingArguments:
    """A copy of `args` with the ablation's training arguments applied."""
    return dataclasses.replace(args, **get_ablation(name).training)


def build_ablation(
    name: str, config: BalanceConfig, args: BalanceTrainingArguments
) -> tuple[BalanceConfig, BalanceTrainingArguments]:
    """`(config, args)` of the ablation `name` built from the full method's `config` and `args`."""
    return ablation_config(name, config), ablation_args(name, args)


__all__ = ["Ablation", "ABLATIONS", "get_ablation", "ablation_config", "ablation_args", "build_ablation"]
