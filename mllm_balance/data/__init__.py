"""Datasets: loaders of the paper's four datasets from their released folders, and bundled offline benchmarks.

Every loader and benchmark returns a ``datasets.DatasetDict`` (``train`` / ``validation`` / ``test``) of raw
samples: an ``id`` column, one column per modality (``text`` str, ``image`` path, ``audio`` path, ``video``
list of frame paths) and a ``labels`` ``ClassLabel`` column whose names are the label map
(:func:`get_id2label`).

Real datasets (your copy on disk; each module documents the layout it reads)::

    load_dataset_from_dir("crema-d", "/data/CREMA-D", on_error="skip")

Bundled benchmarks (built offline on first use from material shipped in packages, cached under
``$MLLM_BALANCE_CACHE`` or ``~/.cache/mllm_balance``)::

    load_benchmark("kaomoji-sentiment", seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from .cache import CACHE_ENV, cache_root
from .crema_d import load_crema_d
from .fashion_speech import load_fashion_speech
from .iemocap import load_iemocap
from .kaomoji_sentiment import load_kaomoji_sentiment
from .kaomoji_speech import load_kaomoji_speech
from .kinetics_sounds import load_kinetics_sounds
from .mvsa_single import load_mvsa_single
from .records import get_id2label, get_modalities
from .validation import DatasetValidationError, ValidationReport

CARDS_DIR = Path(__file__).with_name("cards")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset the package knows.

    Args:
        name: Registry name.
        modalities: Modality columns in the dataset's declared order.
        num_labels: Number of classes.
        loader: Function returning the ``DatasetDict``.
        bundled: True for a benchmark built offline from packages, False for a folder on disk.
        stands_in_for: For a bundled benchmark, the real dataset whose recipe uses it by default.
    """

    name: str
    modalities: tuple[str, ...]
    num_labels: int | None
    loader: Callable[..., DatasetDict]
    bundled: bool
    stands_in_for: str | None = None

    @property
    def card(self) -> Path | None:
        """Path of the data card, if the dataset has one."""
        path = CARDS_DIR / f"{self.name}.md"
        return path if path.is_file() else None


BENCHMARKS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("kaomoji-sentiment", ("text", "image"), 3, load_kaomoji_sentiment, True, "mvsa-single"),
        DatasetSpec("fashion-speech", ("audio", "image"), 10, load_fashion_speech, True, "crema-d"),
        DatasetSpec("kaomoji-speech", ("text", "image", "audio"), 3, load_kaomoji_speech, True, "iemocap"),
    )
}

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mvsa-single", ("text", "image"), 3, load_mvsa_single, False),
        DatasetSpec("crema-d", ("audio", "video"), 6, load_crema_d, False),
        DatasetSpec("iemocap", ("audio", "text", "video"), 4, load_iemocap, False),
        DatasetSpec("kinetics-sounds", ("audio", "video"), 31, load_kinetics_sounds, False),
    )
}


def list_benchmarks() -> list[str]:
    """Names of the bundled benchmarks."""
    return sorted(BENCHMARKS)


def _lookup(registry: dict[str, DatasetSpec], name: str, what: str) -> DatasetSpec:
    key = name.strip().lower().replace("_", "-")
    if key not in registry:
        raise ValueError(f"Unknown {what} {name!r}; known: {sorted(registry)}.")
    return registry[key]


def load_benchmark(name: str, seed: int = 0, **kwargs: Any) -> DatasetDict:
    """Build (once, cached) and load a bundled benchmark.

    Args:
        name: One of :func:`list_benchmarks` (``_`` and ``-`` are interchangeable).
        seed: Seed of every random choice of the build.
        **kwargs: Options of the benchmark's loader (e.g. ``per_class``, ``cache_dir``, ``rebuild``).

    Returns:
        ``DatasetDict`` with ``train``, ``validation`` and ``test`` splits of raw samples.
    """
    return _lookup(BENCHMARKS, name, "benchmark").loader(seed=seed, **kwargs)


def load_dataset_from_dir(name: str, data_dir: str | Path, **kwargs: Any) -> DatasetDict:
    """Load one of the paper's datasets from its folder on disk.

    Args:
        name: ``mvsa-single``, ``crema-d``, ``iemocap`` or ``kinetics-sounds``.
        data_dir: The dataset's folder, in the layout its module documents.
        **kwargs: Options of the loader (e.g. ``split_dir``, ``frames_dir``, ``on_error``).

    Returns:
        ``DatasetDict`` with ``train``, ``validation`` and ``test`` splits of raw samples.
    """
    return _lookup(DATASETS, name, "dataset").loader(data_dir, **kwargs)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of a bundled benchmark or a real dataset."""
    return _lookup({**BENCHMARKS, **DATASETS}, name, "dataset or benchmark")


__all__ = [
    "BENCHMARKS",
    "CACHE_ENV",
    "DATASETS",
    "DatasetSpec",
    "DatasetValidationError",
    "ValidationReport",
    "cache_root",
    "get_id2label",
    "get_modalities",
    "get_spec",
    "list_benchmarks",
    "load_benchmark",
    "load_crema_d",
    "load_dataset_from_dir",
    "load_fashion_speech",
    "load_iemocap",
    "load_kaomoji_sentiment",
    "load_kaomoji_speech",
    "load_kinetics_sounds",
    "load_mvsa_single",
]
