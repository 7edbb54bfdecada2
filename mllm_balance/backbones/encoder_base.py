"""What every per-modality encoder of `CompositeBackbone` shares: the `ModalityEncoder` interface, masked mean
pooling, and loading a Hugging Face model with its preprocessor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModel

from .loading import dtype_name, hub_revision, load_frozen, quantization_identity


class ModalityEncoder(nn.Module, ABC):
    """A frozen encoder for one kind of input.

    Attributes:
        kind (`str`): The kind of input it reads: `"text"`, `"image"`, `"audio"` or `"video"`.
        feature_size (`int`): Size of the pooled vector.
    """

    kind: str = ""
    feature_size: int = 0

    @abstractmethod
    def preprocess_one(self, value: Any) -> Any:
        """Validates and loads one raw input (see `mllm_balance.backbones.inputs`); raises `InputError`."""

    @abstractmethod
    def encode(self, items: list[Any]) -> torch.Tensor:
        """Encodes preprocessed items into `Tensor[B, feature_size]`."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-serialisable description of everything that determines the features."""

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` `(B, L, D)` over the positions where `mask` `(B, L)` is nonzero -> `(B, D)`."""
    weights = mask.to(hidden.device, torch.float32).unsqueeze(-1)  # (B, L, 1)
    return (hidden.float() * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def hf_identity(encoder: Any, kind: str, preprocessing: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": f"transformers-{kind}",
        "model_type": encoder.model.config.model_type,
        "id": str(encoder.name_or_path),
        "revision": encoder.revision,
        "layer": "last",
        "pooling": encoder.pooling,
        "preprocessing": preprocessing,
        "quantization": quantization_identity(encoder.quantization),
        "dtype": dtype_name(next(encoder.model.parameters()).dtype),
    }


_LOAD_OPTIONS = ("dtype", "quantization", "device_map", "trust_remote_code")


def load_hf_encoder(cls, processor_class, name_or_path: str, revision: str | None, kwargs: dict[str, Any]):
    """`AutoModel` (frozen, through `load_frozen`) + its preprocessor (`processor_class`) -> `cls(model, processor)`.

    Loading options (`dtype`, `quantization`, `device_map`, `trust_remote_code`) go to `load_frozen` (and
    `trust_remote_code` to the preprocessor), the rest to the encoder's constructor.
    """
    load_options, options = split_load_options(kwargs)
    model = load_frozen(AutoModel, name_or_path, revision=revision, **load_options)
    processor = processor_class.from_pretrained(
        name_or_path, revision=revision, trust_remote_code=load_options.get("trust_remote_code", False)
    )
    return cls(
        model,
        processor,
        name_or_path=name_or_path,
        revision=hub_revision(model, name_or_path, revision),
        quantization=load_options.get("quantization"),
        **options,
    )


def split_load_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    load = {k: v for k, v in kwargs.items() if k in _LOAD_OPTIONS}
    return load, {k: v for k, v in kwargs.items() if k not in _LOAD_OPTIONS}


def jsonable(value: Any) -> Any:
    if isinstance(value, dict) or type(value).__name__ == "SizeDict":
        return {str(k): jsonable(v) for k, v in dict(value).items() if v is not None}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


__all__ = ["ModalityEncoder", "hf_identity", "jsonable", "load_hf_encoder", "masked_mean", "split_load_options"]
