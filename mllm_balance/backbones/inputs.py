"""Loading and validating raw inputs: text, images, audio and video frames.

Every loader returns one canonical form (a stripped `str`, an RGB `PIL.Image`, a mono float32 waveform at the
backbone's sampling rate, a list of RGB frames) and raises `InputError` (a `ValueError`) that names the problem
for anything it cannot turn into that form. Loaders accept their own output unchanged.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

#: Reasons an input can be refused; `ExtractionReport` counts skips by these names.
INPUT_ERROR_REASONS = (
    "missing",
    "empty_text",
    "unreadable_image",
    "unreadable_audio",
    "empty_audio",
    "sample_rate",
    "empty_video",
    "unsupported",
)


class InputError(ValueError):
    """A raw input that cannot be encoded.

    Args:
        message (`str`): What is wrong, for a person to read.
        reason (`str`): A short machine-readable cause, one of `INPUT_ERROR_REASONS`.
    """

    def __init__(self, message: str, *, reason: str = "unsupported"):
        super().__init__(message)
        self.reason = reason


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_text(value: Any) -> str:
    """Returns `value` stripped of surrounding whitespace.

    Raises:
        InputError: `None` (reason `"missing"`), not a string (`"unsupported"`), or empty after stripping
            (`"empty_text"`).
    """
    if value is None:
        raise InputError("text is missing (None)", reason="missing")
    if not isinstance(value, str):
        raise InputError(f"text must be a str, got {type(value).__name__}", reason="unsupported")
    text = value.strip()
    if not text:
        raise InputError("text is empty", reason="empty_text")
    return text


def load_image(value: Any) -> Image.Image:
    """Loads an image as RGB.

    Args:
        value: A `PIL.Image`; a file path; encoded bytes; a `datasets` image dict (`{"bytes": ..., "path": ...}`,
            as stored with `Image(decode=False)`); or an array / tensor of shape `(H, W)`, `(H, W, C)` or
            `(C, H, W)` (uint8, or float in [0, 1]).

    Returns:
        `PIL.Image.Image` in RGB mode, fully decoded.

    Raises:
        InputError: `None` (`"missing"`), a file that does not exist or cannot be decoded, including a
            truncated one (`"unreadable_image"`), or an unsupported type or shape (`"unsupported"`).
    """
    if value is None:
        raise InputError("image is missing (None)", reason="missing")
    if isinstance(value, Mapping):
        if value.get("bytes") is not None:
            value = value["bytes"]
        elif value.get("path") is not None:
            value = value["path"]
        else:
            raise InputError("image dict has neither 'bytes' nor 'path'", reason="missing")
    if isinstance(value, Image.Image):
        image = value
        source = "image"
    elif isinstance(value, (str, Path)):
        source = f"image file {str(value)!r}"
        try:
            image = Image.open(value)
        except (OSError, ValueError) as error:
            raise InputError(f"{source} cannot be read: {error}", reason="unreadable_image") from error
    elif isinstance(value, (bytes, bytearray, memoryview)):
        source = f"image bytes ({len(value)} bytes)"
        try:
            image = Image.open(io.BytesIO(bytes(value)))
        except (OSError, ValueError) as error:
            raise InputError(f"{source} cannot be decoded: {error}", reason="unreadable_image") from error
    elif isinstance(value, (np.ndarray, torch.Tensor)):
        return _image_from_array(value)
    else:
        raise InputError(f"unsupported image input {_describe(value)}", reason="unsupported")
    try:
        image.load()
        if image.width == 0 or image.height == 0:
            raise OSError("the image has no pixels")
        return image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"{source} cannot be decoded: {error}", reason="unreadable_image") from error


def _image_from_array(value: np.ndarray | torch.Tensor) -> Image.Image:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # (C, H, W) -> (H, W, C)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or array.size == 0:
        raise InputError(f"image array has unsupported shape {array.shape}", reason="unsupported")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise InputError(f"image array must be uint8 or finite floats, got {array.dtype}", reason="unsupported")
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def load_audio(value: Any, sampling_rate: int, *, resample: bool = True) -> np.ndarray:
    """Loads audio as a mono float32 waveform at `sampling_rate`.

    Multi-channel audio is averaged to mono. Audio at another rate is resampled with a polyphase filter
    (`scipy.signal.resample_poly`, Kaiser window) when `resample=True`, and refused otherwise.

    Args:
        value: A file path or encoded bytes (WAV, FLAC, OGG, MP3: anything libsndfile reads); a `datasets` audio
            dict (`{"array": ..., "sampling_rate": ...}`, or `{"bytes": ..., "path": ...}` as stored with
            `Audio(decode=False)`); a tuple `(waveform, sampling_rate)`; or a bare waveform (array or tensor),
            which is taken to be at `sampling_rate` already. A 2-D waveform's shorter axis is the channel axis.
        sampling_rate (`int`): The rate the backbone expects, in Hz.
        resample (`bool`, *optional*, defaults to `True`): Resample audio at another rate instead of refusing it.

    Returns:
        `np.ndarray` of shape `(num_samples,)`, float32.

    Raises:
        InputError: `None` (`"missing"`), a file that cannot be read or decoded (`"unreadable_audio"`),
            no samples or non-finite samples (`"empty_audio"` / `"unreadable_audio"`), or another rate with
            `resample=False` (`"sample_rate"`).
    """
    if value is None:
        raise InputError("audio is missing (None)", reason="missing")
    source_rate: int | None = sampling_rate
    if isinstance(value, Mapping):
        if value.get("array") is not None:
            value, source_rate = value["array"], value.get("sampling_rate", sampling_rate)
        elif value.get("bytes") is not None:
            value = value["bytes"]
        elif value.get("path") is not None:
            value = value["path"]
        else:
            raise InputError("audio dict has none of 'array', 'bytes' or 'path'", reason="missing")
    elif isinstance(value, tuple) and len(value) == 2 and not isinstance(value[1], (np.ndarray, torch.Tensor)):
        value, source_rate = value
    if isinstance(value, (str, Path, bytes, bytearray, memoryview)):
        waveform, source_rate = _read_audio_file(value)
    elif isinstance(value, (np.ndarray, torch.Tensor, list)):
        waveform = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    else:
        raise InputError(f"unsupported audio input {_describe(value)}", reason="unsupported")
    waveform = _to_mono_float(waveform)
    if waveform.size == 0:
        raise InputError("audio has no samples", reason="empty_audio")
    if not np.isfinite(waveform).all():
        raise InputError("audio contains NaN or infinite samples", reason="unreadable_audio")
    source_rate = int(source_rate)
    if source_rate <= 0:
        raise InputError(f"audio sampling rate must be positive, got {source_rate}", reason="sample_rate")
    if source_rate != sampling_rate:
        if not resample:
            raise InputError(
                f"audio is at {source_rate} Hz but the backbone expects {sampling_rate} Hz (resampling is off)",
                reason="sample_rate",
            )
        waveform = resample_audio(waveform, source_rate, sampling_rate)
    return waveform


def _read_audio_file(value: str | Path | bytes | bytearray | memoryview) -> tuple[np.ndarray, int]:
    import soundfile

    if isinstance(value, (str, Path)):
        source, handle = f"audio file {str(value)!r}", value
    else:
        source, handle = f"audio bytes ({len(value)} bytes)", io.BytesIO(bytes(value))
    try:
        waveform, rate = soundfile.read(handle, dtype="float32", always_2d=True)  # (samples, channels)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as error:
        raise InputError(f"{source} cannot be read: {error}", reason="unreadable_audio") from error
    return waveform.T, rate  # (channels, samples)


def _to_mono_float(waveform: np.ndarray) -> np.ndarray:
    waveform = np.asarray(waveform)
    if np.issubdtype(waveform.dtype, np.integer):
        info = np.iinfo(waveform.dtype)
        waveform = waveform.astype(np.float32) / float(max(abs(info.min), info.max))
    elif not np.issubdtype(waveform.dtype, np.floating):
        raise InputError(f"audio samples must be numbers, got {waveform.dtype}", reason="unsupported")
    if waveform.ndim == 2:
        channel_axis = 0 if waveform.shape[0] <= waveform.shape[1] else 1
        waveform = waveform.mean(axis=channel_axis)
    elif waveform.ndim != 1:
        raise InputError(f"audio waveform must be 1-D or 2-D, got shape {waveform.shape}", reason="unsupported")
    return np.ascontiguousarray(waveform, dtype=np.float32)


def resample_audio(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (`scipy.signal.resample_poly`) of a mono waveform from one rate to another."""
    from scipy.signal import resample_poly

    divisor = math.gcd(int(source_rate), int(target_rate))
    up, down = target_rate // divisor, source_rate // divisor
    return resample_poly(waveform, up, down).astype(np.float32)


