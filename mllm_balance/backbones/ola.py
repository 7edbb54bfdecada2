"""Ola-7B: an omni-modal LLM shipped as its own package, which cannot share an environment with this one."""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import transformers

from .base import Backbone


class OlaBackbone(Backbone):
    """Ola-7B through its own package (`ola`).

    Ola is not part of transformers and is not remote code: it is a separate package pinned to transformers 4.x,
    with separate Whisper and BEATs weights. It cannot share an environment with this package (transformers>=5.3),
    so this class only checks and explains: extract Ola features in Ola's own environment, write them in the
    feature-column format (`mllm_balance.features`), or use the native `"qwen2.5-omni:..."` backbone.
    """

    def __init__(self, name_or_path: str, **kwargs: Any):
        super().__init__()
        raise ImportError(ola_unavailable_message(name_or_path))

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs: Any) -> OlaBackbone:
        """Raises an `ImportError` that says why Ola cannot run here and what to use instead."""
        return cls(name_or_path, **kwargs)

    def identity(self) -> dict[str, Any]:  # pragma: no cover - never constructed
        raise NotImplementedError

    def preprocess_one(self, modality: str, value: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def encode_modality(self, modality: str, items: list[Any]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def ola_unavailable_message(name_or_path: str) -> str:
    """Why an Ola backbone cannot be built in this environment."""
    if importlib.util.find_spec("ola") is None:
        reason = "the `ola` package is not installed"
    else:
        reason = (
            f"the installed `ola` package needs transformers 4.x, but this environment has transformers "
            f"{transformers.__version__}, which mllm-balance requires"
        )
    return (
        f"Ola backbone {name_or_path!r} is unavailable: {reason}. Ola ships as its own package pinned to "
        "transformers 4.x (it cannot share an environment with transformers 5): extract its per-modality "
        "features in Ola's environment and save them in the feature-column format, "
        "or use the native omni backbone, e.g. 'qwen2.5-omni:Qwen/Qwen2.5-Omni-7B'."
    )


__all__ = ["OlaBackbone", "ola_unavailable_message"]
