"""Feature datasets: validation, construction and the collator that batches them for `BalancedModel`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import ClassLabel, Dataset, Features, List, Value

LABEL_COLUMN = "labels"


def presence_column(modality: str) -> str:
    """Name of the optional bool column that marks `modality` as present (True) or missing (False)."""
    return f"{modality}_present"


def build_feature_dataset(
    features: Mapping[str, np.ndarray | torch.Tensor],
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    present: Mapping[str, Sequence[bool] | np.ndarray] | None = None,
) -> Dataset:
    """Build a feature dataset: one `List(float32, length=D_m)` column per modality, optional presence columns
    and `labels`.

    Args:
        features (`dict[str, array]`): `{modality: (N, D_m)}`.
        labels (`array` of shape `(N,)`): class indices.
        present (`dict[str, array]`, *optional*): `{modality: (N,) bool}`; a missing modality's row is zeroed.
    """
    arrays = {m: np.asarray(x, dtype=np.float32) for m, x in features.items()}
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    columns: dict[str, Any] = {}
    schema: dict[str, Any] = {}
    for m, x in arrays.items():
        if x.ndim != 2 or x.shape[0] != labels.shape[0]:
            raise ValueError(f"features[{m!r}] has shape {x.shape}; expected ({labels.shape[0]}, D)")
        if present is not None and m in present:
            mask = np.asarray(present[m], dtype=bool).reshape(-1)
            x = np.where(mask[:, None], x, 0.0).astype(np.float32)
            columns[presence_column(m)] = mask
            schema[presence_column(m)] = Value("bool")
        columns[m] = x
        schema[m] = List(Value("float32"), length=x.shape[1])
    columns[LABEL_COLUMN] = labels
    schema[LABEL_COLUMN] = Value("int64")
    return Dataset.from_dict(columns, features=Features(schema))


def feature_schema(splits: Mapping[str, Dataset]) -> dict[str, int]:
    """Feature size of every modality column of feature splits, in column order.

    A modality column is any list column other than `labels` and the `<m>_present` columns. Its size is the declared
    length (`List(Value("float32"), length=D)`), or, for a column saved without one (what `Dataset.from_dict` writes
    for a 2-D numpy array), the one length that all its rows share in every split.

    Raises:
        `ValueError`: naming the column and the lengths seen when rows differ in length (within or across splits),
        or when no split has a modality column.
    """
    first = next(iter(splits.values()))
    dims: dict[str, int] = {}
    for column, feature in first.features.items():
        if column == LABEL_COLUMN or column.endswith("_present") or not isinstance(feature, List):
            continue
        lengths = set().union(*(_row_lengths(d, column) for d in splits.values() if column in d.column_names))
        if not lengths:
            raise ValueError(f"feature column {column!r} holds None in every row: its feature size is unknown")
        if len(lengths) != 1:
            raise ValueError(
                f"feature column {column!r} has rows of different lengths {sorted(lengths)[:10]}: every row of a "
                "modality must have the same feature size"
            )
        dims[column] = lengths.pop()
    if not dims:
        raise ValueError(f"no feature columns (one list column per modality) among {first.column_names}")
    return dims


def _row_lengths(dataset: Dataset, column: str) -> set[int]:
    """The distinct lengths of a list column's rows (a declared length holds for every row)."""
    lengths = pc.drop_null(pc.list_value_length(dataset.data.column(column)))  # a None row is an absent entry
    return {int(n) for n in np.unique(lengths.to_numpy(zero_copy_only=False))}


