"""BalanceTrainer + ShapleyOrderCallback: order updates, logging, checkpoints and resumption."""

from __future__ import annotations

import json
import os

import pytest
import torch
from feature_helpers import make_args
from transformers import TrainerCallback

from mllm_balance import BalancedModel, BalanceTrainer, build_feature_dataset


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
