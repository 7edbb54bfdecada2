"""BalanceTrainer + ShapleyOrderCallback: order updates, logging, checkpoints and resumption."""

from __future__ import annotations

import json
import os

import pytest
import torch
from feature_helpers import make_args
from transformers import TrainerCallback

from mllm_balance import BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.trainer import NonFiniteTrainingError


def make_trainer(tmp_path, config, datasets, **overrides):
    torch.manual_seed(0)
    return BalanceTrainer(
        model=BalancedModel(config),
        args=make_args(tmp_path, **overrides),
        train_dataset=datasets[0],
        eval_dataset=datasets[1],
    )


def test_weak_modality_goes_first_after_the_first_epoch(tmp_path, tiny_config, tiny_datasets):
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, initial_order="a,b")
    trainer.train()
    state = trainer.order_state
    # "a" carries the label strongly, "b" weakly: after scoring, the weak one is trained first
    assert state.order_history == [["a", "b"], ["b", "a"]]
    assert state.shapley_history[0]["a"] > state.shapley_history[0]["b"]
    assert trainer.model.config.train_order == ["b", "a"]
    logged = [log for log in trainer.state.log_history if "edm" in log]
    assert len(logged) == 2
    assert {"shapley/a", "shapley/b", "accuracy/a", "order/a", "order"} <= set(logged[0])
    assert logged[0]["order"] == "b>a"
    # efficiency: the logged values add up to P(all) - v(empty)
    acc = state.accuracy_history[-1]
    assert sum(state.shapley_history[-1].values()) == pytest.approx(acc["a+b"] - acc[""])


class FakeScores:
    """Shapley rankings scripted per call, to check that the order follows them."""

    def __init__(self, rankings):
        self.rankings = list(rankings)

    def __call__(self, eval_dataset=None, order=None):
        phi = self.rankings.pop(0)
        acc = {frozenset(): 0.0, frozenset("a"): 50.0, frozenset("b"): 50.0, frozenset("ab"): 60.0}
        return {"shapley": phi, "edm": 0.0, "accuracy": acc}


def test_callback_changes_the_order_when_the_ranking_changes(tmp_path, tiny_config, tiny_datasets):
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, num_train_epochs=3)
    trainer.score_modalities = FakeScores([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 2.0}, {"a": 3.0, "b": 2.0}])
    trainer.train()
    assert trainer.order_state.order_history == [["a", "b"], ["a", "b"], ["b", "a"]]
    assert trainer.order_state.order == ["b", "a"]


@pytest.mark.parametrize("schedule", ["fixed", "random"])
def test_order_ablation_schedules(tmp_path, tiny_config, tiny_datasets, schedule):
    trainer = make_trainer(
        tmp_path, tiny_config, tiny_datasets, num_train_epochs=4, order_schedule=schedule, initial_order="a,b"
    )
    trainer.score_modalities = FakeScores([{"a": 9.0, "b": 1.0}] * 4)
    trainer.train()
    history = trainer.order_state.order_history
    if schedule == "fixed":
        assert history == [["a", "b"]] * 4
    else:
        import numpy as np

        expected = [["a", "b"]] + [
            [["a", "b"][i] for i in np.random.default_rng([0, e + 1]).permutation(2)] for e in range(3)
        ]
        assert history == expected


