"""BestValidationCallback: which epoch it keeps, what it restores, which metric it reads."""

from __future__ import annotations

import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

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
