"""Resuming BalanceTrainer: the same weights, RNG, data order and order state as the run never interrupted;
`resume_from_checkpoint="last"` and what is refused as a checkpoint."""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from datasets import DatasetDict
from feature_helpers import make_args, make_features
from transformers import TrainerCallback

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.checkpoints import resolve_checkpoint
from mllm_balance.recipe import parse_recipe_args, run_recipe

ROOT = Path(__file__).resolve().parents[1]


class RecordingTrainer(BalanceTrainer):
    """Records the labels of every training batch, keyed by the step it trains."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.batches[self.state.global_step + 1] = inputs["labels"].tolist()
        return super().training_step(model, inputs, num_items_in_batch)


class StopAtStep(TrainerCallback):
    """Ends training after `step` (an interruption; the Trainer still saves what its save strategy asks for)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def dropout_config(hidden_size: int = 8) -> BalanceConfig:
    # dropout draws random numbers every step: an RNG state not restored on resume shows in the weights
    return BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=hidden_size, adapter_dropout=0.3)


def make_trainer(out, datasets, config=None, callbacks=(), **overrides) -> RecordingTrainer:
    torch.manual_seed(0)
    trainer = RecordingTrainer(
        model=BalancedModel(config or dropout_config()),
        args=make_args(out, **{"num_train_epochs": 3, "initial_order": "a,b", **overrides}),
        train_dataset=datasets[0],
        eval_dataset=datasets[1],
        callbacks=list(callbacks),
    )
    trainer.batches = {}
    return trainer


def assert_same_run(resumed: RecordingTrainer, full: RecordingTrainer, first_resumed_step: int) -> None:
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
    assert asdict(resumed.order_state) == asdict(full.order_state)
    assert resumed.model.config.train_order == full.model.config.train_order
    # the data order of the steps trained after the resume, and the RNG state the run ends with
    assert min(resumed.batches) == first_resumed_step
    assert resumed.batches == {s: b for s, b in full.batches.items() if s >= first_resumed_step}
    assert resumed.final_rng.equal(full.final_rng)


def train(trainer: RecordingTrainer, **kwargs) -> RecordingTrainer:
    trainer.train(**kwargs)
    trainer.final_rng = torch.random.get_rng_state()
    return trainer


@pytest.mark.parametrize(
    ("save", "stop_step", "checkpoint_step"),
    [({"save_strategy": "epoch"}, 12, 12), ({"save_strategy": "steps", "save_steps": 4}, 8, 8)],
    ids=["after-epoch-2", "mid-epoch-2"],
)
def test_resumed_run_ends_like_the_uninterrupted_one(tmp_path, tiny_datasets, save, stop_step, checkpoint_step):
    full = train(make_trainer(tmp_path / "full", tiny_datasets))  # 96 rows / 16 = 6 steps per epoch
    assert len(full.batches) == 18

    cut = train(make_trainer(tmp_path / "cut", tiny_datasets, callbacks=[StopAtStep(stop_step)], **save))
    assert cut.state.global_step == stop_step
    checkpoint = tmp_path / "cut" / f"checkpoint-{checkpoint_step}"
    saved = json.loads((checkpoint / "balance_state.json").read_text())
    assert saved["order_history"] == full.order_state.order_history[: (checkpoint_step + 5) // 6]

    resumed = train(make_trainer(tmp_path / "cut", tiny_datasets, **save), resume_from_checkpoint="last")
    assert_same_run(resumed, full, first_resumed_step=checkpoint_step + 1)
    assert len(resumed.order_state.shapley_history) == 3


def test_the_comparison_sees_an_rng_state_not_restored(tmp_path, tiny_datasets):
    """Resumed without its saved RNG state, the same checkpoint ends elsewhere: the check above can fail."""
    full = train(make_trainer(tmp_path / "full", tiny_datasets))
    cut = make_trainer(tmp_path / "cut", tiny_datasets, callbacks=[StopAtStep(12)], save_strategy="epoch")
    cut.train()
    (tmp_path / "cut" / "checkpoint-12" / "rng_state.pth").unlink()
    resumed = train(make_trainer(tmp_path / "cut", tiny_datasets), resume_from_checkpoint="last")
    with pytest.raises(AssertionError):
        assert_same_run(resumed, full, first_resumed_step=13)


@pytest.fixture
def two_checkpoints(tmp_path, tiny_datasets):
    """An output folder with `checkpoint-6` and `checkpoint-12` (two epochs, one checkpoint each)."""
    trainer = make_trainer(tmp_path / "out", tiny_datasets, num_train_epochs=2, save_strategy="epoch")
    trainer.train()
    return tmp_path / "out", trainer.model


@pytest.mark.parametrize("value", ["last", "true", "LAST", True])
def test_last_picks_the_newest_checkpoint(two_checkpoints, value):
    out, model = two_checkpoints
    assert resolve_checkpoint(value, out, model) == str(out / "checkpoint-12")


@pytest.mark.parametrize("cut_short", ["missing", "truncated"])
def test_last_skips_a_checkpoint_cut_short_while_being_written(two_checkpoints, cut_short, caplog):
    out, model = two_checkpoints
    state = out / "checkpoint-12" / "trainer_state.json"
    if cut_short == "missing":
        state.unlink()
    else:
        state.write_text(state.read_text()[:40])
    with caplog.at_level(logging.WARNING, logger="mllm_balance.checkpoints"):
        assert resolve_checkpoint("last", out, model) == str(out / "checkpoint-6")
    assert "checkpoint-12" in caplog.text and "trainer_state.json" in caplog.text


@pytest.mark.parametrize("value", [None, False, "", "false", "None"])
def test_values_that_mean_a_fresh_run(two_checkpoints, value):
    out, model = two_checkpoints
    assert resolve_checkpoint(value, out, model) is None


def test_last_without_a_checkpoint_is_an_error(tmp_path, tiny_datasets):
    trainer = make_trainer(tmp_path / "empty", tiny_datasets)
    with pytest.raises(ValueError, match=r"empty holds no complete checkpoint-<step> folder"):
        trainer.train(resume_from_checkpoint="last")
    assert trainer.state.global_step == 0


def _drop(name):
    def damage(folder: Path) -> None:
        (folder / name).unlink()

    return damage


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda folder: shutil.rmtree(folder), "the folder does not exist"),
        (_drop("trainer_state.json"), "trainer_state.json is missing"),
        (_drop("balance_state.json"), "balance_state.json (the modality order state) is missing"),
        (_drop("model.safetensors"), "model.safetensors (the weights) is missing"),
        (lambda folder: (folder / "model.safetensors").write_bytes(b"\x00" * 9), "model.safetensors is unreadable"),
    ],
    ids=["no-folder", "no-trainer-state", "no-order-state", "no-weights", "broken-weights"],
)
def test_a_folder_that_is_not_a_checkpoint_is_refused(two_checkpoints, tiny_datasets, tmp_path, damage, named):
    out, _ = two_checkpoints
    folder = tmp_path / "copy"
    shutil.copytree(out / "checkpoint-12", folder)
    damage(folder)
    trainer = make_trainer(tmp_path / "run", tiny_datasets)
    with pytest.raises(ValueError) as caught:
        trainer.train(resume_from_checkpoint=str(folder))
    assert str(folder) in str(caught.value) and named in str(caught.value)
    assert trainer.state.global_step == 0


