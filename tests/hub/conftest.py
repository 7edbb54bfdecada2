"""Offline fixtures for the hub and pipeline tests: a tiny text/image/audio backbone and a model on top of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hub_helpers import SAMPLING_RATE, TinyBackbone, make_model, png_bytes, tone

from mllm_balance import BalancedModel


@pytest.fixture(autouse=True)
def _offline_single_thread(monkeypatch):
    """No Hub access; one torch thread (tiny matmuls on a shared 2-core machine are much faster without a pool)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def backbone() -> TinyBackbone:
    return TinyBackbone()


@pytest.fixture
def model(backbone) -> BalancedModel:
    return make_model(backbone)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Sample files: two PNG images, two WAV clips, and broken ones."""
    import soundfile

    root = tmp_path_factory.mktemp("media")
    files = {}
    for i in range(2):
        files[f"image{i}"] = root / f"image{i}.png"
        files[f"image{i}"].write_bytes(png_bytes(i))
        files[f"audio{i}"] = root / f"audio{i}.wav"
        soundfile.write(files[f"audio{i}"], tone(0.2 + 0.1 * i, 300.0 + 200 * i), SAMPLING_RATE)
    files["corrupt_audio"] = root / "corrupt.wav"
    files["corrupt_audio"].write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    files["corrupt_image"] = root / "corrupt.png"
    files["corrupt_image"].write_bytes(png_bytes(5)[:40])
    files["text_file"] = root / "notes.txt"
    files["text_file"].write_text("not an image")
    return files
