"""FeatureSnapshotCallback (Figure 4): which epochs it snapshots in a real run, of which rows, and of which weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from feature_helpers import make_args, make_features
from transformers import TrainerControl, TrainerState, TrainingArguments

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.analyses import feature_snapshot
from mllm_balance.callbacks import FeatureSnapshotCallback

CONFIG = dict(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)


def untrained_model():
    torch.manual_seed(0)
    return BalancedModel(BalanceConfig(**CONFIG))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-epoch run with snapshots before training and after epoch 2 (`first`), and after epoch 1 (`second`)."""
    train = build_feature_dataset(*make_features(64, seed=1))
    val = build_feature_dataset(*make_features(32, seed=2))
    test = build_feature_dataset(*make_features(20, seed=3))
    first = FeatureSnapshotCallback(test, epochs=[2, 0, 2], max_samples=7)
    second = FeatureSnapshotCallback(test, epochs=(1,), max_samples=9)
    trainer = BalanceTrainer(
        model=untrained_model(),
        args=make_args(tmp_path_factory.mktemp("snapshots")),
        train_dataset=train,
        eval_dataset=val,
        callbacks=[first, second],
    )
    trainer.train()
    return first, second, trainer.model, test


def assert_same_snapshot(got, expected):
    assert got["modalities"].keys() == expected["modalities"].keys()
    for m, x in expected["modalities"].items():
        np.testing.assert_array_equal(got["modalities"][m], x)
    np.testing.assert_array_equal(got["fused"], expected["fused"])
    np.testing.assert_array_equal(got["labels"], expected["labels"])


def test_snapshots_are_taken_before_training_and_after_the_chosen_epochs_only(run):
    first, second, _, _ = run
    assert first.epochs == [0, 2] and sorted(first.snapshots) == [0, 2]
    assert sorted(second.snapshots) == [1]


def test_snapshots_hold_the_first_max_samples_rows(run):
    first, second, _, test = run
    for snapshot in first.snapshots.values():
        np.testing.assert_array_equal(snapshot["labels"], test["labels"][:7])
        assert {m: x.shape for m, x in snapshot["modalities"].items()} == {"a": (7, 8), "b": (7, 8)}
    np.testing.assert_array_equal(second.snapshots[1]["labels"], test["labels"][:9])


def test_snapshots_hold_the_weights_of_their_epoch(run):
    first, second, final_model, test = run
    assert_same_snapshot(first.snapshots[0], feature_snapshot(untrained_model(), test, 7))
    assert_same_snapshot(first.snapshots[2], feature_snapshot(final_model, test, 7))
    after_one = second.snapshots[1]["modalities"]["a"][:7]
    assert not np.allclose(after_one, first.snapshots[0]["modalities"]["a"])
    assert not np.allclose(after_one, first.snapshots[2]["modalities"]["a"])


def test_max_samples_defaults_to_300_rows():
    dataset = build_feature_dataset(*make_features(305, seed=4))
    callback = FeatureSnapshotCallback(dataset, epochs=[0])
    callback.on_train_begin(TrainingArguments("unused"), TrainerState(), TrainerControl(), model=untrained_model())
    assert len(callback.snapshots[0]["labels"]) == 300
