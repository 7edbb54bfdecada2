"""BestValidationCallback: which epoch it keeps, what it restores, which metric it reads."""

from __future__ import annotations

import pytest
import torch
from transformers import PretrainedConfig, TrainerControl, TrainerState, TrainingArguments

from mllm_balance import BalanceConfig, BalancedModel
from mllm_balance.callbacks import BestValidationCallback


def model_and_state():
    torch.manual_seed(0)
    model = BalancedModel(BalanceConfig(modality_dims={"text": 4, "image": 3}, num_labels=2, hidden_size=5))
    return model, TrainerState()


def evaluate(cb, model, state, epoch, metrics, order):
    """One epoch: the weights move to a value named by the epoch, the order changes, then the Trainer evaluates."""
    with torch.no_grad():
        model.classifier.bias.fill_(float(epoch))
    model.config.train_order = list(order)
    state.epoch = float(epoch)
    cb.on_evaluate(TrainingArguments("unused"), state, TrainerControl(), model=model, metrics=metrics)


def test_keeps_the_best_epoch_ties_keep_the_earlier_and_restores_its_weights_and_order():
    model, state = model_and_state()
    cb = BestValidationCallback()
    evaluate(cb, model, state, 1, {"eval_accuracy": 50.0}, ["text", "image"])
    evaluate(cb, model, state, 2, {"eval_accuracy": 70.0}, ["image", "text"])
    evaluate(cb, model, state, 3, {"eval_accuracy": 70.0}, ["text", "image"])  # a tie: epoch 2 stays
    evaluate(cb, model, state, 4, {"eval_accuracy": 60.0, "eval_loss": 0.1}, ["text", "image"])
    assert (cb.best_metric, cb.best_epoch) == (70.0, 2)
    cb.on_train_end(TrainingArguments("unused"), state, TrainerControl(), model=model)
    assert torch.equal(model.classifier.bias, torch.full((2,), 2.0))
    assert model.config.train_order == ["image", "text"]


def test_reads_only_its_metric_and_a_copy_of_the_weights():
    model, state = model_and_state()
    cb = BestValidationCallback(metric="eval_f1")
    evaluate(cb, model, state, 1, {"eval_accuracy": 99.0}, ["text", "image"])  # not its metric: ignored
    assert cb.best_metric is None
    evaluate(cb, model, state, 2, {"eval_f1": 10.0}, ["text", "image"])
    evaluate(cb, model, state, 3, {"eval_f1": 5.0, "eval_accuracy": 99.0}, ["image", "text"])
    assert (cb.best_metric, cb.best_epoch) == (10.0, 2)
    with torch.no_grad():  # later in-place updates of the live weights must not reach the kept copy
        model.classifier.bias.fill_(-1.0)
    cb.on_train_end(TrainingArguments("unused"), state, TrainerControl(), model=model)
    assert torch.equal(model.classifier.bias, torch.full((2,), 2.0))
    assert model.config.train_order == ["text", "image"]


def test_nothing_evaluated_leaves_the_model_as_trained():
    model, state = model_and_state()
    cb = BestValidationCallback()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cb.on_train_end(TrainingArguments("unused"), state, TrainerControl(), model=model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_evaluation_before_training_is_epoch_0_and_can_be_the_one_kept():
    """`eval_on_start=True` evaluates the untrained model (the Trainer's state is still at epoch 0); when no epoch
    beats it, the untrained weights come back."""
    model, state = model_and_state()
    cb = BestValidationCallback()
    evaluate(cb, model, state, 0, {"eval_accuracy": 60.0}, ["text", "image"])
    evaluate(cb, model, state, 1, {"eval_accuracy": 55.0}, ["image", "text"])
    assert (cb.best_metric, cb.best_epoch) == (60.0, 0)
    cb.on_train_end(TrainingArguments("unused"), state, TrainerControl(), model=model)
    assert torch.equal(model.classifier.bias, torch.zeros(2))
    assert model.config.train_order == ["text", "image"]


def test_an_evaluation_without_metrics_or_without_a_model_is_ignored():
    model, state = model_and_state()
    cb = BestValidationCallback()
    state.epoch = 1.0
    args, control = TrainingArguments("unused"), TrainerControl()
    cb.on_evaluate(args, state, control, model=model, metrics=None)
    cb.on_evaluate(args, state, control, model=model, metrics={})
    cb.on_evaluate(args, state, control, model=None, metrics={"eval_accuracy": 90.0})
    assert (cb.best_metric, cb.best_epoch) == (None, None)
    evaluate(cb, model, state, 2, {"eval_accuracy": 50.0}, ["text", "image"])
    assert (cb.best_metric, cb.best_epoch) == (50.0, 2)


def baseline_model():
    from mllm_balance.baselines import ConcatConfig, ConcatModel

    return ConcatModel(ConcatConfig(modality_dims={"text": 4, "image": 3}, num_labels=2, hidden_size=5))


class OtherModel(torch.nn.Module):
    """Any model a Trainer takes: a transformers config without a training order."""

    def __init__(self):
        super().__init__()
        self.config = PretrainedConfig()
        self.linear = torch.nn.Linear(3, 2)


@pytest.mark.parametrize("make_model", [baseline_model, OtherModel], ids=["baseline", "other"])
def test_selects_models_without_a_training_order_alike(make_model):
    torch.manual_seed(0)
    model = make_model()
    state, args, control = TrainerState(), TrainingArguments("unused"), TrainerControl()
    cb = BestValidationCallback()
    for epoch, accuracy in ((1, 40.0), (2, 65.0), (3, 50.0)):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(epoch))
        state.epoch = float(epoch)
        cb.on_evaluate(args, state, control, model=model, metrics={"eval_accuracy": accuracy})
    assert (cb.best_metric, cb.best_epoch) == (65.0, 2)
    cb.on_train_end(args, state, control, model=model)
    assert all(torch.equal(p, torch.full_like(p, 2.0)) for p in model.parameters())
    assert getattr(model.config, "train_order", None) is None