def validate_feature_dataset(
    dataset: Dataset,
    modality_dims: Mapping[str, int],
    num_labels: int | None = None,
    *,
    name: str = "dataset",
    check_values: bool = True,
    batch_size: int = 4096,
) -> None:
    """Check a feature dataset against the model's modalities before any training starts.

    Raises:
        `ValueError`: if the dataset is empty, a modality column or `labels` is missing, a feature has the wrong
        size, a present feature holds NaN or inf, a label is outside `0..num_labels-1`, or a sample has no
        modality present (a row holding `None` for a modality counts as that modality absent, as in the collator).
    """
    if dataset is None or len(dataset) == 0:
        raise ValueError(f"the {name} is empty")
    columns = set(dataset.column_names)
    for m in modality_dims:
        if m not in columns:
            raise ValueError(f"modality column {m!r} is missing from the {name}; its columns are {sorted(columns)}")
    if LABEL_COLUMN not in columns:
        raise ValueError(f"the {name} has no {LABEL_COLUMN!r} column; its columns are {sorted(columns)}")
    for m, dim in modality_dims.items():
        feature = dataset.features[m]
        length = getattr(feature, "length", -1)
        if length not in (-1, None) and length != dim:
            raise ValueError(f"modality {m!r} in the {name} has feature size {length}; the model expects {dim}")
    if not check_values:
        return
    view = feature_view(dataset)
    for start in range(0, len(dataset), batch_size):
        chunk = view[start : start + batch_size]
        any_present = np.zeros(len(chunk[LABEL_COLUMN]), dtype=bool)
        for m, dim in modality_dims.items():
            x, mask = modality_entries(chunk, m, name, dim)
            if x.shape[1] != dim:
                raise ValueError(f"modality {m!r} in the {name} has feature size {x.shape[1]}; the model expects {dim}")
            any_present |= mask
            bad = mask & ~np.isfinite(x).all(axis=1)
            if bad.any():
                rows = (np.flatnonzero(bad) + start).tolist()[:10]
                raise ValueError(f"modality {m!r} in the {name} holds NaN or inf in rows {rows}")
        if not any_present.all():
            rows = (np.flatnonzero(~any_present) + start).tolist()[:10]
            raise ValueError(f"rows {rows} of the {name} have no modality present")
        labels = np.asarray(chunk[LABEL_COLUMN])
        if num_labels is not None:
            bad = (labels < 0) | (labels >= num_labels)
            if bad.any():
                raise ValueError(
                    f"the {name} has labels {sorted(set(labels[bad].tolist()))[:10]} outside the label set "
                    f"0..{num_labels - 1}"
                )


def feature_view(dataset: Dataset, columns: Sequence[str] | None = None) -> Dataset:
    """`dataset` (its `columns`, by default all) served as numpy arrays for fast batching.

    A column whose rows mix vectors and `None` (absent entries) cannot be batched by numpy formatting; it comes as
    Python lists instead, which [`BalanceDataCollator`] reads the same way.
    """
    columns = list(dataset.column_names if columns is None else columns)
    with_none = {c for c in columns if dataset.data.column(c).null_count}
    view = dataset.select_columns(columns)
    if not with_none:
        return view.with_format("numpy")
    return view.with_format("numpy", columns=[c for c in columns if c not in with_none], output_all_columns=True)


