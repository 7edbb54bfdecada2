"""`feature_id2label`: the label map of feature splits, from train's `ClassLabel` names or the largest label."""

from __future__ import annotations

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict

from mllm_balance import build_feature_dataset
from mllm_balance.collator import feature_id2label


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
