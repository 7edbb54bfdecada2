"""Turning lists of raw samples into a ``datasets.DatasetDict``, and the label maps that go with it.

Raw columns (pinned for every loader and bundled benchmark):

- ``id``: str, unique within the dataset.
- ``text``: str.
- ``image``: str, path to an image file.
- ``audio``: str, path to an audio file (the bundled benchmarks write 16 kHz mono WAV).
- ``video``: list of str, paths to the frames of a clip, in time order.
- ``labels``: ``datasets.ClassLabel``; ``dataset.features["labels"].names`` is the label map.

Media stay as paths (not ``datasets.Image`` / ``datasets.Audio``) so that nothing is decoded until an encoder
asks for it and no audio-decoding backend is required to load a dataset.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Features, List, Value

MODALITY_FEATURES = {
    "text": Value("string"),
    "image": Value("string"),
    "audio": Value("string"),
    "video": List(Value("string")),
}


def stable_seed(*parts: object) -> int:
    """A 32-bit seed from ``parts`` that is the same in every process (``zlib.crc32``, not ``hash``)."""
    return zlib.crc32("\x1f".join(str(p) for p in parts).encode("utf-8"))


def raw_features(modalities: Sequence[str], label_names: Sequence[str]) -> Features:
    """The :class:`datasets.Features` of a raw dataset with these modalities and labels."""
    unknown = [m for m in modalities if m not in MODALITY_FEATURES]
    if unknown:
        raise ValueError(f"Unknown modalities {unknown}; known: {sorted(MODALITY_FEATURES)}.")
    return Features(
        {
            "id": Value("string"),
            **{m: MODALITY_FEATURES[m] for m in modalities},
            "labels": ClassLabel(names=list(label_names)),
        }
    )


def to_dataset_dict(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    modalities: Sequence[str],
    label_names: Sequence[str],
    dataset_name: str,
    description: str = "",
) -> DatasetDict:
    """Build a :class:`datasets.DatasetDict` from samples whose ``labels`` field is a label name.

    Args:
        splits: Split name -> samples (dicts with ``id``, one field per modality and ``labels``).
        modalities: Modality columns, in the dataset's declared order.
        label_names: The label map, index -> name.
        dataset_name: Stored in each split's ``info.dataset_name``.
        description: Stored in each split's ``info.description``.

    Returns:
        One :class:`datasets.Dataset` per split, with the columns described in this module's docstring.
    """
    features = raw_features(modalities, label_names)
    label2id = {name: i for i, name in enumerate(label_names)}
    out = {}
    for split, samples in splits.items():
        columns: dict[str, list[Any]] = {name: [] for name in features}
        for sample in samples:
            label = sample["labels"]
            if label not in label2id:
                raise ValueError(f"{dataset_name}: label {label!r} of sample {sample['id']} is not in {label_names}.")
            columns["id"].append(str(sample["id"]))
            for m in modalities:
                columns[m].append(sample[m])
            columns["labels"].append(label2id[label])
        info = DatasetInfo(description=description, dataset_name=dataset_name, features=features)
        out[split] = Dataset.from_dict(columns, features=features, info=info, split=split)
    return DatasetDict(out)


def get_id2label(dataset: Dataset | DatasetDict) -> dict[int, str]:
    """The label map ``{index: name}`` of a dataset built by this package."""
    if isinstance(dataset, DatasetDict):
        dataset = next(iter(dataset.values()))
    feature = dataset.features.get("labels")
    if not isinstance(feature, ClassLabel):
        raise ValueError("The dataset has no ClassLabel column named 'labels'.")
    return dict(enumerate(feature.names))


def get_modalities(dataset: Dataset | DatasetDict) -> list[str]:
    """The modality columns of a dataset, in column order."""
    if isinstance(dataset, DatasetDict):
        dataset = next(iter(dataset.values()))
    return [c for c in dataset.column_names if c in MODALITY_FEATURES]


def stratified_holdout(
    samples: Sequence[Mapping[str, Any]], fraction: float, seed: int, label_key: str = "labels"
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Split off about ``fraction`` of every class, reproducibly.

    Args:
        samples: Samples in a fixed order.
        fraction: Share of each class to hold out, in [0, 1).
        seed: Seed of the shuffle.
        label_key: Field holding the label.

    Returns:
        ``(kept, held_out)``, both in the original order.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}.")
    by_label: dict[Any, list[int]] = {}
    for i, sample in enumerate(samples):
        by_label.setdefault(sample[label_key], []).append(i)
    held: set[int] = set()
    for label in sorted(by_label, key=str):
        idx = by_label[label]
        rng = np.random.default_rng(stable_seed(seed, "holdout", label))
        n = int(round(fraction * len(idx)))
        held.update(int(i) for i in rng.permutation(idx)[:n])
    kept = [s for i, s in enumerate(samples) if i not in held]
    out = [s for i, s in enumerate(samples) if i in held]
    return kept, out