def modality_entries(
    chunk: Mapping[str, Any], modality: str, name: str, dim: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One modality of a chunk of feature-dataset columns as a float32 matrix and the rows that have it, read as the
    collator reads them: an entry is present unless its `<m>_present` flag is false or its row holds `None`.

    Args:
        chunk (`dict`): columns of `n` rows (`{column: rows}`), e.g. a slice of [`feature_view`].
        modality (`str`), name (`str`): the modality and the split / dataset, for error messages.
        dim (`int`, *optional*): width of the zero rows that stand for `None` (default: as wide as the other rows).

    Returns:
        `(x, present)`: `x` of shape `(n, D)` with `None` rows zero-filled, `present` `(n,)` bool.

    Raises:
        `ValueError`: rows of different sizes, rows that are not vectors, or `None` in every row (when `dim` is not
        given), naming `modality` and `name`.
    """
    x, absent = _modality_matrix(chunk[modality], modality, name, dim)
    return x, _presence(chunk, modality, x.shape[0]) & ~absent


def _modality_matrix(column: Any, modality: str, name: str, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[`modality_entries`]'s matrix of one column, and which of its rows were `None` `(n,)`."""
    if not isinstance(column, np.ndarray):
        column = list(column)  # a list, or a `datasets` column of Python rows
    absent = np.zeros(len(column), dtype=bool)
    if isinstance(column, list):  # only Python rows can hold None (numpy formatting refuses them)
        absent = np.array([row is None for row in column], dtype=bool)
        if absent.all() and dim is None:
            raise ValueError(f"modality {modality!r} in the {name} holds None in every row")
        if absent.any():
            width = dim if dim is not None else len(column[int(np.argmin(absent))])  # of the first row with a value
            column = [np.zeros(width) if a else row for row, a in zip(column, absent)]
    try:
        x = np.asarray(column, dtype=np.float32)
    except ValueError as err:
        raise ValueError(f"modality {modality!r} in the {name} has rows of different feature sizes") from err
    if x.ndim != 2:
        raise ValueError(f"modality {modality!r} in the {name} is not a column of vectors (shape {x.shape})")
    return x, absent


def _presence(chunk: Mapping[str, Any], modality: str, n: int) -> np.ndarray:
    column = presence_column(modality)
    return np.asarray(chunk[column], dtype=bool) if column in chunk else np.ones(n, dtype=bool)


@dataclass
class BalanceDataCollator:
    """Batch rows of a feature dataset into `BalancedModel` inputs.

    Returns `{"features": {m: FloatTensor[B, D_m]}, "modality_mask": {m: BoolTensor[B]}, "labels": LongTensor[B]}`
    (`modality_mask` only when a presence column exists or a row holds `None` for a modality).

    Args:
        modality_dims (`dict[str, int]`): the model's modalities and feature sizes.
    """

    modality_dims: Mapping[str, int]

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not rows:
            raise ValueError("cannot collate an empty batch")
        features: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for m, dim in self.modality_dims.items():
            if m not in rows[0]:
                raise ValueError(f"modality column {m!r} is missing; row keys are {sorted(rows[0])}")
            mask = np.array([bool(r.get(presence_column(m), True)) and r[m] is not None for r in rows])
            zeros = np.zeros(dim, np.float32)
            values = [np.asarray(r[m], dtype=np.float32) if r[m] is not None else zeros for r in rows]
            for i, v in enumerate(values):
                if v.shape != (dim,):
                    raise ValueError(f"row {i} of the batch has a {m!r} feature of shape {v.shape}; expected ({dim},)")
            features[m] = torch.from_numpy(np.stack(values))
            if not mask.all():
                masks[m] = torch.from_numpy(mask)
        batch: dict[str, Any] = {"features": features}
        if masks:
            batch["modality_mask"] = masks
        if LABEL_COLUMN in rows[0]:
            batch[LABEL_COLUMN] = torch.as_tensor(np.array([r[LABEL_COLUMN] for r in rows]), dtype=torch.long)
        return batch


def feature_id2label(splits: Mapping[str, Any]) -> dict[int, str]:
    """The label map of feature splits: the names of a `ClassLabel` column, else `0 .. max label` over every split."""
    first = splits["train"] if "train" in splits else next(iter(splits.values()))
    labels = first.features.get(LABEL_COLUMN)
    if isinstance(labels, ClassLabel):
        return dict(enumerate(labels.names))
    largest = max(int(np.max(np.asarray(s.with_format("numpy")[LABEL_COLUMN]))) for s in splits.values())
    return {i: str(i) for i in range(largest + 1)}


__all__ = [
    "BalanceDataCollator",
    "build_feature_dataset",
    "feature_id2label",
    "feature_view",
    "modality_entries",
    "validate_feature_dataset",
    "presence_column",
    "LABEL_COLUMN",
]
