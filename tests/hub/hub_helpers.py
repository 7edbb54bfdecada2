"""Helpers for the hub and pipeline tests: a tiny text/image/audio backbone, a model on it, sample media."""

from __future__ import annotations

import io
import zlib
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from mllm_balance import BalanceConfig, BalancedModel
from mllm_balance.backbones import Backbone, load_audio, load_image, load_text, register_backbone
from mllm_balance.reference import record_backbone

TINY_ID = "tiny-org/tiny-backbone"
TINY_REVISION = "0123456789abcdef"
TINY_TYPE = "tiny-test"
SAMPLING_RATE = 8000
LABELS = {0: "negative", 1: "neutral", 2: "positive"}


class TinyBackbone(Backbone):
    """A small random text (BERT) + image (conv) + audio (framed linear) backbone built offline in milliseconds.

    Features of a sample do not depend on the rest of its batch (masked mean pooling, per-item image and audio
    towers), so pipeline results can be compared across batch sizes.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        name_or_path: str = TINY_ID,
        revision: str | None = TINY_REVISION,
        layer: int = -1,
        text_size: int = 32,
        image_size: int = 12,
        audio_size: int = 10,
        dtype: str = "float32",
    ):
        super().__init__()
        from transformers import BertConfig, BertModel

        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.text_tower = BertModel(
            BertConfig(
                vocab_size=64,
                hidden_size=text_size,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=40,
            ),
            add_pooling_layer=False,
        )
        self.image_tower = nn.Sequential(
            nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(196, image_size)
        )
        self.audio_tower = nn.Linear(64, audio_size)
        torch.random.set_rng_state(generator_state)
        self.name_or_path, self.revision, self.layer, self.dtype_name = name_or_path, revision, layer, dtype
        self.modalities = ("text", "image", "audio")
        self.feature_sizes = {"text": text_size, "image": image_size, "audio": audio_size}
        self.freeze()

    def identity(self) -> dict[str, Any]:
        return {
            "type": TINY_TYPE,
            "id": self.name_or_path,
            "revision": self.revision,
            "layer": self.layer,
            "pooling": "mean",
            "preprocessing": {"text": {"max_tokens": 30}, "image": {"size": 16}, "audio": {"rate": SAMPLING_RATE}},
            "quantization": None,
            "dtype": self.dtype_name,
            "modalities": list(self.modalities),
        }

    def preprocess_one(self, modality: str, value: Any) -> Any:
        self.check_modality(modality)
        if modality == "text":
            return load_text(value)
        if modality == "image":
            return load_image(value).resize((16, 16))
        return load_audio(value, SAMPLING_RATE)

    def encode_modality(self, modality: str, items: list[Any]) -> torch.Tensor:
        if modality == "text":
            ids = [[1] + [4 + zlib.crc32(w.encode()) % 60 for w in text.lower().split()][:29] for text in items]
            width = max(len(i) for i in ids)
            input_ids = torch.tensor([i + [0] * (width - len(i)) for i in ids])  # (B, L)
            mask = (torch.arange(width) < torch.tensor([len(i) for i in ids])[:, None]).long()  # (B, L)
            hidden = self.text_tower(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, L, D)
            return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (B, D)
        if modality == "image":
            pixels = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0) for im in items])
            return self.image_tower(pixels.permute(0, 3, 1, 2))  # (B, D)
        rows = []
        for wave in items:
            frames = torch.from_numpy(np.pad(wave, (0, (-len(wave)) % 64))).reshape(-1, 64)  # (T, 64)
            rows.append(torch.tanh(self.audio_tower(frames)).mean(0))
        return torch.stack(rows)  # (B, D)


register_backbone(TINY_TYPE, lambda target, **options: TinyBackbone(name_or_path=target, **options), exist_ok=True)


def make_model(backbone: TinyBackbone, seed: int = 0, **config_kwargs: Any) -> BalancedModel:
    torch.manual_seed(seed)
    kwargs = {
        "modality_dims": dict(backbone.feature_sizes),
        "hidden_size": 8,
        "num_labels": 3,
        "id2label": dict(LABELS),
        "train_order": ["audio", "image", "text"],
        "shapley_history": [
            {"text": 20.0, "image": 8.0, "audio": 3.0},
            {"text": 16.0, "image": 10.0, "audio": 7.5},
        ],
        **config_kwargs,
    }
    config = BalanceConfig(**kwargs)
    record_backbone(config, backbone)
    return BalancedModel(config).eval()


def png_bytes(seed: int, size: tuple[int, int] = (20, 24)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def tone(seconds: float, freq: float, rate: int = SAMPLING_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def full_results(**overrides: Any) -> dict[str, Any]:
    from mllm_balance.results import build_results

    results = build_results(
        dataset="kaomoji-sentiment",
        method="ours",
        modalities=["text", "image", "audio"],
        fusion_accuracy=81.25,
        per_modality={"text": 77.0, "image": 52.125, "audio": 40.0},
        shapley={"text": 30.0, "image": 18.0, "audio": 12.0},
        edm=60.0,
        order_history=[["text", "image", "audio"], ["audio", "image", "text"]],
        missing_modality={0.0: 81.25, 0.1: 78.0, 0.5: 66.5},
        shapley_history=[{"text": 20.0, "image": 8.0, "audio": 3.0}, {"text": 30.0, "image": 18.0, "audio": 12.0}],
        edm_history=[90.0, 60.0],
    )
    results.update(overrides)
    return results
