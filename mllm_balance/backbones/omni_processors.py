"""What loading a Qwen-Omni thinker needs besides its weights: the model class for its `model_type`, its
tokenizer / image processor / feature extractor, and the processor settings recorded in the backbone identity."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import transformers
from transformers import AutoTokenizer, WhisperFeatureExtractor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

logger = logging.getLogger(__name__)

FEATURE_EXTRACTOR_KEYS = ("feature_size", "sampling_rate", "hop_length", "chunk_length", "n_fft", "padding_value")
IMAGE_PROCESSOR_KEYS = (
    "size",
    "min_pixels",
    "max_pixels",
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "image_mean",
    "image_std",
    "do_resize",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "resample",
)


def processor_settings(processor: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The JSON-serialisable values of `keys` on a processor (the ones that are set)."""
    settings = {}
    for key in keys:
        value = getattr(processor, key, None)
        if value is None:
            continue
        if isinstance(value, dict) or type(value).__name__ == "SizeDict":
            value = {k: v for k, v in dict(value).items() if v is not None}
        elif isinstance(value, (np.ndarray, tuple)):
            value = np.asarray(value).tolist()
        elif not isinstance(value, (int, float, str, bool, list)):
            value = str(value)
        settings[key] = value
    return settings


def thinker_class(model_type: str):
    """The transformers thinker class of a Qwen2.5-Omni / Qwen3-Omni `model_type`."""
    if model_type.startswith("qwen2_5_omni"):
        return transformers.Qwen2_5OmniThinkerForConditionalGeneration
    if model_type.startswith("qwen3_omni"):
        return transformers.Qwen3OmniMoeThinkerForConditionalGeneration
    raise ValueError(f"not a Qwen-Omni checkpoint (model_type {model_type!r})")


def load_processors(name_or_path: str, *, revision: str | None, trust_remote_code: bool) -> dict[str, Any]:
    """Tokenizer, Qwen2-VL image processor (PIL backend) and Whisper feature extractor, each optional."""
    options = {"revision": revision}
    loaded: dict[str, Any] = {}
    loaders = {
        "tokenizer": lambda: AutoTokenizer.from_pretrained(
            name_or_path, trust_remote_code=trust_remote_code, **options
        ),
        "image_processor": lambda: Qwen2VLImageProcessorPil.from_pretrained(name_or_path, **options),
        "feature_extractor": lambda: WhisperFeatureExtractor.from_pretrained(name_or_path, **options),
    }
    for key, load in loaders.items():
        try:
            loaded[key] = load()
        except (OSError, ValueError) as error:
            logger.warning("no %s loaded from %s: %s", key, name_or_path, error)
    return loaded


__all__ = ["FEATURE_EXTRACTOR_KEYS", "IMAGE_PROCESSOR_KEYS", "load_processors", "processor_settings", "thinker_class"]
