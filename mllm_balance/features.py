"""Feature extraction into a fingerprinted, memory-mapped `datasets` cache on disk.

A feature dataset has one column per modality named by the modality, of type `List(Value("float32"), length=D_m)`;
a bool column `"<modality>_present"` (False: the modality is missing for that sample and its vector is zeros);
and an int column `"labels"` when the input has labels.

The cache format, its fingerprint and its checks are [`mllm_balance.feature_cache`].
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from accelerate import PartialState
from datasets import ClassLabel, Features, List, Value
from tqdm.auto import tqdm

from .backbones.base import Backbone
from .backbones.inputs import InputError
from .backbones.registry import load_backbone
from .feature_cache import (
    ExtractionReport,
    FeatureCacheWarning,
    default_cache_dir,
    feature_fingerprint,
    finalize,
    load_report_counts,
    open_cache,
)

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip", "missing"]
_MEDIA_TYPES = ("Image", "Audio", "Video")


def feature_columns(feature_sizes: Mapping[str, int]):
    """`datasets.Features` of the per-modality columns: `{m: List(float32, length=D_m), m + "_present": bool}`."""
    columns = {}
    for modality, size in feature_sizes.items():
        columns[modality] = List(Value("float32"), length=int(size))
        columns[f"{modality}_present"] = Value("bool")
    return Features(columns)


def extract_features(
    dataset: Any,
    backbone: Backbone | str | Mapping[str, Any],
    *,
    modalities: Sequence[str] | None = None,
    columns: Mapping[str, str] | None = None,
    label_column: str | None = "auto",
    keep_columns: Sequence[str] = (),
    cache_dir: str | Path | None = None,
    batch_size: int = 32,
    on_error: OnError = "raise",
    input_fingerprint: str | None = None,
    verify: Literal["size", "checksum"] = "size",
    progress: bool = True,
    return_report: bool = False,
):
    """Extracts per-modality features once, into a memory-mapped `datasets` cache on disk.

    Under `accelerate launch` every process encodes a contiguous shard of the rows (with its own backbone, e.g.
    loaded with `device_map={"": PartialState().local_process_index}`), the main process merges the shards into one
    cache, and every process returns the same dataset. The cache folder must be on a filesystem all processes see.

    Args:
        dataset (`datasets.Dataset`): Raw samples, one column per modality (text strings, images, audio, video
            frames; see `mllm_balance.backbones.inputs` for the accepted forms). `Image`/`Audio`/`Video` columns
            are read undecoded and decoded by the backbone's loaders, so a broken file is a counted error rather
            than a crash. A `None` value means the modality is missing for that sample.
        backbone (`Backbone`, `str` or `dict`): The backbone, or a spec for `load_backbone`.
        modalities (`Sequence[str]`, *optional*): Modalities to extract; default: those the backbone serves that
            have a column.
        columns (`Mapping[str, str]`, *optional*): Source column of a modality when it is not named like it.
        label_column (`str`, *optional*, defaults to `"auto"`): Column copied to `"labels"` (`"auto"`: `"labels"`
            or `"label"` when present; `None`: no labels).
        keep_columns (`Sequence[str]`, *optional*): Other columns copied as they are (e.g. an id).
        cache_dir (`str` or `Path`, *optional*): Where caches live (default `default_cache_dir()`).
        batch_size (`int`, *optional*, defaults to 32): Samples per backbone call.
        on_error (`str`, *optional*, defaults to `"raise"`): A bad input (empty text, unreadable image, corrupt
            audio, audio at another rate when the backbone refuses to resample, ...) either raises an `InputError`
            (`"raise"`), drops its row (`"skip"`), or marks that modality absent for the row (`"missing"`); the
            last two are counted in the report. A requested modality the backbone does not serve raises a
            `ValueError` with `"raise"`, else it is left out with a warning.
        input_fingerprint (`str`, *optional*): Identifies the input data; defaults to the dataset's own
            fingerprint.
        verify (`str`, *optional*, defaults to `"size"`): How a cache is checked before use: shard sizes, schema
            and row counts (`"size"`), or also a CRC-32 of every shard (`"checksum"`, reads the whole cache).
        progress (`bool`, *optional*, defaults to `True`): Show a tqdm progress bar (main process only).
        return_report (`bool`, *optional*, defaults to `False`): Also return an `ExtractionReport`.

    Returns:
        `datasets.Dataset` (memory-mapped), or `(Dataset, ExtractionReport)` with `return_report=True`.
    """
    if not hasattr(dataset, "_fingerprint") or not hasattr(dataset, "column_names"):
        raise ValueError(f"dataset must be a datasets.Dataset, got {type(dataset).__name__}")
    if on_error not in ("raise", "skip", "missing"):
        raise ValueError(f"on_error must be 'raise', 'skip' or 'missing', got {on_error!r}")
    if verify not in ("size", "checksum"):
        raise ValueError(f"verify must be 'size' or 'checksum', got {verify!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    backbone = load_backbone(backbone)
    report = ExtractionReport(num_input_rows=len(dataset))
    source_columns = _resolve_columns(dataset, backbone, modalities, columns, on_error, report)
    label_column = _resolve_label_column(dataset, label_column)
    for column in keep_columns:
        if column not in dataset.column_names:
            raise ValueError(f"keep_columns names {column!r}, which the dataset does not have")
    fingerprint = feature_fingerprint(
        backbone,
        columns=source_columns,
        label_column=label_column,
        keep_columns=keep_columns,
        on_error=on_error,
        input_fingerprint=input_fingerprint or dataset._fingerprint,
    )
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"features-{fingerprint}"
    report.cache_path, report.fingerprint = str(path), fingerprint

    state = PartialState()
    partial = path.with_name(path.name + ".partial")
    cached, problem = open_cache(path, fingerprint, verify)
    if cached is None and problem is None and partial.exists():
        problem = f"incomplete (an interrupted extraction left {partial.name} behind)"
    state.wait_for_everyone()
    if cached is not None:
        report.cache_hit = True
        load_report_counts(path, report)
        return (cached, report) if return_report else cached
    if state.is_main_process:
        if problem is not None:
            message = f"feature cache {path} is {problem}; rebuilding it"
            warnings.warn(message, FeatureCacheWarning, stacklevel=2)
            logger.warning(message)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    state.wait_for_everyone()

    schema_features = _output_features(dataset, backbone, source_columns, label_column, keep_columns)
    needed = [*source_columns.values(), *keep_columns, *([label_column] if label_column else [])]
    rows = _undecoded(dataset, list(dict.fromkeys(needed)))
    if state.num_processes > 1:
        rows = rows.shard(num_shards=state.num_processes, index=state.process_index, contiguous=True)
    shard_name = f"shard-{state.process_index:05d}-of-{state.num_processes:05d}.arrow"
    shard_report = ExtractionReport()
    _write_shard(
        partial / shard_name,
        rows,
        backbone,
        source_columns,
        label_column,
        keep_columns,
        schema_features,
        batch_size=batch_size,
        on_error=on_error,
        report=shard_report,
        progress=progress and state.is_local_main_process,
    )
    (partial / f"report-{state.process_index:05d}.json").write_text(json.dumps(asdict(shard_report)))
    state.wait_for_everyone()
    if state.is_main_process:
        finalize(partial, path, fingerprint, state.num_processes, schema_features, report, backbone, source_columns)
    state.wait_for_everyone()
    result, problem = open_cache(path, fingerprint, verify)
    if result is None:
        raise RuntimeError(f"the feature cache just written to {path} does not check out: {problem}")
    load_report_counts(path, report)
    report.backbone_calls = shard_report.backbone_calls
    return (result, report) if return_report else result


# --------------------------------------------------------------------------------------------------- helpers
def _resolve_columns(
    dataset: Any,
    backbone: Backbone,
    modalities: Sequence[str] | None,
    columns: Mapping[str, str] | None,
    on_error: str,
    report: ExtractionReport,
) -> dict[str, str]:
    columns = dict(columns or {})
    if modalities is None:
        modalities = [m for m in backbone.modalities if columns.get(m, m) in dataset.column_names]
        if not modalities:
            raise ValueError(
                f"the dataset has no column for any modality the backbone serves ({list(backbone.modalities)}); "
                f"its columns are {dataset.column_names}: pass columns={{modality: column}}"
            )
    resolved = {}
    for modality in modalities:
        if modality not in backbone.modalities:
            message = f"the backbone serves {list(backbone.modalities)}, not {modality!r}"
            if on_error == "raise":
                raise ValueError(message)
            warnings.warn(f"{message}; leaving {modality!r} out", stacklevel=3)
            report.dropped_modalities.append(modality)
            continue
        column = columns.get(modality, modality)
        if column not in dataset.column_names:
            raise ValueError(f"no column {column!r} for modality {modality!r}; columns: {dataset.column_names}")
        resolved[modality] = column
    if not resolved:
        raise ValueError("no modality left to extract")
    return resolved


def _resolve_label_column(dataset: Any, label_column: str | None) -> str | None:
    if label_column == "auto":
        return next((c for c in ("labels", "label") if c in dataset.column_names), None)
    if label_column is not None and label_column not in dataset.column_names:
        raise ValueError(f"no label column {label_column!r}; columns: {dataset.column_names}")
    return label_column


def _output_features(dataset, backbone, source_columns, label_column, keep_columns):
    features = dict(feature_columns({m: backbone.feature_sizes[m] for m in source_columns}))
    if label_column is not None:
        source = dataset.features[label_column]
        if isinstance(source, ClassLabel):
            features["labels"] = source
        elif isinstance(source, Value) and (source.dtype.startswith("int") or source.dtype.startswith("uint")):
            features["labels"] = Value("int64")
        else:
            raise ValueError(f"labels must be integers or a ClassLabel, column {label_column!r} is {source}")
    for column in keep_columns:
        features[column] = dataset.features[column]
    return Features(features)


def _undecoded(dataset: Any, columns: list[str]) -> Any:
    """The dataset restricted to `columns`, with media columns read as raw bytes / paths."""
    dataset = dataset.select_columns(columns)
    for column in columns:
        feature = dataset.features[column]
        if type(feature).__name__ in _MEDIA_TYPES and getattr(feature, "decode", False):
            dataset = dataset.cast_column(column, type(feature)(decode=False))
    return dataset


def _write_shard(
    path: Path,
    rows: Any,
    backbone: Backbone,
    source_columns: dict[str, str],
    label_column: str | None,
    keep_columns: Sequence[str],
    features: Any,
    *,
    batch_size: int,
    on_error: str,
    report: ExtractionReport,
    progress: bool,
) -> None:
    schema = features.arrow_schema
    bar = tqdm(total=len(rows), desc=f"extracting {', '.join(source_columns)}", unit="sample", disable=not progress)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            count = min(batch_size, len(rows) - start)
            table = _encode_batch(
                batch, count, backbone, source_columns, label_column, keep_columns, schema, on_error, report
            )
            if table.num_rows:
                writer.write_table(table)
            bar.update(count)
    bar.close()


def _encode_batch(batch, count, backbone, source_columns, label_column, keep_columns, schema, on_error, report):
    keep = np.ones(count, dtype=bool)
    present: dict[str, np.ndarray] = {}
    items: dict[str, list[tuple[int, Any]]] = {}
    for modality, column in source_columns.items():
        present[modality] = np.zeros(count, dtype=bool)
        items[modality] = []
        for row, value in enumerate(batch[column]):
            if value is None:
                report.missing[modality] = report.missing.get(modality, 0) + 1
                continue
            try:
                items[modality].append((row, backbone.preprocess_one(modality, value)))
                present[modality][row] = True
            except InputError as error:
                if on_error == "raise":
                    raise InputError(f"{modality} column {column!r}: {error}", reason=error.reason) from error
                report.count_error(modality, error.reason)
                if on_error == "skip":
                    keep[row] = False
                else:
                    report.missing[modality] = report.missing.get(modality, 0) + 1
    to_encode = {m: [item for row, item in pairs if keep[row]] for m, pairs in items.items()}
    to_encode = {m: values for m, values in to_encode.items() if values}
    encoded = backbone.encode(to_encode) if to_encode else {}
    if to_encode:
        report.backbone_calls += 1
    kept = int(keep.sum())
    arrays: dict[str, pa.Array] = {}
    for modality in source_columns:
        size = backbone.feature_sizes[modality]
        matrix = np.zeros((count, size), dtype=np.float32)  # (B, D_m), zeros where absent
        rows_in = [row for row, _ in items[modality] if keep[row]]
        if rows_in:
            matrix[rows_in] = encoded[modality].detach().cpu().numpy()
        flat = pa.array(matrix[keep].reshape(-1), type=pa.float32())
        arrays[modality] = pa.FixedSizeListArray.from_arrays(flat, size)
        arrays[f"{modality}_present"] = pa.array(present[modality][keep])
    if label_column is not None:
        labels = [label for label, k in zip(batch[label_column], keep) if k]
        if any(label is None for label in labels):
            raise ValueError(f"label column {label_column!r} has missing (None) labels")
        arrays["labels"] = pa.array(labels, type=pa.int64())
    for column in keep_columns:
        arrays[column] = pa.array([value for value, k in zip(batch[column], keep) if k], type=schema.field(column).type)
    report.num_rows += kept
    report.skipped_rows += count - kept
    return pa.Table.from_arrays([arrays[name] for name in schema.names], schema=schema)


__all__ = ["extract_features", "feature_columns"]
