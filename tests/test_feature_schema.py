"""`feature_schema`: modality sizes of feature splits, declared or read from the rows; ragged columns refused."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset, DatasetDict, Features, List, Value

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


def test_columns_that_are_not_vectors_are_skipped_wherever_they_stand() -> None:
    """Labels, presence flags and scalar or string columns before, between or after the vectors are not modalities."""
    kept = Dataset.from_dict(
        {
            "labels": [0, 1],
            "id": [10, 11],
            "a": [[0.0, 1.0], [2.0, 3.0]],
            "caption": ["a cat", "a dog"],
            "a_present": [True, False],
            "b": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
        }
    )
    assert list(feature_schema({"train": kept}).items()) == [("a", 2), ("b", 3)]


def test_labels_and_presence_names_are_never_modalities_even_as_lists() -> None:
    """The docstring's rule: a list column named `labels` or `<m>_present` is not a modality column."""
    lists = Dataset.from_dict(
        {"a": [[0.0, 1.0], [2.0, 3.0]], "a_present": [[True], [False]], "labels": [[1, 0], [0, 1]]}
    )
    assert feature_schema({"train": lists}) == {"a": 2}


def test_a_declared_length_holds_when_a_row_is_none() -> None:
    """A declared size is the column's size even when a row holds `None` (a missing modality the collator accepts)."""
    schema = Features({"a": List(Value("float32"), length=2), "labels": Value("int64")})
    with_none = Dataset.from_dict({"a": [[1.0, 2.0], None], "labels": [0, 1]}, features=schema)
    assert feature_schema({"train": with_none}) == {"a": 2}


def test_none_rows_are_absent_entries_when_no_length_is_declared() -> None:
    """Without a declared size, `None` rows are skipped; a column of `None` only is refused by name."""
    with_none = Dataset.from_dict({"a": [[1.0, 2.0], None, [3.0, 4.0]], "labels": [0, 1, 0]})
    assert feature_schema({"train": with_none}) == {"a": 2}
    only_none = Dataset.from_dict({"a": [[1.0, 2.0], [3.0, 4.0]], "b": [None, None], "labels": [0, 1]})
    with pytest.raises(ValueError, match="^feature column 'b' holds None in every row: its feature size is unknown$"):
        feature_schema({"train": only_none.cast_column("b", List(Value("float32")))})


def test_the_ragged_error_lists_at_most_ten_lengths_and_says_why() -> None:
    """Rows of twelve lengths: the message shows the ten smallest and the rule they break."""
    ragged = Dataset.from_dict({"text": [[0.0] * n for n in range(12, 0, -1)], "labels": [0] * 12})
    lengths = r"\[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]"
    with pytest.raises(ValueError, match=lengths + ": every row of a modality must have the same feature size$"):
        feature_schema({"train": ragged})


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
