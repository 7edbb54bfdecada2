"""``kaomoji-speech``: caption, picture and spoken name of a kaomoji, three sentiments (text + image + audio).

The three-modality benchmark, so that Shapley values over n = 3 modalities and the six hybrid orders run on
real features. It is ``kaomoji-sentiment`` (same sentiment map, captions and rendering; see
:mod:`.kaomoji_sentiment`) with a third modality: ``audio`` is the kaomoji's English name (e.g. "Happy face",
"Sleepy sparkling", "Waving") spoken by eSpeak NG with a random English voice, pitch and speed, 16 kHz,
placed at a random offset of a ``window_seconds`` window, with white noise at ``snr_db`` measured on the
speech (see :mod:`.speech`). The three modalities are noisy views of the label with independent noise: the
caption's topic-only replacement, the acoustic noise, and the rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from datasets import DatasetDict

from . import speech
from .benchmark import read_build
from .cache import benchmark_dir, build_once
from .kaomoji_sentiment import build_kaomoji, make_config

NAME = "kaomoji-speech"
MODALITIES = ("text", "image", "audio")


def load_kaomoji_speech(
    seed: int = 0,
    *,
    per_class: Sequence[int] = (600, 150, 150),
    topic_share: float = 0.25,
    image_size: int = 224,
    snr_db: float = -10.5,
    window_seconds: float = 3.0,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
    num_workers: int | None = None,
) -> DatasetDict:
    """Build (once, cached) and load ``kaomoji-speech``.

    Args:
        seed: Seed of every random choice.
        per_class: Train, validation and test samples per class.
        topic_share: Probability that a caption is replaced by a topic-only name.
        image_size: Side of the rendered image in pixels.
        snr_db: Signal-to-noise ratio of the speech in dB.
        window_seconds: Length of every audio file.
        cache_dir: Cache root (default: ``$MLLM_BALANCE_CACHE`` or ``~/.cache/mllm_balance``).
        rebuild: Build again even if a finished build exists.
        num_workers: Speech synthesis processes.

    Returns:
        A ``DatasetDict`` (train / validation / test) with ``text`` (str), ``image`` (PNG path), ``audio``
        (16 kHz WAV path) and ``labels``.
    """
    speech.check_available()
    config = make_config(
        NAME,
        seed,
        per_class,
        topic_share,
        image_size,
        snr_db=float(snr_db),
        window_seconds=float(window_seconds),
        sample_rate=speech.SAMPLE_RATE,
        speech_versions=speech.engine_versions(),
    )
    target = benchmark_dir(NAME, config, cache_dir)
    build_once(target, lambda tmp: build_kaomoji(tmp, config, MODALITIES, num_workers), rebuild=rebuild)
    return read_build(target, description=__doc__.split("\n\n")[0])
