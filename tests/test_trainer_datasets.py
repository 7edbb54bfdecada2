"""Datasets passed to `evaluate` / `predict` are checked against the model (naming the dataset), the prediction
metrics' default prefix, and the refusal to save non-finite weights."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from feature_helpers import make_args, make_features

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.trainer import NonFiniteTrainingError


@pytest.fixture
def trainer(tmp_path) -> BalanceTrainer:
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)
    return BalanceTrainer(model=BalancedModel(config), args=make_args(tmp_path, logging_strategy="no"))


def dataset(n: int = 12, labels: np.ndarray | None = None, dims=(("a", 6), ("b", 5))):
    x, y = make_features(n, seed=3, dims=dims)
    return build_feature_dataset(x, y if labels is None else labels)


@pytest.mark.parametrize(("method", "name"), [("evaluate", "eval dataset"), ("predict", "test dataset")])
def test_wrong_feature_size_is_refused_naming_the_dataset(trainer, method: str, name: str):
    """A feature column of the wrong size is refused before the loop runs, naming the dataset."""
    with pytest.raises(ValueError, match=rf"modality 'b' in the {name} has feature size 4"):
        getattr(trainer, method)(dataset(dims=(("a", 6), ("b", 4))))


@pytest.mark.parametrize(("method", "name"), [("evaluate", "eval dataset"), ("predict", "test dataset")])
def test_labels_outside_the_label_set_are_refused(trainer, method: str, name: str):
    """Labels must lie in 0..num_labels - 1 (here 0..2)."""
    labels = np.array([0, 1, 2, 5] * 3)
    with pytest.raises(ValueError, match=rf"the {name} has labels \[5\] outside the label set 0\.\.2"):
        getattr(trainer, method)(dataset(labels=labels))


def test_prediction_metrics_are_prefixed_test_by_default(trainer):
    """`predict` reports `test_accuracy` unless told otherwise."""
    metrics = trainer.predict(dataset()).metrics
    assert "test_accuracy" in metrics and "test_loss" in metrics


def test_non_finite_weights_are_not_saved(trainer, tmp_path):
    """A model holding a NaN weight is refused at save time, naming the weight, and nothing is written."""
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    name = next(iter(trainer.model.trainable_state_dict()))
    out = os.path.join(tmp_path, "saved")
    with pytest.raises(NonFiniteTrainingError, match=rf"the weights \['{name}'.* are NaN or infinite at epoch 1, step"):
        trainer.save_model(out)  # before training: epoch 1
    assert not os.path.exists(os.path.join(out, "config.json"))
    trainer.state.epoch = 2.0  # the Trainer's count when no order was recorded: two epochs done
    with pytest.raises(NonFiniteTrainingError, match="at epoch 3, step"):
        trainer.save_model(out)
    trainer.order_state.order_history.extend([["a", "b"]] * 4)  # the order history counts the epochs begun
    with pytest.raises(NonFiniteTrainingError, match="at epoch 4, step"):
        trainer.save_model(out)


def test_saved_config_holds_the_order_and_shapley_history(trainer, tmp_path):
    """The saved config carries the trainer's order and its Shapley history."""
    trainer.order_state.shapley_history.append({"a": 0.25, "b": 0.75})
    out = os.path.join(tmp_path, "saved")
    trainer.save_model(out)
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    assert saved["shapley_history"] == [{"a": 0.25, "b": 0.75}]
    assert saved["train_order"] == list(trainer.order_state.order)
