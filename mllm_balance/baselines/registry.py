"""The baseline registry: one name per method, with its model class, config defaults and training settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from .base import BaselineModel, TrainingProgressCallback
from .concat import ConcatModel
from .config import BaselineConfig
from .crmt import CRMTCallback, CRMTModel
from .joint import JointModel
from .late_fusion import LateFusionModel
from .lfm import LFMModel
from .mla import MLAModel
from .ogm import OGMCallback, OGMModel
from .sum import SumModel


@dataclass(frozen=True)
class BaselineSpec:
    """How to build and train one baseline.

    Args:
        name (`str`): registry name (also `BaselineConfig.method` and the `method` of its results).
        model_class (`type[BaselineModel]`): the model.
        paper (`str`): the method's reference.
        config_defaults (`dict`): `BaselineConfig` fields this method sets (e.g. OGM-GE's enhancement switch).
        training (`dict`): [`BalanceTrainingArguments`] fields this method needs (`alternation`, `order_schedule`).
        callbacks (`tuple`): callback classes to pass to the trainer.
    """

    name: str
    model_class: type[BaselineModel]
    paper: str
    config_defaults: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=lambda: {"alternation": "joint", "order_schedule": "fixed"})
    callbacks: tuple[Callable[[], TrainerCallback], ...] = ()

    def build_config(self, modality_dims: Mapping[str, int], num_labels: int, **kwargs: Any) -> BaselineConfig:
        """A [`BaselineConfig`] for this method (`kwargs` override the method's defaults)."""
        values = {**self.config_defaults, **kwargs}
        return BaselineConfig(modality_dims=dict(modality_dims), num_labels=num_labels, method=self.name, **values)

    def build_model(self, config: BaselineConfig, **kwargs: Any) -> BaselineModel:
        """The model for `config` (`kwargs` go to the model class, e.g. `backbone=` for Joint)."""
        if config.method != self.name:
            raise ValueError(f"config.method is {config.method!r}, this baseline is {self.name!r}")
        return self.model_class(config, **kwargs)

    def training_arguments(self, **kwargs: Any) -> dict[str, Any]:
        """[`BalanceTrainingArguments`] kwargs: `kwargs` plus the fields this method needs (which win)."""
        return {**kwargs, **self.training}

    def make_callbacks(self) -> list[TrainerCallback]:
        return [factory() for factory in self.callbacks]


_JOINT = {"alternation": "joint", "order_schedule": "fixed"}

BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec("sum", SumModel, "Peng et al., CVPR 2022 (Sum fusion baseline)"),
        BaselineSpec("concat", ConcatModel, "Peng et al., CVPR 2022 (Concat fusion baseline)"),
        BaselineSpec("late_fusion", LateFusionModel, "Gunes & Piccardi, IEEE SMC 2005"),
        BaselineSpec(
            "ogm", OGMModel, "Peng et al., CVPR 2022", {"ogm_gradient_enhancement": False}, _JOINT, (OGMCallback,)
        ),
        BaselineSpec(
            "ogm_ge", OGMModel, "Peng et al., CVPR 2022", {"ogm_gradient_enhancement": True}, _JOINT, (OGMCallback,)
        ),
        BaselineSpec(
            "mla", MLAModel, "Zhang et al., CVPR 2024", training={"alternation": "step", "order_schedule": "fixed"}
        ),
        BaselineSpec("lfm", LFMModel, "Yang et al., NeurIPS 2024", callbacks=(TrainingProgressCallback,)),
        BaselineSpec("crmt", CRMTModel, "Yang et al., ICLR 2024", callbacks=(CRMTCallback,)),
        BaselineSpec("joint", JointModel, "Table 3 of 'Modality Equilibrium Matters'; LoRA: Hu et al., ICLR 2022"),
    )
}


def get_baseline(name: str) -> BaselineSpec:
    """The [`BaselineSpec`] registered as `name` (see `BASELINES`)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}")
    return BASELINES[name]


__all__ = ["BaselineSpec", "BASELINES", "get_baseline"]