def test_initial_order_by_shapley_scores_the_untrained_model(tmp_path, tiny_config, tiny_datasets):
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, num_train_epochs=1, initial_order="shapley")
    trainer.score_modalities = FakeScores([{"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.0}])
    trainer.train()
    assert trainer.order_state.scored_epochs == [-1, 0]
    assert trainer.order_state.order_history == [["b", "a"]]


def test_epoch_alternation_trains_one_modality_per_epoch(tmp_path, tiny_config, tiny_datasets):
    trainer = make_trainer(
        tmp_path, tiny_config, tiny_datasets, num_train_epochs=1, alternation="epoch", initial_order="b,a"
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    assert not torch.equal(before["adapters.b.proj.weight"], after["adapters.b.proj.weight"])
    assert torch.equal(before["adapters.a.proj.weight"], after["adapters.a.proj.weight"])
    assert torch.equal(before["adapters.a.proj.bias"], after["adapters.a.proj.bias"])


class AdapterSnapshots(TrainerCallback):
    """The adapters' weights at the start of training and at the end of every epoch."""

    def __init__(self):
        self.weights: list[dict[str, torch.Tensor]] = []

    def _snapshot(self, model) -> None:
        self.weights.append({m: a.proj.weight.detach().clone() for m, a in model.adapters.items()})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._snapshot(model)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self._snapshot(model)


def test_epoch_alternation_trains_each_modality_in_turn_and_scores_after_each_round(
    tmp_path, tiny_config, tiny_datasets
) -> None:
    """With `alternation="epoch"` and two modalities, epoch 0 trains the first of the order, epoch 1 the second,
    and the modalities are scored once the round is over (after epoch 1), not after every epoch."""
    trainer = make_trainer(
        tmp_path, tiny_config, tiny_datasets, num_train_epochs=2, alternation="epoch", initial_order="b,a"
    )
    trainer.score_modalities = FakeScores([{"a": 1.0, "b": 2.0}] * 2)
    snapshots = AdapterSnapshots()
    trainer.add_callback(snapshots)
    trainer.train()
    start, epoch0, epoch1 = snapshots.weights
    assert not torch.equal(start["b"], epoch0["b"]) and torch.equal(start["a"], epoch0["a"])
    assert not torch.equal(epoch0["a"], epoch1["a"]) and torch.equal(epoch0["b"], epoch1["b"])
    assert trainer.order_state.scored_epochs == [1]
    assert [log["order"] for log in trainer.state.log_history if "edm" in log] == ["a>b"]


@pytest.mark.parametrize("alternation", ["joint", "epoch"])
def test_a_compute_loss_func_gets_the_label_count_of_the_accumulated_batches(
    tmp_path, tiny_config, tiny_datasets, alternation
) -> None:
    """A `compute_loss_func` passed through to the Trainer gets `num_items_in_batch`: the labels of the batches
    that one optimizer step accumulates (2 x 16 here)."""
    seen = []

    def summed_cross_entropy(outputs, labels, num_items_in_batch=None):
        seen.append(None if num_items_in_batch is None else int(num_items_in_batch))
        if num_items_in_batch is None:  # the per-batch mean
            return torch.nn.functional.cross_entropy(outputs.logits, labels)
        return torch.nn.functional.cross_entropy(outputs.logits, labels, reduction="sum") / num_items_in_batch

    torch.manual_seed(0)
    trainer = BalanceTrainer(
        model=BalancedModel(tiny_config),
        args=make_args(tmp_path, num_train_epochs=1, alternation=alternation, gradient_accumulation_steps=2),
        train_dataset=tiny_datasets[0],
        eval_dataset=tiny_datasets[1],
        compute_loss_func=summed_cross_entropy,
    )
    trainer.train()
    assert seen == [32] * 6  # 96 rows in batches of 16


def test_flops_estimate_is_six_times_batch_times_parameters(tmp_path, tiny_config, tiny_datasets) -> None:
    """`floating_point_ops` counts the rows of the batch (not a feature size) times the trainable parameters."""
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets)
    batch = trainer.data_collator([tiny_datasets[0][i] for i in range(3)])
    assert batch["features"]["a"].shape == (3, 6)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    assert trainer.floating_point_ops(batch) == 6 * 3 * parameters


class PoisonClassifier(TrainerCallback):
    """Fills the classifier's weights with NaN at the end of global step `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                model.classifier.weight.fill_(float("nan"))


@pytest.mark.parametrize("saved", [True, False], ids=["checkpoint", "no-checkpoint"])
def test_a_non_finite_loss_names_the_checkpoint_that_is_kept(tmp_path, tiny_config, tiny_datasets, saved) -> None:
    """The error for a non-finite loss names the newest checkpoint left in `output_dir`, or says none was saved."""
    save = {"save_strategy": "steps", "save_steps": 2} if saved else {"save_strategy": "no"}
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, num_train_epochs=1, initial_order="a,b", **save)
    trainer.add_callback(PoisonClassifier(3))  # after step 3: the loss of step 4 is NaN
    with pytest.raises(NonFiniteTrainingError) as caught:
        trainer.train()
    message = str(caught.value)
    assert "the training loss is not finite (nan) at epoch 1, step 4 (the 'a' step)" in message
    kept = f"the last checkpoint, {tmp_path / 'checkpoint-2'}, is kept" if saved else "no checkpoint had been saved"
    assert f"training stopped before applying it; {kept}. Resume with" in message


def test_step_alternation_updates_once_per_modality_and_batch(tmp_path, tiny_config, tiny_datasets):
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, num_train_epochs=1)
    steps = []
    trainer.create_optimizer()
    original = trainer.optimizer.step

    def counting_step(*args, **kwargs):
        steps.append(1)
        return original(*args, **kwargs)

    trainer.optimizer.step = counting_step
    trainer.train()
    batches = -(-len(tiny_datasets[0]) // 16)
    assert trainer.state.global_step == batches
    assert len(steps) == 2 * batches  # one update per modality


class StopAfterEpochs(TrainerCallback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, args, state, control, **kwargs):
        if round(state.epoch) >= self.epochs:
            control.should_training_stop = True


def test_resumed_run_matches_uninterrupted_run(tmp_path, tiny_config, tiny_datasets):
    full = make_trainer(tmp_path / "full", tiny_config, tiny_datasets, num_train_epochs=3, initial_order="a,b")
    full.train()

    first = make_trainer(
        tmp_path / "cut", tiny_config, tiny_datasets, num_train_epochs=3, initial_order="a,b", save_strategy="epoch"
    )
    first.add_callback(StopAfterEpochs(1))
    first.train()
    checkpoint = os.path.join(tmp_path / "cut", f"checkpoint-{first.state.global_step}")
    files = set(os.listdir(checkpoint))
    assert {"model.safetensors", "config.json", "balance_state.json"} <= files
    saved = json.load(open(os.path.join(checkpoint, "balance_state.json")))
    assert saved["order_history"] == [["a", "b"]] and saved["order"] == ["b", "a"]

    resumed = make_trainer(tmp_path / "cut", tiny_config, tiny_datasets, num_train_epochs=3, initial_order="a,b")
    resumed.train(resume_from_checkpoint=checkpoint)
    assert resumed.order_state.order_history == full.order_state.order_history
    assert len(resumed.order_state.shapley_history) == 3
    for got, want in zip(resumed.order_state.shapley_history, full.order_state.shapley_history):
        assert got == pytest.approx(want)
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=1e-6, msg=k)


def test_checkpoint_holds_only_trainable_weights(tmp_path, tiny_config, tiny_datasets):
    from safetensors.torch import load_file

    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, num_train_epochs=1)
    trainer.model.adapters["b"].proj.weight.requires_grad_(False)
    trainer.save_model(str(tmp_path / "saved"))
    keys = set(load_file(str(tmp_path / "saved" / "model.safetensors")))
    assert "adapters.b.proj.weight" not in keys
    assert {"adapters.a.proj.weight", "memory.gates.weight", "classifier.weight"} <= keys


def test_resume_from_a_foreign_checkpoint_is_refused(tmp_path, tiny_config, tiny_datasets):
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, num_train_epochs=1)
    foreign = tmp_path / "foreign"
    trainer.model.save_pretrained(foreign)
    with pytest.raises(ValueError, match="balance_state.json"):
        trainer._load_from_checkpoint(str(foreign))


def test_missing_modality_rows_train_and_score(tmp_path, tiny_config, feature_maker):
    features, labels = feature_maker(64, seed=3)
    present = {"b": [i % 3 != 0 for i in range(64)]}
    train = build_feature_dataset(features, labels, present)
    trainer = make_trainer(tmp_path, tiny_config, (train, train), num_train_epochs=1)
    trainer.train()
    scores = trainer.score_modalities()
    assert set(scores["shapley"]) == {"a", "b"}
    assert trainer.evaluate()["eval_accuracy"] > 0


def test_no_pinned_memory_and_no_pin_memory_warning_on_cpu(tmp_path, tiny_config, tiny_datasets):
    import warnings

    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets)
    assert trainer.args.dataloader_pin_memory is False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert not [w for w in caught if "pin_memory" in str(w.message)]


def test_max_grad_norm_zero_leaves_the_steps_between_modalities_unclipped(tmp_path, tiny_config, tiny_datasets) -> None:
    """`max_grad_norm=0` turns clipping off, for the optimizer step between two modalities' steps too (a bound of
    0 would zero the gradients): after one batch, the first modality of the order has learned."""
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, max_steps=1, max_grad_norm=0.0, initial_order="a,b")
    before = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    after = trainer.model.state_dict()
    for name in ("adapters.a.proj.weight", "adapters.b.proj.weight"):
        assert not torch.equal(before[name], after[name]), name


@pytest.mark.parametrize("initial", ["declared", ""])
def test_declared_initial_order_is_the_config_order(tmp_path, tiny_config, tiny_datasets, initial):
    """`initial_order="declared"` (or empty) starts from the order the config declares its modalities in."""
    trainer = make_trainer(tmp_path, tiny_config, tiny_datasets, initial_order=initial)
    assert trainer.order_state.order == ["a", "b"]


def test_unvalidated_datasets_keep_the_models_per_batch_value_check(tmp_path, tiny_config, tiny_datasets):
    """With `check_values=False` the trainer skips its up-front scan, so each batch must still be scanned by the
    model: a NaN in a present feature stops training with the model's message (not a NaN loss)."""
    train, _ = tiny_datasets
    poisoned = train.map(lambda row, i: {"a": [float("nan")] * 6} if i == 5 else {}, with_indices=True)
    torch.manual_seed(0)
    trainer = BalanceTrainer(
        model=BalancedModel(tiny_config),
        args=make_args(tmp_path, num_train_epochs=1, order_schedule="fixed"),
        train_dataset=poisoned,
        check_values=False,
    )
    with pytest.raises(ValueError, match=r"feature 'a' holds NaN or inf in present samples \[\d+\]"):
        trainer.train()
