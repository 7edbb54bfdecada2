"""A backbone whose raw inputs are numbers (a string `"1 0.5 2"` or a list), for pipeline and report tests."""

from __future__ import annotations

from typing import Any

import torch

from mllm_balance.backbones import Backbone, register_backbone

NUMBER_TYPE = "number-test"
NUMBER_ID = "tests/number-backbone"


class NumberBackbone(Backbone):
    """Feature of a sample = its numbers; counts its `encode` calls and the items encoded.

    Args:
        sizes (`dict[str, int]`): modalities served and their feature sizes.
    """

    def __init__(self, sizes: dict[str, int] | None = None, name_or_path: str = NUMBER_ID):
        super().__init__()
        self.feature_sizes = dict(sizes or {"a": 3, "b": 3})
        self.modalities = tuple(self.feature_sizes)
        self.name_or_path = name_or_path
        self.calls: list[dict[str, int]] = []
        self.freeze()

    def identity(self) -> dict[str, Any]:
        return {"type": NUMBER_TYPE, "id": self.name_or_path, "revision": None, "sizes": dict(self.feature_sizes)}

    def preprocess_one(self, modality: str, value: Any) -> list[float]:
        self.check_modality(modality)
        numbers = [float(v) for v in (value.split() if isinstance(value, str) else value)]
        if len(numbers) != self.feature_sizes[modality]:
            raise ValueError(f"{modality} needs {self.feature_sizes[modality]} numbers, got {len(numbers)}")
        return numbers

    def encode_modality(self, modality: str, items: list[Any]) -> torch.Tensor:
        return torch.tensor(items, dtype=torch.float32)  # (B, D_m)

    def encode(self, batch):
        self.calls.append({m: len(v) for m, v in batch.items()})
        return super().encode(batch)


register_backbone(NUMBER_TYPE, lambda target, **options: NumberBackbone(name_or_path=target, **options), exist_ok=True)
