"""Baselines of the comparison, all on the same cached features and trained by [`BalanceTrainer`]:
Sum, Concat, Late Fusion, OGM, OGM-GE, MLA, LFM, CRMT and Joint (LoRA), plus the ablations of the method."""

from transformers import AutoConfig

from .ablations import ABLATIONS, Ablation, ablation_args, ablation_config, build_ablation, get_ablation
from .base import BaselineModel, BaselineOutput, TrainingProgressCallback
from .concat import ConcatModel
from .config import BaselineConfig
from .crmt import CRMTCallback, CRMTModel
from .joint import JointModel
from .late_fusion import LateFusionModel
from .lfm import LFMModel
from .mla import MLAModel, orthonormal_basis, project_gradient
from .ogm import OGMCallback, OGMModel, modulate_gradients, ogm_coefficients, ogm_scores
from .registry import BASELINES, BaselineSpec, get_baseline
from .sum import SumModel

AutoConfig.register(BaselineConfig.model_type, BaselineConfig, exist_ok=True)

__all__ = [
    "BASELINES",
    "BaselineSpec",
    "get_baseline",
    "BaselineConfig",
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
