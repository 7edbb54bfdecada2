"""The baselines' shared forward: label and value checks, the errors of `active_modality`, the fields of the output
and the arguments of `training_loss`; `TrainingProgressCallback`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainerControl, TrainerState

from mllm_balance.baselines import TrainingProgressCallback, get_baseline
from mllm_balance.baselines.concat import ConcatModel

X = {"a": torch.randn(4, 6, generator=torch.Generator().manual_seed(0)),
     "b": torch.randn(4, 5, generator=torch.Generator().manual_seed(1))}  # fmt: skip


def build(name: str):
    spec = get_baseline(name)
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8))


@pytest.mark.parametrize("training", [True, False])
def test_labels_outside_the_label_set_are_refused(training: bool):
    """A label past `num_labels - 1` (here 3 for labels 0..2) is refused in both modes."""
    model = build("concat").train(training)
    with pytest.raises(ValueError, match="label"):
        model(X, labels=torch.tensor([0, 1, 2, 3]))


def test_active_modality_errors():
    """`active_modality` is refused at evaluation and when it names no modality of the model."""
    model = build("mla")
    with pytest.raises(ValueError, match="^active_modality is only meaningful in training mode$"):
        model.eval()(X, labels=torch.tensor([0, 1, 2, 0]), active_modality="a")
    with pytest.raises(ValueError, match="'c' is not one of"):
        model.train()(X, labels=torch.tensor([0, 1, 2, 0]), active_modality="c")


def test_output_without_labels_has_no_loss_and_returns_the_fusion():
    """Without labels the loss is None; the concat baseline's fused vector is the concatenated adapted features."""
    model = build("concat").eval()
    with torch.no_grad():
        out = model(X)
        hand = torch.cat([model.adapters[m](X[m]) for m in ("a", "b")], dim=-1)  # (4, 16)
    assert out.loss is None
    torch.testing.assert_close(out.fused, hand)


def test_a_joint_baseline_refuses_an_alternating_step_naming_its_class():
    """A baseline without alternating steps refuses `active_modality` with its own class name in the message."""
    model = build("concat").train()
    message = r"^ConcatModel trains jointly: use alternation='joint' \(active_modality='a' was given\)$"
    with pytest.raises(ValueError, match=message):
        model(X, labels=torch.tensor([0, 1, 2, 0]), active_modality="a")


def test_value_checks_refuse_nan_and_are_skipped_when_turned_off():
    """NaN in a present row is refused by default; with `check_values=False` neither features nor labels are scanned."""
    model = build("concat").eval()
    bad = {"a": X["a"].clone(), "b": X["b"]}
    bad["a"][0, 2] = float("nan")
    with pytest.raises(ValueError, match=r"feature 'a' holds NaN or inf in present samples \[0\]"):
        model(bad)
    # unchecked: the NaN reaches row 0's logits, and torch's ignored label -100 leaves that row out of the loss
    labels = torch.tensor([-100, 1, 2, 0])
    with torch.no_grad():
        out = model(bad, labels=labels, check_values=False)
        hand = model.head.classifier(torch.cat([model.adapters[m](bad[m]) for m in ("a", "b")], dim=-1))
    assert out.logits[0].isnan().all() and out.logits[1:].isfinite().all()
    torch.testing.assert_close(out.logits[1:], hand[1:])
    torch.testing.assert_close(out.loss, F.cross_entropy(hand[1:], labels[1:]))


class RawFeatureLossModel(ConcatModel):
    """A user's baseline whose objective also reads the raw features: a penalty on the mean of modality `a`."""

    def training_loss(self, adapted, present, labels, logits, features):
        return F.cross_entropy(logits, labels) + features["a"].mean().abs()


def test_training_loss_receives_the_raw_features():
    """`forward` hands the batch's own features to `training_loss`, the hook a subclass overrides."""
    spec = get_baseline("concat")
    torch.manual_seed(0)
    model = RawFeatureLossModel(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8)).train()
    labels = torch.tensor([0, 1, 2, 0])
    out = model(X, labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels) + X["a"].mean().abs())


def progress_after(model, global_step: int, max_steps: int):
    """The model's `train_progress` after the callback ran at the start of step `global_step` of `max_steps`."""
    state = TrainerState(global_step=global_step, max_steps=max_steps)
    TrainingProgressCallback().on_step_begin(None, state, TrainerControl(), model=model)
    return getattr(model, "train_progress", None)


def test_training_progress_is_clamped_and_set_only_on_models_with_a_schedule():
    """Progress is steps done over `max_steps`, at most 1 (a run resumed past a smaller `max_steps`); a model without
    `train_progress`, no model, or an unknown `max_steps` (0) leaves everything as it was."""
    lfm = build("lfm")
    assert progress_after(lfm, 100, 400) == 0.25
    assert progress_after(lfm, 600, 400) == 1.0
    assert progress_after(lfm, 100, 0) == 1.0  # unchanged: no step count to divide by
    concat = build("concat")
    assert progress_after(concat, 100, 400) is None and not hasattr(concat, "train_progress")
    state = TrainerState(global_step=100, max_steps=400)
    TrainingProgressCallback().on_step_begin(None, state, TrainerControl(), model=None)  # nothing to set, no error
