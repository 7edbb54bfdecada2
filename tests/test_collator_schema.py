"""`feature_id2label`: the label map of feature splits, from train's `ClassLabel` names or the largest label;
`feature_view`: how feature columns are served for batching."""

from __future__ import annotations

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict
from feature_helpers import make_args

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.collator import feature_id2label, feature_view


def split(labels: list[int]) -> Dataset:
    """A one-modality feature split with these labels (plain `int64`, no names)."""
    return build_feature_dataset({"a": np.zeros((len(labels), 2))}, np.array(labels))


def test_train_class_names_win_whatever_the_split_order() -> None:
    """Train's `ClassLabel` names are the map even when an unnamed split comes first."""
    train = split([0, 1, 2]).cast_column("labels", ClassLabel(names=["cat", "dog", "bird"]))
    splits = DatasetDict({"validation": split([0, 1]), "train": train})
    assert feature_id2label(splits) == {0: "cat", 1: "dog", 2: "bird"}


def test_without_a_train_split_the_map_spans_the_largest_label_of_any_split() -> None:
    """No train split: the first split decides there are no names; labels run to the largest one seen anywhere."""
    splits = DatasetDict({"validation": split([0, 2]), "test": split([1, 4, 3])})
    assert feature_id2label(splits) == {0: "0", 1: "1", 2: "2", 3: "3", 4: "4"}


def test_feature_view_serves_numpy_and_lists_where_rows_are_none() -> None:
    """Columns without `None` rows come as numpy arrays; a column with `None` rows as Python rows; only the columns
    asked for."""
    ds = Dataset.from_dict({"a": [[1.0, 2.0], [3.0, 4.0]], "b": [None, [5.0]], "note": ["x", "y"], "labels": [0, 1]})
    view = feature_view(ds, ["a", "b", "labels"])
    rows = view[:2]
    assert set(rows) == {"a", "b", "labels"}
    assert isinstance(rows["a"], np.ndarray) and rows["a"].shape == (2, 2)
    assert rows["b"] == [None, [5.0]]
    assert feature_view(ds.select_columns(["a", "labels"])).format["type"] == "numpy"


def test_the_trainer_serves_only_the_model_columns_as_numpy(tmp_path) -> None:
    """`BalanceTrainer` batches numpy arrays of the modality, presence and label columns, nothing else."""
    train = split([0, 1, 2, 1]).add_column("note", ["w", "x", "y", "z"])
    config = BalanceConfig(modality_dims={"a": 2}, num_labels=3, hidden_size=4)
    args = make_args(tmp_path, order_schedule="fixed")
    trainer = BalanceTrainer(model=BalancedModel(config), args=args, train_dataset=train)
    assert trainer.train_dataset.format["type"] == "numpy"
    assert trainer.train_dataset.column_names == ["a", "labels"]
