"""The on-disk feature cache: a fingerprinted folder of Arrow shards with a manifest, checked before use.

The cache of one extraction is a folder `features-<fingerprint>` holding Arrow shards (one per process) and a
`manifest.json` written last. The fingerprint hashes the backbone's identity (id, revision, layer, pooling,
preprocessing, quantization, dtype), the column mapping, the error policy and the input dataset's fingerprint, so
an unchanged setting is a cache hit (the backbone is not even called) and a changed one extracts anew. A cache
whose manifest, shards, sizes, checksums, schema or row counts do not check out is rebuilt with a warning, and so
is one whose extraction was killed: shards are written into `features-<fingerprint>.partial`, renamed into place
only once the manifest is written, so a `.partial` folder left behind marks an interrupted extraction.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import datasets
import pyarrow as pa
from datasets import Dataset, Features, concatenate_datasets

from .backbones.base import Backbone, hash_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class FeatureCacheWarning(UserWarning):
    """A feature cache on disk was corrupt, incomplete or stale and is being rebuilt."""


@dataclass
class ExtractionReport:
    """What an extraction did.

    Attributes:
        cache_path (`str`): The cache folder.
        fingerprint (`str`): Its fingerprint.
        cache_hit (`bool`): Features came from the cache, without calling the backbone.
        num_input_rows (`int`): Rows in the input dataset.
        num_rows (`int`): Rows in the feature dataset (input rows minus skipped rows).
        skipped_rows (`int`): Rows dropped because of a bad input (`on_error="skip"`).
        errors (`dict[str, dict[str, int]]`): Bad inputs per modality and reason (see `InputError.reason`),
            whether they were skipped or marked missing.
        missing (`dict[str, int]`): Rows whose modality is marked absent (`None` input, or a bad one with
            `on_error="missing"`).
        dropped_modalities (`list[str]`): Requested modalities the backbone does not serve (left out with
            `on_error` other than `"raise"`).
        backbone_calls (`int`): Calls to `backbone.encode` made by this process.
    """

    cache_path: str = ""
    fingerprint: str = ""
    cache_hit: bool = False
    num_input_rows: int = 0
    num_rows: int = 0
    skipped_rows: int = 0
    errors: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    dropped_modalities: list[str] = field(default_factory=list)
    backbone_calls: int = 0

    def count_error(self, modality: str, reason: str) -> None:
        counts = self.errors.setdefault(modality, {})
        counts[reason] = counts.get(reason, 0) + 1

    def merge(self, other: ExtractionReport) -> None:
        """Adds another shard's counts to this report."""
        self.num_rows += other.num_rows
        self.skipped_rows += other.skipped_rows
        self.backbone_calls += other.backbone_calls
        for modality, counts in other.errors.items():
            for reason, count in counts.items():
                mine = self.errors.setdefault(modality, {})
                mine[reason] = mine.get(reason, 0) + count
        for modality, count in other.missing.items():
            self.missing[modality] = self.missing.get(modality, 0) + count


def default_cache_dir() -> Path:
    """`$MLLM_BALANCE_FEATURES_CACHE`, else `<HF datasets cache>/mllm_balance_features`."""
    configured = os.environ.get("MLLM_BALANCE_FEATURES_CACHE")
    return Path(configured) if configured else Path(datasets.config.HF_DATASETS_CACHE) / "mllm_balance_features"


def feature_fingerprint(
    backbone: Backbone,
    *,
    columns: Mapping[str, str],
    label_column: str | None,
    keep_columns: Sequence[str],
    on_error: str,
    input_fingerprint: str,
) -> str:
    """The cache fingerprint: a hash of everything that determines the extracted dataset."""
    return hash_json(
        {
            "format": FORMAT_VERSION,
            "backbone": backbone.identity(),
            "columns": dict(columns),
            "label_column": label_column,
            "keep_columns": list(keep_columns),
            "on_error": on_error,
            "input": input_fingerprint,
        }
    )


