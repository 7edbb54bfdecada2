"""`feature_schema`: modality sizes of feature splits, declared or read from the rows; ragged columns refused."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from mllm_balance import build_feature_dataset
from mllm_balance.collator import feature_schema
from mllm_balance.recipe import DataArguments, load_feature_splits


def undeclared(n: int, seed: int) -> Dataset:
    """What `Dataset.from_dict` writes for 2-D arrays: list columns without a declared length."""
    rng = np.random.default_rng(seed)
    data = {"text": rng.normal(size=(n, 4)).astype(np.float32), "image": rng.normal(size=(n, 3)).astype(np.float32)}
    return Dataset.from_dict({**data, "image_present": np.ones(n, dtype=bool), "labels": rng.integers(0, 2, n)})


def test_declared_and_undeclared_lengths_give_the_sizes_in_column_order():
    declared = build_feature_dataset({"b": np.zeros((3, 5)), "a": np.zeros((3, 2))}, np.array([0, 1, 0]))
    assert list(feature_schema({"train": declared}).items()) == [("b", 5), ("a", 2)]
    splits = {"train": undeclared(6, 0), "validation": undeclared(4, 1)}
    assert getattr(splits["train"].features["text"], "length", -1) in (None, -1)  # really undeclared
    assert list(feature_schema(splits).items()) == [("text", 4), ("image", 3)]


def test_a_ragged_column_is_an_error_naming_the_column_and_the_lengths():
    ragged = Dataset.from_dict({"text": [[0.0, 1.0], [0.0, 1.0, 2.0]], "labels": [0, 1]})
    with pytest.raises(ValueError, match=r"'text' has rows of different lengths \[2, 3\]"):
        feature_schema({"train": ragged})
    # the same length inside each split but not across them
    other = Dataset.from_dict({"text": [[0.0, 1.0, 2.0]], "labels": [0]})
    first = Dataset.from_dict({"text": [[0.0, 1.0]], "labels": [0]})
    with pytest.raises(ValueError, match=r"\[2, 3\]"):
        feature_schema({"train": first, "validation": other})


def test_declared_lengths_that_differ_across_splits_are_an_error():
    train = build_feature_dataset({"text": np.zeros((2, 4))}, np.array([0, 1]))
    validation = build_feature_dataset({"text": np.zeros((2, 5))}, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"'text' has rows of different lengths \[4, 5\]"):
        feature_schema({"train": train, "validation": validation})


def test_no_feature_column_is_an_error():
    with pytest.raises(ValueError, match="no feature columns"):
        feature_schema({"train": Dataset.from_dict({"labels": [0, 1]})})


def test_features_dir_accepts_columns_without_a_declared_length(tmp_path):
    DatasetDict({s: undeclared(8, i) for i, s in enumerate(("train", "validation", "test"))}).save_to_disk(
        str(tmp_path / "f")
    )
    name, splits, dims, id2label = load_feature_splits(DataArguments(features_dir=str(tmp_path / "f")))
    assert dims == {"text": 4, "image": 3} and set(splits) == {"train", "validation", "test"}
    assert id2label == {0: "0", 1: "1"}


def test_a_recipe_trains_on_features_saved_without_a_declared_length(tmp_path):
    from mllm_balance.recipe import parse_recipe_args, run_recipe

    DatasetDict({s: undeclared(32, i) for i, s in enumerate(("train", "validation", "test"))}).save_to_disk(
        str(tmp_path / "f")
    )
    args = parse_recipe_args(
        None,
        ["--features_dir", str(tmp_path / "f"), "--output_dir", str(tmp_path / "out"), "--num_train_epochs", "1",
         "--hidden_size", "4", "--use_cpu", "true", "--report_to", "none", "--save_strategy", "no",
         "--per_device_train_batch_size", "8"],
    )  # fmt: skip
    results = run_recipe(*args)
    assert results["modalities"] == ["text", "image"] and 0 <= results["accuracy"]["fusion"] <= 100
