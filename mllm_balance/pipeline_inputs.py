"""Parsing one raw sample of the pipeline: `{modality: text | path | PIL image | array | (array, rate)}` checked
and turned into the backbone's inputs, with errors that name the sample and the modality."""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

#: Accepted audio sampling rates, in Hz (a bound keeps resampling filters finite).
MAX_SAMPLING_RATE = 1_000_000
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True)
class Sample:
    """One raw sample and its position in the caller's input (`None` for a single dict)."""

    index: int | None
    value: Any


def _where(index: int | None) -> str:
    return "sample" if index is None else f"sample {index}"


def type_name(value: Any) -> str:
    return type(value).__name__


def _check_path(modality: str, value: Any) -> str | None:
    path = os.fspath(value)
    if isinstance(path, bytes):
        return f"{modality} path must be a str, got bytes"
    if _URL.match(path):
        return f"{modality} {path!r} is a URL; URLs are not downloaded, pass a local file"
    if "\x00" in path or not os.path.isfile(path):
        return f"{modality} file {path!r} does not exist (or is not a file)"
    return None


def _check_sampling_rate(rate: Any) -> str | None:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        return f"audio sampling rate must be a positive integer (Hz), got {type_name(rate)}"
    if not (isinstance(rate, numbers.Integral) or float(rate).is_integer()) or not 0 < rate <= MAX_SAMPLING_RATE:
        return f"audio sampling rate must be an integer in 1..{MAX_SAMPLING_RATE} Hz, got {rate!r}"
    return None


def _check_type(modality: str, value: Any) -> tuple[str | None, Any]:
    """A type problem of one input (or `None`) and the value to load (audio pairs normalised to `(array, int)`)."""
    arrays = (np.ndarray, torch.Tensor)
    if modality == "text":
        return (None if isinstance(value, str) else f"text must be a str, got {type_name(value)}"), value
    if modality in ("image", "audio") and isinstance(value, (str, os.PathLike)):
        return _check_path(modality, value), value
    if modality == "image":
        if isinstance(value, (Image.Image, bytes, bytearray, Mapping, *arrays)):
            return None, value
        return f"image must be a local path, PIL image or array, got {type_name(value)}", value
    if modality == "audio":
        if isinstance(value, tuple):
            if len(value) != 2:
                return f"audio tuple must be (waveform, sampling_rate), got {len(value)} elements", value
            waveform, rate = value
            if not isinstance(waveform, (list, *arrays)):
                return f"audio waveform must be an array, got {type_name(waveform)}", value
            problem = _check_sampling_rate(rate)
            return problem, value if problem else (waveform, int(rate))
        if isinstance(value, Mapping) and value.get("array") is not None:
            problem = _check_sampling_rate(value.get("sampling_rate"))
            return problem, value if problem else {**value, "sampling_rate": int(value["sampling_rate"])}
        if isinstance(value, (bytes, bytearray, list, Mapping, *arrays)):
            return None, value
        return f"audio must be a local path or (waveform, sampling_rate), got {type_name(value)}", value
    if modality == "video" and not isinstance(value, (list, tuple, *arrays)):
        return f"video must be a list of frames or a (T, H, W, C) array, got {type_name(value)}", value
    return None, value


def parse_sample(
    sample: Any,
    modalities: Sequence[str],
    preprocess: Callable[[str, Any], Any] | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """Validate one raw sample and load its inputs.

    Args:
        sample (`dict`): `{modality: input}` with a non-empty subset of `modalities`; a `None` value counts as a
            missing modality. Text is a `str`; an image a local path, PIL image, array or encoded bytes; audio a local
            path, `(waveform, sampling_rate)`, a waveform at the backbone's rate, or a `datasets` audio dict; video a
            list of frames or a `(T, H, W, C)` array.
        modalities (`Sequence[str]`): the modalities the model was trained on.
        preprocess (`Callable`, *optional*): `preprocess(modality, value) -> item`, the backbone's loader
            (`Backbone.preprocess_one`); without it the inputs are only type-checked.
        index (`int`, *optional*): position of the sample in the caller's list, for error messages.

    Returns:
        `dict[str, Any]`: `{modality: loaded item}` in the order of `modalities`.

    Raises:
        `ValueError`: naming the sample and the problem: not a dict, no modality, an unknown modality key, a wrong
            type, or an input that cannot be read (missing or corrupt file, bad array, bad sampling rate).
    """
    where = _where(index)
    if not isinstance(sample, Mapping):
        raise ValueError(
            f"{where}: expected a dict {{modality: input}} with keys from {list(modalities)}, got {type_name(sample)}"
        )
    unknown = [k for k in sample if not isinstance(k, str) or k not in modalities]
    if unknown:
        raise ValueError(
            f"{where}: unknown modality key(s) {', '.join(_short_repr(k) for k in unknown)}; this model was trained "
            f"on {list(modalities)}"
        )
    given = [m for m in modalities if sample.get(m) is not None]
    if not given:
        raise ValueError(f"{where}: no modality given; pass a non-empty subset of {list(modalities)}")
    parsed: dict[str, Any] = {}
    for m in given:
        problem, value = _check_type(m, sample[m])
        if problem is not None:
            raise ValueError(f"{where}, {m}: {problem}")
        if preprocess is None:
            parsed[m] = value
            continue
        try:
            parsed[m] = preprocess(m, value)
        except (ValueError, TypeError, OSError, OverflowError) as error:
            raise ValueError(f"{where}, {m}: {error}") from error
    return parsed


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["MAX_SAMPLING_RATE", "Sample", "parse_sample", "type_name"]
