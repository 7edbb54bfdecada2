"""Baselines of the comparison, all on the same cached features and trained by [`BalanceTrainer`]:
Sum, Concat, Late Fusion, OGM, OGM-GE, MLA, LFM, CRMT and Joint (LoRA), plus the ablations of the method."""

from transformers import AutoConfig, AutoModel

from .ablations import ABLATIONS, Ablation, ablation_args, ablation_config, build_ablation, get_ablation
from .base import BaselineModel, BaselineOutput, TrainingProgressCallback
from .concat import ConcatModel
from .config import (
    BaselineConfig,
    ConcatConfig,
    CRMTConfig,
    JointConfig,
    LateFusionConfig,
    LFMConfig,
    MLAConfig,
    OGMConfig,
    SumConfig,
)
from .crmt import CRMTCallback, CRMTModel
from .joint import JointModel
from .late_fusion import LateFusionModel
from .lfm import LFMModel
from .mla import MLAModel, orthonormal_basis, project_gradient
from .ogm import OGMCallback, OGMModel, modulate_gradients, ogm_coefficients, ogm_scores
from .registry import BASELINES, BaselineSpec, get_baseline
from .sum import SumModel

for _spec in BASELINES.values():
    AutoConfig.register(_spec.model_class.config_class.model_type, _spec.model_class.config_class, exist_ok=True)
    AutoModel.register(_spec.model_class.config_class, _spec.model_class, exist_ok=True)

__all__ = [
    "BASELINES",
    "BaselineSpec",
    "get_baseline",
    "BaselineConfig",
    "SumConfig",
    "ConcatConfig",
    "LateFusionConfig",
    "OGMConfig",
    "MLAConfig",
    "LFMConfig",
    "CRMTConfig",
    "JointConfig",
    "BaselineModel",
    "BaselineOutput",
    "TrainingProgressCallback",
    "SumModel",
    "ConcatModel",
    "LateFusionModel",
    "OGMModel",
    "OGMCallback",
    "ogm_scores",
    "ogm_coefficients",
    "modulate_gradients",
    "MLAModel",
    "orthonormal_basis",
    "project_gradient",
    "LFMModel",
    "CRMTModel",
    "CRMTCallback",
    "JointModel",
    "ABLATIONS",
    "Ablation",
    "get_ablation",
    "ablation_config",
    "ablation_args",
    "build_ablation",
]
