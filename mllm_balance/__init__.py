"""mllm-balance: balanced multimodal classifiers on frozen (multimodal) LLM backbones.

Shapley-ordered alternating training of per-modality adapters, a cross-modal mapping and a modality memory
unit, with hybrid-order fusion at inference ("Modality Equilibrium Matters").
"""

# First: transformers' Trainer imports peft, which imports bitsandbytes; this defers bitsandbytes to its first use.
from . import _deferred_imports  # noqa: F401

# isort: split
from transformers import AutoConfig, AutoModel

from . import baselines  # noqa: F401  (registers every baseline's config and model with AutoConfig / AutoModel)
from .callbacks import BestValidationCallback, EpochSummaryCallback, ShapleyOrderCallback
from .classifier import FeatureClassifier
from .collator import BalanceDataCollator, build_feature_dataset, validate_feature_dataset
from .configuration import BalanceConfig, FeatureClassifierConfig
from .hub import push_adapters_to_hub
from .modeling import BalancedModel, BalancedModelOutput
from .order_state import OrderState
from .pipeline import BalancedClassificationPipeline, register_pipeline  # importing registers the pipeline task
from .presets import PRESETS, Preset, get_preset
from .reference import check_backbone_compatibility, record_backbone
from .shapley import ShapleyValues, equilibrium_deviation, next_order, shapley_values
from .trainer import BalanceTrainer, accuracy_metrics
from .training_args import BalanceTrainingArguments

__version__ = "0.1.0"

AutoConfig.register(BalanceConfig.model_type, BalanceConfig, exist_ok=True)
AutoModel.register(BalanceConfig, BalancedModel, exist_ok=True)

__all__ = [
    "FeatureClassifierConfig",
    "FeatureClassifier",
    "BalanceConfig",
    "BalancedModel",
    "BalancedModelOutput",
    "BalanceTrainingArguments",
    "BalanceTrainer",
    "ShapleyOrderCallback",
    "BestValidationCallback",
    "EpochSummaryCallback",
    "OrderState",
    "PRESETS",
    "Preset",
    "get_preset",
    "BalanceDataCollator",
    "build_feature_dataset",
    "validate_feature_dataset",
    "ShapleyValues",
    "shapley_values",
    "equilibrium_deviation",
    "next_order",
    "accuracy_metrics",
    "BalancedClassificationPipeline",
    "register_pipeline",
    "check_backbone_compatibility",
    "push_adapters_to_hub",
    "record_backbone",
]
