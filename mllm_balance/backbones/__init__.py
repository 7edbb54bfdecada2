"""Frozen backbones: raw modalities in, one pooled feature vector per modality out."""

from .base import Backbone
from .composite import (
    CompositeBackbone,
    build_encoder,
    efficientnet_lite0_encoder,
    minilm_encoder,
    register_encoder,
    registered_encoders,
)
from .encoder_base import ModalityEncoder
from .encoders import AudioEncoder, TextEncoder, TorchImageEncoder, VideoEncoder, VisionEncoder
from .inputs import InputError, load_audio, load_image, load_text, load_video
from .loading import load_frozen, per_process_device_map, quantization_config
from .ola import OlaBackbone
from .omni import QwenOmniBackbone
from .registry import load_backbone, register_backbone, registered_backbones

__all__ = [
    "AudioEncoder",
    "Backbone",
    "CompositeBackbone",
    "InputError",
    "ModalityEncoder",
    "OlaBackbone",
    "QwenOmniBackbone",
    "TextEncoder",
    "TorchImageEncoder",
    "VideoEncoder",
    "VisionEncoder",
    "build_encoder",
    "efficientnet_lite0_encoder",
    "load_audio",
    "load_backbone",
    "load_frozen",
    "load_image",
    "load_text",
    "load_video",
    "minilm_encoder",
    "per_process_device_map",
    "quantization_config",
    "register_backbone",
    "register_encoder",
    "registered_backbones",
    "registered_encoders",
]
