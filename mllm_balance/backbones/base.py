"""The frozen-backbone interface: modalities in, one pooled vector per modality out."""

from __future__ import annotations

import hashlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .inputs import InputError


class Backbone(nn.Module, ABC):
    """A frozen encoder that maps raw inputs of one or more modalities to pooled feature vectors.

    A backbone is always in eval mode with gradients off: `train(True)` is ignored, and `encode` runs under
    `torch.no_grad()` (not inference mode, so its outputs can feed trainable modules). Subclasses set
    `modalities` and `feature_sizes`, and implement `preprocess_one`, `encode_modality` and `identity`.

    Attributes:
        modalities (`tuple[str, ...]`): The modality names this backbone serves, e.g. `("text", "image")`.
        feature_sizes (`dict[str, int]`): Size `D_m` of the pooled vector for each served modality.
    """

    modalities: tuple[str, ...] = ()
    feature_sizes: dict[str, int] = {}

    def freeze(self) -> Backbone:
        """Turns off gradients and dropout for every parameter and submodule; call at the end of `__init__`."""
        self.requires_grad_(False)
        super().train(False)
        return self

    def train(self, mode: bool = True) -> Backbone:  # noqa: D102 - a frozen backbone stays in eval mode
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """The device of the first parameter or buffer (CPU for a module without any)."""
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines the features: backbone type, id, revision, layer, pooling, preprocessing,
        quantization and dtype. Two backbones with equal identities must give equal features; the feature
        cache fingerprints this dict, so it holds JSON-serialisable values only."""

    @abstractmethod
    def preprocess_one(self, modality: str, value: Any) -> Any:
        """Validates and loads one raw input of `modality` (a path, bytes, array, PIL image, string, ...).

        Returns:
            The canonical item that `encode_modality` consumes; applying `preprocess_one` to it again is a
            no-op.

        Raises:
            InputError: The input is empty, unreadable or malformed; the message names the problem.
        """

    @abstractmethod
    def encode_modality(self, modality: str, items: list[Any]) -> torch.Tensor:
        """Encodes canonical items (outputs of `preprocess_one`) of one modality.

        Returns:
            `Tensor[B, D_m]` of pooled features, one row per item.
        """

    def check_modality(self, modality: str) -> None:
        """Raises a `ValueError` naming the served modalities when `modality` is not one of them."""
        if modality not in self.modalities:
            raise ValueError(f"{type(self).__name__} serves the modalities {list(self.modalities)}, not {modality!r}")

    def encode(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, torch.Tensor]:
        """Encodes every modality present in `batch`, each on its own.

        Args:
            batch (`Mapping[str, Sequence]`): Raw inputs keyed by modality, one list per modality (lists may
                have different lengths; a modality absent from the batch is simply not returned).

        Returns:
            `dict[str, Tensor]`: `{modality: Tensor[B_m, D_m]}` in float32 on the backbone's device.

        Raises:
            ValueError: A modality this backbone does not serve.
            InputError: A bad input (a `ValueError` subclass that names the modality and the position).
        """
        for modality in batch:
            self.check_modality(modality)
        features = {}
        with torch.no_grad(), _quiet_quantized_matmul():
            for modality, values in batch.items():
                items = []
                for index, value in enumerate(values):
                    try:
                        items.append(self.preprocess_one(modality, value))
                    except InputError as error:
                        raise InputError(f"{modality}[{index}]: {error}", reason=error.reason) from error
                if not items:
                    continue
                pooled = self.encode_modality(modality, items)  # (B, D_m)
                expected = (len(items), self.feature_sizes[modality])
                if tuple(pooled.shape) != expected:
                    raise RuntimeError(
                        f"{type(self).__name__} returned {tuple(pooled.shape)} for {modality!r}, expected {expected}"
                    )
                features[modality] = pooled.float()
        return features

    def forward(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, torch.Tensor]:
        """Alias of `encode`."""
        return self.encode(batch)

    def fingerprint(self) -> str:
        """A short hash of `identity()`."""
        return hash_json(self.identity())


def hash_json(value: Any) -> str:
    """sha256 (first 16 hex digits) of a JSON-serialisable value with sorted keys."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def local_files_revision(path: str | Path) -> str | None:
    """A revision for a local model folder: a hash of every file's relative name, size and modification time.

    Hashing the contents of multi-GB weight files would take minutes; name, size and mtime change whenever a
    file is replaced. Returns `None` when `path` is not a local directory (a Hub id).
    """
    root = Path(path)
    if not root.is_dir():
        return None
    entries = []
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = file.stat()
        entries.append([file.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    return "local-" + hash_json(entries)


def module_weights_hash(module: nn.Module) -> str:
    """sha256 (first 16 hex digits) over a module's state dict (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


class _QuantizedMatmulFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "inputs will be cast from" not in record.getMessage()


class _quiet_quantized_matmul:
    """Silences bitsandbytes' per-matmul warning that 8-bit layers cast their inputs to float16."""

    _logger = logging.getLogger("bitsandbytes.autograd._functions")
    _filter = _QuantizedMatmulFilter()

    def __enter__(self) -> None:
        self._logger.addFilter(self._filter)

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeFilter(self._filter)
