"""Every baseline: same inputs, trains through BalanceTrainer, scores coalitions, writes the results format."""

from __future__ import annotations

import re

import pytest
import torch
from baseline_helpers import training_args
from huggingface_hub.errors import StrictDataclassClassValidationError

from mllm_balance import BalanceTrainer
from mllm_balance.baselines import BASELINES, OGMConfig, get_baseline
from mllm_balance.results import trainer_results

FEATURE_BASELINES = [name for name in BASELINES if name != "joint"]  # Joint has its own tests


def build(name, **overrides):
    spec = get_baseline(name)
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8, **overrides))


@pytest.mark.parametrize("name", FEATURE_BASELINES)
def test_trains_and_reports_the_results_format(tmp_path, datasets, name):
    spec = get_baseline(name)
    model = build(name)
    # one learning rate for every method (the helper's), so the methods with a base rate of their own (OGM, LFM:
    # SGD at 1e-2, for ~20-epoch runs) also learn in these 2 short epochs
    args = training_args(tmp_path, **spec.training_arguments(num_train_epochs=2, learning_rate=5e-2))
    trainer = BalanceTrainer(model=model, args=args, train_dataset=datasets[0], eval_dataset=datasets[1],
                             callbacks=spec.make_callbacks())  # fmt: skip
    trainer.train()
    results = trainer_results(trainer, dataset="tiny", method=name)
    assert results["method"] == name
    assert set(results["accuracy"]["per_modality"]) == {"a", "b"}
    assert results["accuracy"]["fusion"] > 50  # "a" alone carries the label well
    scores = trainer.score_modalities()
    acc = scores["accuracy"]
    assert sum(results["shapley"].values()) == pytest.approx(acc[frozenset("ab")] - acc[frozenset()])
    assert len(trainer.state.log_history) > 0 and trainer.order_state.shapley_history  # scored every epoch


@pytest.mark.parametrize("name", list(BASELINES))
def test_subset_scoring_agrees_with_the_forward_pass(name):
    if name == "joint":
        model = get_baseline("joint").build_model(get_baseline("joint").build_config({"a": 6, "b": 5}, 3))
    else:
        model = build(name)
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(6, 6, generator=g), "b": torch.randn(6, 5, generator=g)}
    mask = {"a": torch.tensor([True, True, True, False, False, True]), "b": torch.ones(6, dtype=torch.bool)}
    with torch.no_grad():
        full = model(x, modality_mask=mask).logits
        only_b = model({"b": x["b"]}).logits
    subsets = model.subset_logits(x, [{"a", "b"}, {"a"}, {"b"}], modality_mask=mask)
    torch.testing.assert_close(subsets[frozenset("ab")], full)
    torch.testing.assert_close(subsets[frozenset("b")], only_b)
    a_only = subsets[frozenset("a")]
    assert a_only[~mask["a"]].isnan().all() and not a_only[mask["a"]].isnan().any()
    # a sample missing "a" is predicted from "b" alone
    torch.testing.assert_close(full[~mask["a"]], only_b[~mask["a"]])


def test_unknown_baseline_and_bad_config_are_refused():
    with pytest.raises(ValueError, match="unknown baseline"):
        get_baseline("nope")
    # config validation errors come wrapped by the strict dataclass (as for BalanceConfig)
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="form"):
        OGMConfig(modality_dims={"a": 2}, num_labels=2, form="other")
    with pytest.raises(ValueError, match="method"):
        get_baseline("sum").build_model(get_baseline("concat").build_config({"a": 2}, 2))


def test_joint_baselines_refuse_alternating_steps():
    model = build("concat").train()
    with pytest.raises(ValueError, match="alternation='joint'"):
        model({"a": torch.randn(2, 6), "b": torch.randn(2, 5)}, labels=torch.tensor([0, 1]), active_modality="a")


def test_training_arguments_of_a_method_without_a_base_learning_rate():
    # no base rate: the caller's learning rate (or the trainer's default) is left alone, not set to None
    for name in ("sum", "concat", "late_fusion", "crmt", "joint"):
        assert get_baseline(name).training_arguments(num_train_epochs=2) == {
            "num_train_epochs": 2,
            "alternation": "joint",
            "order_schedule": "fixed",
        }, name
    assert get_baseline("mla").training_arguments() == {"alternation": "step", "order_schedule": "fixed"}


def test_a_config_of_another_method_is_refused_naming_both():
    config = get_baseline("concat").build_config({"a": 2}, 2)
    message = "a ConcatConfig (method 'concat') cannot build the 'sum' baseline, which takes a SumConfig"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        get_baseline("sum").build_model(config)