def load_video(value: Any, *, max_frames: int | None = None) -> list[Image.Image]:
    """Loads video frames as RGB images.

    Args:
        value: A list of frames (anything `load_image` accepts), or an array / tensor of shape `(T, H, W, C)`
            (uint8, or float in [0, 1]). Video files are not decoded here: pass frames sampled beforehand.
        max_frames (`int`, *optional*): Keep at most this many frames, spread evenly over the clip.

    Returns:
        `list[PIL.Image.Image]` with at least one frame.

    Raises:
        InputError: `None` (`"missing"`), no frames (`"empty_video"`), a bad frame (its own reason), or an
            unsupported type (`"unsupported"`).
    """
    if value is None:
        raise InputError("video is missing (None)", reason="missing")
    if isinstance(value, (np.ndarray, torch.Tensor)):
        if value.ndim != 4:
            raise InputError(f"video array must be (T, H, W, C), got shape {tuple(value.shape)}", reason="unsupported")
        frames_in = list(value)
    elif isinstance(value, (list, tuple)):
        frames_in = list(value)
    else:
        raise InputError(
            f"unsupported video input {_describe(value)}: pass a list of frames or a (T, H, W, C) array",
            reason="unsupported",
        )
    if not frames_in:
        raise InputError("video has no frames", reason="empty_video")
    if max_frames is not None and len(frames_in) > max_frames:
        keep = np.linspace(0, len(frames_in) - 1, max_frames).round().astype(int)
        frames_in = [frames_in[i] for i in keep]
    frames = []
    for index, frame in enumerate(frames_in):
        try:
            frames.append(load_image(frame))
        except InputError as error:
            raise InputError(f"video frame {index}: {error}", reason=error.reason) from error
    return frames
