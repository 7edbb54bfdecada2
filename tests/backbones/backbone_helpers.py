"""Sample media for the backbone tests."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from mllm_balance.backbones import Backbone, load_text


def random_image(seed: int, size: tuple[int, int] = (28, 28)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def wav_bytes(waveform: np.ndarray, rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, format="WAV")
    return buffer.getvalue()


class CountingTextBackbone(Backbone):
    """A cheap deterministic text backbone (letter histograms) that counts its `encode` calls."""

    modalities = ("text",)
    feature_sizes = {"text": 26}

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale
        self.calls = 0
        self.freeze()

    def identity(self) -> dict:
        return {"type": "letter-histogram", "scale": self.scale}

    def preprocess_one(self, modality: str, value):
        self.check_modality(modality)
        return load_text(value)

    def encode(self, batch):
        self.calls += 1
        return super().encode(batch)

    def encode_modality(self, modality: str, items: list) -> torch.Tensor:
        out = torch.zeros(len(items), 26)
        for row, text in enumerate(items):
            for char in text.lower():
                if "a" <= char <= "z":
                    out[row, ord(char) - 97] += self.scale
        return out
