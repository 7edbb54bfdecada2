"""What the bundled benchmarks share: the manifest format and reading a finished build back.

A build folder holds the media files and ``manifest.json`` (canonical JSON, see :func:`cache.canonical_json`):

```
{"name": ..., "config": {...}, "modalities": [...], "id2label": {"0": ...},
 "splits": {"train": [{"id", "labels" (index), "<modality>": text or relative path, "sha256": {...}, ...}]}}
```

Media paths are relative to the build folder; every media file's SHA-256 is in the manifest, so equal
manifests mean equal builds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from .cache import MANIFEST, canonical_json, file_sha256
from .records import to_dataset_dict

FILE_MODALITIES = ("image", "audio")
SPLITS = ("train", "validation", "test")


def write_manifest(
    folder: Path,
    name: str,
    config: Mapping[str, Any],
    modalities: Sequence[str],
    label_names: Sequence[str],
    splits: Mapping[str, Sequence[dict[str, Any]]],
) -> Path:
    """Hash the media of every sample and write ``manifest.json`` into ``folder``.

    Args:
        folder: The build folder; media paths in ``splits`` are relative to it.
        name: Benchmark name.
        config: The configuration the build was made from.
        modalities: Modality columns, in the declared order.
        label_names: Index -> label name.
        splits: Split -> samples; each sample has ``id``, ``labels`` (index), one field per modality and any
            extra provenance fields.

    Returns:
        The manifest path.
    """
    out_splits = {}
    for split, samples in splits.items():
        rows = []
        for sample in samples:
            row = dict(sample)
            row["sha256"] = {m: file_sha256(folder / sample[m]) for m in modalities if m in FILE_MODALITIES}
            rows.append(row)
        out_splits[split] = rows
    manifest = {
        "name": name,
        "config": dict(config),
        "modalities": list(modalities),
        "id2label": {str(i): label for i, label in enumerate(label_names)},
        "splits": out_splits,
    }
    path = folder / MANIFEST
    path.write_bytes(canonical_json(manifest))
    return path


def read_build(folder: Path, description: str = "") -> DatasetDict:
    """Turn a finished build folder into a ``DatasetDict`` of raw samples with absolute media paths."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    modalities = manifest["modalities"]
    label_names = [manifest["id2label"][str(i)] for i in range(len(manifest["id2label"]))]
    splits = {}
    for split in SPLITS:
        rows = []
        for row in manifest["splits"].get(split, []):
            sample = {"id": row["id"], "labels": label_names[row["labels"]]}
            for m in modalities:
                sample[m] = str(folder / row[m]) if m in FILE_MODALITIES else row[m]
            rows.append(sample)
        splits[split] = rows
    return to_dataset_dict(splits, modalities, label_names, manifest["name"], description=description)