def test_a_checkpoint_of_another_model_config_is_refused(two_checkpoints, tiny_datasets, tmp_path):
    out, _ = two_checkpoints
    trainer = make_trainer(tmp_path / "run", tiny_datasets, config=dropout_config(hidden_size=16))
    with pytest.raises(ValueError, match=r"other shapes \(weights of another model config: adapters\.a\.proj"):
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-12"))


def test_a_checkpoint_of_other_modalities_is_refused(two_checkpoints, feature_maker, tmp_path):
    out, _ = two_checkpoints
    data = build_feature_dataset(*feature_maker(32, seed=1, dims=(("a", 6), ("c", 5))))
    config = BalanceConfig(modality_dims={"a": 6, "c": 5}, num_labels=3, hidden_size=8)
    trainer = BalanceTrainer(model=BalancedModel(config), args=make_args(tmp_path / "run"), train_dataset=data,
                             eval_dataset=data)  # fmt: skip
    with pytest.raises(ValueError) as caught:
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-12"))
    message = str(caught.value)
    assert re.search(r"orders the modalities \['[ab]', '[ab]'\], the model has \['a', 'c'\]", message)
    assert re.search(r"tensors this model does not have \(adapters\.b\.", message)


def test_recipes_pass_resume_from_checkpoint_to_training(tmp_path, monkeypatch):
    """run_recipe (every dataset recipe) and the digits recipe hand the flag to `trainer.train`: a wrong folder is
    refused instead of silently training from scratch."""
    features = tmp_path / "features"
    DatasetDict({s: build_feature_dataset(*make_features(16, seed=i)) for i, s in
                 enumerate(("train", "validation", "test"))}).save_to_disk(str(features))  # fmt: skip
    missing = tmp_path / "nowhere" / "checkpoint-3"
    flags = ["--output_dir", str(tmp_path / "out"), "--use_cpu", "true", "--resume_from_checkpoint", str(missing)]
    with pytest.raises(ValueError, match=rf"{missing} is not a BalanceTrainer checkpoint"):
        run_recipe(*parse_recipe_args(None, ["--features_dir", str(features), *flags]))

    monkeypatch.syspath_prepend(str(ROOT / "recipes"))
    monkeypatch.setattr(sys, "argv", ["train_digits.py", *flags, "--hidden_size", "4"])
    import train_digits

    with pytest.raises(ValueError, match=rf"{missing} is not a BalanceTrainer checkpoint"):
        train_digits.main()