def load_feature_cache(path: str | Path, *, verify: Literal["size", "checksum"] = "size"):
    """Opens a finished feature cache folder (memory-mapped) after checking it.

    Raises:
        ValueError: The folder is not a complete, intact feature cache (the message says why).
    """
    path = Path(path)
    manifest = read_manifest(path)
    if manifest is None:
        raise ValueError(f"{path} has no readable {MANIFEST}")
    dataset, problem = open_cache(path, manifest.get("fingerprint", ""), verify)
    if dataset is None:
        raise ValueError(f"feature cache {path} is {problem}")
    return dataset


def crc32(path: Path) -> int:
    """CRC-32 of a file, read in 16 MiB chunks."""
    checksum = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            checksum = zlib.crc32(chunk, checksum)
    return checksum


def finalize(partial, path, fingerprint, num_shards, features, report, backbone, source_columns) -> None:
    """Merge the shard reports into `report`, write the manifest into `partial` and rename it to `path`."""
    shards = []
    for index in range(num_shards):
        shard = partial / f"shard-{index:05d}-of-{num_shards:05d}.arrow"
        with pa.memory_map(str(shard)) as source:
            num_rows = pa.ipc.open_stream(source).read_all().num_rows
        shards.append({"file": shard.name, "num_rows": num_rows, "size": shard.stat().st_size, "crc32": crc32(shard)})
    for index in range(num_shards):
        shard_report = ExtractionReport(**json.loads((partial / f"report-{index:05d}.json").read_text()))
        report.merge(shard_report)
    manifest = {
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "num_rows": sum(s["num_rows"] for s in shards),
        "shards": shards,
        "features": features.to_dict(),
        "feature_sizes": {m: backbone.feature_sizes[m] for m in source_columns},
        "columns": source_columns,
        "backbone": backbone.identity(),
        "report": {k: v for k, v in asdict(report).items() if k not in ("cache_hit", "backbone_calls")},
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    for index in range(num_shards):
        (partial / f"report-{index:05d}.json").unlink()
    shutil.rmtree(path, ignore_errors=True)
    os.replace(partial, path)


def read_manifest(path: Path) -> dict | None:
    """The manifest of a cache folder, `None` when it is missing or not JSON."""
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def open_cache(path: Path, fingerprint: str, verify: str):
    """`(dataset, None)` for an intact cache; `(None, problem)` otherwise (`problem` is `None` if there is none)."""
    if not path.exists():
        return None, None
    if not (path / MANIFEST).exists():
        return None, f"incomplete (no {MANIFEST})"
    manifest = read_manifest(path)
    if manifest is None:
        return None, f"corrupt ({MANIFEST} is not readable JSON)"
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("fingerprint") != fingerprint:
        return None, "stale (its manifest belongs to other settings or another format version)"
    try:
        features = Features.from_dict(manifest["features"])
        parts = []
        for shard in manifest["shards"]:
            file = path / shard["file"]
            if not file.exists():
                return None, f"incomplete ({shard['file']} is missing)"
            size = file.stat().st_size
            if size != shard["size"]:
                return None, f"corrupt ({shard['file']} has {size} bytes, the manifest says {shard['size']})"
            if verify == "checksum" and crc32(file) != shard["crc32"]:
                return None, f"corrupt ({shard['file']} fails its CRC-32 check)"
            part = Dataset.from_file(str(file))
            if part.num_rows != shard["num_rows"]:
                return (
                    None,
                    f"corrupt ({shard['file']} has {part.num_rows} rows, the manifest says {shard['num_rows']})",
                )
            parts.append(part)
        dataset = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    except (KeyError, TypeError, ValueError, OSError, pa.ArrowException) as error:
        return None, f"corrupt ({type(error).__name__}: {error})"
    if dataset.features != features or dataset.num_rows != manifest["num_rows"]:
        return None, "corrupt (schema or row count differs from the manifest)"
    return dataset, None


def load_report_counts(path: Path, report: ExtractionReport) -> None:
    """Copy the extraction counts saved in the manifest of `path` into `report`."""
    saved = (read_manifest(path) or {}).get("report", {})
    for key in ("num_rows", "skipped_rows", "errors", "missing", "dropped_modalities"):
        if key in saved:
            setattr(report, key, saved[key])


__all__ = [
    "ExtractionReport",
    "FeatureCacheWarning",
    "default_cache_dir",
    "feature_fingerprint",
    "load_feature_cache",
]
