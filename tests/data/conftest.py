"""Tiny media files for the dataset-folder fixtures (made in tmp_path, never downloaded)."""

from __future__ import annotations

import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, value: int = 128, suffix_format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, value // 2, 255 - value)).save(path, format=suffix_format)
    return path


def write_wav(path: Path, seconds: float = 0.05, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def write_frames(folder: Path, count: int = 2) -> Path:
    for i in range(count):
        write_image(folder / f"frame_{i + 1:05d}.jpg", value=40 * i, suffix_format="JPEG")
    return folder


def corrupt(path: Path) -> Path:
    path.write_bytes(b"this is not a media file")
    return path


@pytest.fixture
def media():
    """Helpers to write tiny images, WAV files and frame folders, and to corrupt a file."""
    return SimpleNamespace(image=write_image, wav=write_wav, frames=write_frames, corrupt=corrupt)
