"""``kaomoji-sentiment``: a kaomoji's caption and its rendered picture, three sentiments (text + image).

Built from the ``kaomoji-dataset`` package (CC-BY-4.0; categories, sentiment map and captions in
:mod:`.kaomoji_source`). Per class, ``per_class = (train, validation, test)`` distinct kaomoji are drawn
(seeded). ``text`` is the caption (a name in a random language, ``topic_share`` of them replaced by a
label-free topic name); ``image`` is the kaomoji drawn black on a white ``image_size`` square with the
package-shipped font chain of :mod:`.fonts`. Every random choice is seeded from ``(seed, sample id)`` with
``zlib.crc32``, so a build is reproducible byte for byte.

:func:`build_kaomoji` also serves ``kaomoji-speech`` (:mod:`.kaomoji_speech`), which adds the spoken English
name as audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from datasets import DatasetDict

from . import kaomoji_source as source
from . import speech
from .benchmark import read_build, write_manifest
from .cache import benchmark_dir, build_once
from .fonts import default_chain, font_versions
from .records import stable_seed

NAME = "kaomoji-sentiment"
MODALITIES = ("text", "image")
LABEL_NAMES = source.LABEL_NAMES
BUILD_VERSION = 1


def make_config(
    name: str, seed: int, per_class: Sequence[int], topic_share: float, image_size: int, **extra: Any
) -> dict[str, Any]:
    """Everything that determines the bytes of a kaomoji build (its cache key)."""
    if len(per_class) != 3 or min(per_class) < 1:
        raise ValueError(f"per_class must be three positive counts (train, validation, test), got {per_class}.")
    if not 0.0 <= topic_share <= 1.0:
        raise ValueError(f"topic_share must be in [0, 1], got {topic_share}.")
    return {
        "name": name,
        "build_version": BUILD_VERSION,
        "seed": int(seed),
        "per_class": [int(n) for n in per_class],
        "topic_share": float(topic_share),
        "image_size": int(image_size),
        **extra,
        "versions": {
            "kaomoji-dataset": source.package_version(),
            "pillow": version("pillow"),
            "fonttools": version("fonttools"),
            **font_versions(),
        },
    }


def build_kaomoji(
    folder: Path, config: dict[str, Any], modalities: Sequence[str], num_workers: int | None = None
) -> None:
    """Write the images (and audio, if ``"audio"`` is a modality) and the manifest of one build."""
    name, seed = config["name"], config["seed"]
    rows = source.load_rows()
    chain = default_chain()
    topics = source.topic_names(rows)
    by_label, dropped = source.candidates(rows, chain)
    picks = source.select(by_label, config["per_class"], seed, name)
    (folder / "image").mkdir(parents=True)
    if "audio" in modalities:
        (folder / "audio").mkdir()
    label2id = {label: i for i, label in enumerate(LABEL_NAMES)}
    splits: dict[str, list[dict[str, Any]]] = {}
    items: list[speech.SpeechItem] = []
    for split, picked in picks.items():
        out = []
        for row in picked:
            sample_id = row["id"]
            chain.render(row["text"], config["image_size"]).save(folder / "image" / f"{sample_id}.png")
            sample = {
                "id": sample_id,
                "labels": label2id[source.CATEGORY_TO_LABEL[row["category"]]],
                "category": row["category"],
                "kaomoji": row["text"],
                "image": f"image/{sample_id}.png",
                **source.caption(row, topics, config["topic_share"], seed, name),
            }
            if "audio" in modalities:
                rng = np.random.default_rng(stable_seed(seed, name, "voice", sample_id))
                voice = speech.random_voice(rng)
                items.append(
                    speech.SpeechItem(
                        text=row["names"]["en"],
                        path=str(folder / "audio" / f"{sample_id}.wav"),
                        offset=float(rng.random()),
                        noise_seed=stable_seed(seed, name, "noise", sample_id),
                        snr_db=config["snr_db"],
                        **voice,
                    )
                )
                sample.update(audio=f"audio/{sample_id}.wav", spoken=row["names"]["en"], **voice)
            out.append(sample)
        splits[split] = out
    if items:
        placed = speech.synthesize(items, config["window_seconds"], num_workers=num_workers)
        flat = [s for split in ("train", "validation", "test") for s in splits[split]]
        for sample, info in zip(flat, placed):
            sample.update(info)
    config = dict(config, dropped=dropped)
    write_manifest(folder, name, config, modalities, LABEL_NAMES, splits)


def load_kaomoji_sentiment(
    seed: int = 0,
    *,
    per_class: Sequence[int] = (1000, 200, 200),
    topic_share: float = 0.25,
    image_size: int = 224,
    cache_dir: str | Path | None = None,
    rebuild: bool = False,
) -> DatasetDict:
    """Build (once, cached) and load ``kaomoji-sentiment``.

    Args:
        seed: Seed of every random choice.
        per_class: Train, validation and test samples per class.
        topic_share: Probability that a caption is replaced by a topic-only name.
        image_size: Side of the rendered image in pixels.
        cache_dir: Cache root (default: ``$MLLM_BALANCE_CACHE`` or ``~/.cache/mllm_balance``).
        rebuild: Build again even if a finished build exists.

    Returns:
        A ``DatasetDict`` (train / validation / test) with ``text`` (str), ``image`` (PNG path) and ``labels``.
    """
    config = make_config(NAME, seed, per_class, topic_share, image_size)
    target = benchmark_dir(NAME, config, cache_dir)
    build_once(target, lambda tmp: build_kaomoji(tmp, config, MODALITIES), rebuild=rebuild)
    return read_build(target, description=__doc__.split("\n\n")[0])
