"""Bad inputs: each gets a clear error, or a counted skip when the caller asks for one."""

from __future__ import annotations

import io

import datasets
import numpy as np
import pytest
import torch
from backbone_helpers import CountingTextBackbone, random_image, tone, wav_bytes
from PIL import Image

from mllm_balance.backbones import CompositeBackbone, InputError, load_audio, load_image, load_text, load_video
from mllm_balance.backbones.encoders import TorchImageEncoder
from mllm_balance.features import extract_features


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def bad_files(tmp_path):
    good = png_bytes(random_image(0, (32, 32)))
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.jpg").write_bytes(b"this is not an image at all")
    wav = wav_bytes(tone(0.5), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    (tmp_path / "truncated.wav").write_bytes(wav[:30])
    return tmp_path


def test_unreadable_images(bad_files):
    for name in ("truncated.png", "garbage.jpg", "does-not-exist.png"):
        with pytest.raises(InputError, match="cannot be") as caught:
            load_image(str(bad_files / name))
        assert caught.value.reason == "unreadable_image" and name in str(caught.value)
    with pytest.raises(InputError, match="cannot be decoded"):
        load_image(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match="unsupported shape"):
        load_image(np.zeros((5, 4, 2), dtype=np.uint8))
    with pytest.raises(InputError, match="missing") as caught:
        load_image(None)
    assert caught.value.reason == "missing"


def test_image_forms_load_as_rgb():
    image = random_image(1, (20, 10))
    from_bytes = load_image({"bytes": png_bytes(image), "path": None})
    assert from_bytes.mode == "RGB" and np.array_equal(np.asarray(from_bytes), np.asarray(image))
    gray = load_image(np.full((10, 20), 128, dtype=np.uint8))
    assert gray.mode == "RGB" and gray.size == (20, 10)
    chw = load_image(torch.ones(3, 10, 20) * 0.5)
    assert chw.size == (20, 10) and np.asarray(chw)[0, 0, 0] == 128


def test_corrupt_audio_files(bad_files):
    for name in ("corrupt.wav", "truncated.wav", "missing.wav"):
        with pytest.raises(InputError, match="cannot be read") as caught:
            load_audio(str(bad_files / name), 16000)
        assert caught.value.reason == "unreadable_audio"
    with pytest.raises(InputError, match="no samples") as caught:
        load_audio(np.zeros(0, dtype=np.float32), 16000)
    assert caught.value.reason == "empty_audio"
    with pytest.raises(InputError, match="NaN"):
        load_audio(np.array([0.0, np.nan], dtype=np.float32), 16000)


def test_other_sample_rate_is_resampled_or_refused():
    clip = tone(1.0, rate=8000, freq=440)
    resampled = load_audio(wav_bytes(clip, 8000), 16000)
    assert resampled.shape == (16000,) and resampled.dtype == np.float32
    peak = np.abs(np.fft.rfft(resampled)).argmax()  # 1 Hz bins over one second
    assert abs(peak - 440) <= 1
    same = load_audio({"array": clip, "sampling_rate": 8000}, 16000)
    np.testing.assert_allclose(same, resampled, atol=1e-4)
    with pytest.raises(InputError, match="8000 Hz but the backbone expects 16000 Hz") as caught:
        load_audio((clip, 8000), 16000, resample=False)
    assert caught.value.reason == "sample_rate"
    assert load_audio(clip, 16000, resample=False).shape == (8000,)  # a bare array is taken as 16 kHz


def test_stereo_and_integer_audio_become_mono_float():
    left, right = tone(0.1), -tone(0.1)
    assert np.abs(load_audio(np.stack([left, right]), 16000)).max() < 1e-6  # channels first
    assert np.abs(load_audio(np.stack([left, right], axis=1), 16000)).max() < 1e-6  # channels last
    as_int = load_audio(np.array([16384, -32768], dtype=np.int16), 16000)
    np.testing.assert_allclose(as_int, [0.5, -1.0])


def test_empty_text_and_bad_video():
    assert load_text("  hello ") == "hello"
    for value, reason in (("", "empty_text"), (" \n\t", "empty_text"), (None, "missing"), (3, "unsupported")):
        with pytest.raises(InputError) as caught:
            load_text(value)
        assert caught.value.reason == reason
    with pytest.raises(InputError, match="no frames") as caught:
        load_video([])
    assert caught.value.reason == "empty_video"
    with pytest.raises(InputError, match="video frame 1"):
        load_video([random_image(0), b"not an image"])
    with pytest.raises(InputError, match="list of frames"):
        load_video("clip.mp4")
    assert len(load_video(np.zeros((10, 8, 8, 3), dtype=np.uint8), max_frames=3)) == 3


def test_encode_names_the_bad_item():
    backbone = CountingTextBackbone()
    with pytest.raises(InputError, match=r"text\[1\]: text is empty"):
        backbone.encode({"text": ["fine", "   "]})
    with pytest.raises(ValueError, match="serves the modalities \\['text'\\], not 'image'"):
        backbone.encode({"image": [random_image(0)]})


def tiny_image_backbone() -> CompositeBackbone:
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    encoder = TorchImageEncoder(network, feature_size=4, name="tiny-conv", image_size=16)
    return CompositeBackbone({"image": encoder, "text": _text_encoder()})


def _text_encoder():
    from mllm_balance.backbones.encoder_base import ModalityEncoder

    class Letters(ModalityEncoder):
        kind, feature_size = "text", 2

        def preprocess_one(self, value):
            return load_text(value)

        def encode(self, items):
            return torch.tensor([[len(t), t.count("a")] for t in items], dtype=torch.float32)

        def identity(self):
            return {"type": "letters"}

    return Letters()


def test_extraction_on_error_policies(bad_files, tmp_path):
    good = png_bytes(random_image(1, (20, 20)))
    rows = {
        "image": [
            {"bytes": good, "path": None},
            {"bytes": None, "path": str(bad_files / "truncated.png")},
            {"bytes": None, "path": str(bad_files / "garbage.jpg")},
            None,
            {"bytes": good, "path": None},
        ],
        "text": ["a cat", "a dog", "", "banana", "ok"],
        "labels": [0, 1, 0, 1, 0],
    }
    dataset = datasets.Dataset.from_dict(
        rows,
        features=datasets.Features(
            {"image": datasets.Image(), "text": datasets.Value("string"), "labels": datasets.Value("int64")}
        ),
    )
    backbone = tiny_image_backbone()
    with pytest.raises(InputError, match="image column 'image'.*truncated.png.*cannot be decoded"):
        extract_features(dataset, backbone, cache_dir=tmp_path, progress=False)

    skipped, report = extract_features(
        dataset, backbone, cache_dir=tmp_path, on_error="skip", progress=False, return_report=True
    )
    assert skipped["labels"][:] == [0, 1, 0]  # row 1 (truncated image) and row 2 (garbage, empty text) dropped
    assert report.skipped_rows == 2 and report.num_rows == 3
    assert report.errors == {"image": {"unreadable_image": 2}, "text": {"empty_text": 1}}
    assert report.missing == {"image": 1}  # None: the modality is absent, not an error
    assert skipped["image_present"][:] == [True, False, True]

    marked, report = extract_features(
        dataset, backbone, cache_dir=tmp_path, on_error="missing", progress=False, return_report=True
    )
    assert marked.num_rows == 5 and report.skipped_rows == 0
    assert marked["image_present"][:] == [True, False, False, False, True]
    assert marked["text_present"][:] == [True, True, False, True, True]
    assert not np.any(np.asarray(marked["image"][1])) and np.any(np.asarray(marked["image"][0]))
    assert marked["text"][3] == [6.0, 3.0]


def test_extraction_of_an_unserved_modality(tmp_path):
    dataset = datasets.Dataset.from_dict({"text": ["one", "two"], "audio": [tone(0.1), tone(0.1)]})
    backbone = CountingTextBackbone()
    with pytest.raises(ValueError, match="serves \\['text'\\], not 'audio'"):
        extract_features(dataset, backbone, modalities=["text", "audio"], cache_dir=tmp_path, progress=False)
    with pytest.warns(UserWarning, match="leaving 'audio' out"):
        features, report = extract_features(
            dataset,
            backbone,
            modalities=["text", "audio"],
            on_error="skip",
            cache_dir=tmp_path,
            progress=False,
            return_report=True,
        )
    assert report.dropped_modalities == ["audio"] and "audio" not in features.column_names
    assert features.num_rows == 2
