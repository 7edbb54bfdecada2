"""OGM / OGM-GE: the coefficient of the dominant modality (both forms), the others untouched, the modulation
window, the enhancement noise's scale and the registry's SGD optimiser.

The coefficients are checked against values computed by hand from the released `main.py` of
GeWu-Lab/OGM-GE_CVPR2022: `coeff = 1 - tanh(alpha * relu(ratio))` for the dominant modality.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from baseline_helpers import training_args
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import TrainerControl, TrainerState

from mllm_balance import BalanceTrainer
from mllm_balance.baselines import (
    OGMCallback,
    OGMConfig,
    get_baseline,
    modulate_gradients,
    ogm_coefficients,
    ogm_scores,
)

# scores 0.9 / 0.3: rho = 3 for the dominant modality
# release: 1 - tanh(alpha * 3); shifted: 1 - tanh(alpha * 2)
HAND = {
    0.1: {"release": 0.7086873875484091, "shifted": 0.802624679775096},
    0.8: {"release": 0.016325142306319762, "shifted": 0.07833144559352867},
}


def test_defaults_are_the_release_form_and_the_readme_alpha():
    config = OGMConfig(modality_dims={"a": 2, "b": 2}, num_labels=2)
    assert config.form == "release"
    assert config.alpha == 0.1
    assert config.end_fraction == 0.5 and config.end_epoch is None and config.start_epoch == 0
    coeff, _ = ogm_coefficients({"text": 0.9, "image": 0.3}, alpha=0.1)  # default form
    assert coeff["text"] == pytest.approx(HAND[0.1]["release"], rel=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.8])
@pytest.mark.parametrize("form", ["release", "shifted"])
def test_dominant_coefficient_matches_the_hand_computed_value_and_others_stay_one(alpha, form):
    coeff, ratios = ogm_coefficients({"text": 0.9, "image": 0.3}, alpha=alpha, form=form)
    assert ratios == pytest.approx({"text": 3.0, "image": 1 / 3})
    assert coeff["text"] == pytest.approx(HAND[alpha][form], rel=1e-12)
    assert coeff["image"] == 1.0


def test_dominance_follows_the_scores_not_the_order():
    coeff, _ = ogm_coefficients({"image": 0.3, "text": 0.9}, alpha=0.1)
    assert coeff == pytest.approx({"image": 1.0, "text": HAND[0.1]["release"]}, rel=1e-12)


def test_former_form_names_are_accepted():
    scores = {"text": 0.9, "image": 0.3}
    assert ogm_coefficients(scores, 0.8, "code") == ogm_coefficients(scores, 0.8, "release")
    assert ogm_coefficients(scores, 0.8, "paper") == ogm_coefficients(scores, 0.8, "shifted")
    with pytest.raises(ValueError, match="form"):
        ogm_coefficients(scores, 0.8, "other")
    for name in ("code", "paper", "release", "shifted"):
        OGMConfig(modality_dims={"a": 2}, num_labels=2, form=name)


def test_a_balanced_pair_is_modulated_in_the_release_form_only():
    release, _ = ogm_coefficients({"a": 0.5, "b": 0.5}, alpha=0.1)
    assert release == pytest.approx({"a": 0.9003320053750442, "b": 1.0}, rel=1e-12)  # 1 - tanh(0.1)
    shifted, _ = ogm_coefficients({"a": 0.5, "b": 0.5}, alpha=0.1, form="shifted")
    assert shifted == {"a": 1.0, "b": 1.0}


def test_n_modalities_divide_by_the_mean_of_the_others():
    scores = {"a": 0.2, "b": 0.8, "c": 0.4}
    coeff, ratios = ogm_coefficients(scores, alpha=0.7)
    assert ratios["b"] == pytest.approx(0.8 / 0.3)
    assert coeff == pytest.approx({"a": 1.0, "b": 0.04670903295395423, "c": 1.0}, rel=1e-9)  # 1 - tanh(0.7 * 8/3)
    shifted, _ = ogm_coefficients(scores, alpha=0.7, form="shifted")
    assert shifted == pytest.approx({"a": 1.0, "b": 0.17679935441411687, "c": 1.0}, rel=1e-9)  # 1 - tanh(0.7 * 5/3)


def make_model(**overrides):
    spec = get_baseline("ogm_ge")
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 4, "b": 3}, 3, hidden_size=6, alpha=0.8, **overrides))


@pytest.mark.parametrize("form", ["release", "shifted"])
def test_training_forward_scores_the_true_class_from_the_unimodal_parts(form):
    model = make_model(form=form).train()
    g = torch.Generator().manual_seed(3)
    x = {"a": torch.randn(10, 4, generator=g), "b": torch.randn(10, 3, generator=g)}
    y = torch.randint(0, 3, (10,), generator=g)
    model(x, labels=y)
    weight, bias = model.head.classifier.weight, model.head.classifier.bias
    expected = {}
    for i, m in enumerate(["a", "b"]):
        h = model.adapters[m](x[m])
        logits = h @ weight[:, 6 * i : 6 * (i + 1)].T + bias / 2  # W_m h_m + b / n
        expected[m] = torch.softmax(logits, -1)[torch.arange(10), y].mean().item()
    assert model.ogm_state["scores"] == pytest.approx(expected, rel=1e-5)
    dominant = max(expected, key=expected.get)
    other = "b" if dominant == "a" else "a"
    rho = expected[dominant] / expected[other]
    shift = rho if form == "release" else rho - 1
    assert model.ogm_state["coefficients"][dominant] == pytest.approx(1 - math.tanh(0.8 * shift), rel=1e-5)
    assert model.ogm_state["coefficients"][other] == 1.0


def test_scores_use_only_the_samples_that_have_the_modality():
    logits = {"a": torch.tensor([[5.0, 0.0], [0.0, 5.0]]), "b": torch.tensor([[5.0, 0.0], [-9.0, 9.0]])}
    present = {"a": torch.tensor([True, True]), "b": torch.tensor([True, False])}
    scores = ogm_scores(logits, torch.tensor([0, 0]), present)
    p = torch.softmax(torch.tensor([5.0, 0.0]), -1)[0].item()
    assert scores["b"] == pytest.approx(p)
    assert scores["a"] == pytest.approx((p + (1 - p)) / 2)


def test_without_enhancement_the_gradient_is_only_scaled():
    p = torch.nn.Parameter(torch.zeros(50, 40))
    q = torch.nn.Parameter(torch.zeros(30))
    g_p, g_q = torch.randn(50, 40), torch.randn(30)
    p.grad, q.grad = g_p.clone(), g_q.clone()
    modulate_gradients({"a": [p], "b": [q]}, {"a": 0.25, "b": 1.0}, enhancement=False)
    torch.testing.assert_close(p.grad, 0.25 * g_p)
    torch.testing.assert_close(q.grad, g_q)


@pytest.mark.parametrize("noise_scale", [1.0, 2.5])
@pytest.mark.parametrize("k", [0.0, 0.4])
def test_enhancement_noise_is_zero_mean_with_the_gradient_std(noise_scale, k):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(300, 300))
    grad = 3.0 * torch.randn(300, 300) + 1.0  # std 3
    p.grad = grad.clone()
    modulate_gradients({"a": [p]}, {"a": k}, enhancement=True, noise_scale=noise_scale)
    noise = p.grad - k * grad
    expected_std = noise_scale * grad.std().item()
    assert noise.std().item() == pytest.approx(expected_std, rel=0.02)
    assert abs(noise.mean().item()) < 0.02 * expected_std
    assert not torch.allclose(p.grad, k * grad)


def test_modulation_window_is_the_first_half_of_the_run_inclusive_as_released():
    model = make_model()
    # the release's 100 epochs: modulation_starts 0 <= epoch <= modulation_ends 50
    assert [e for e in range(100) if model.modulation_active(e, 100)] == list(range(51))
    assert [e for e in range(20) if model.modulation_active(e, 20)] == list(range(11))
    assert [e for e in range(20) if make_model(end_fraction=0.25).modulation_active(e, 20)] == list(range(6))
    assert all(make_model(end_fraction=None).modulation_active(e, 20) for e in range(20))
    # an epoch bound replaces the fraction
    assert [e for e in range(20) if make_model(end_epoch=3).modulation_active(e, 20)] == [0, 1, 2, 3]
    assert [e for e in range(20) if make_model(start_epoch=2, end_epoch=3).modulation_active(e, 20)] == [2, 3]
    with pytest.raises(ValueError, match="num_epochs"):
        model.modulation_active(0)
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="end_fraction"):
        make_model(end_fraction=1.5)


def grads_after_callback(model, x, y, state):
    model.zero_grad()
    model(x, labels=y).loss.backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    OGMCallback().on_pre_optimizer_step(None, state, TrainerControl(), model=model)
    return before, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def batch(seed=1, n=12):
    g = torch.Generator().manual_seed(seed)
    x = {"a": torch.randn(n, 4, generator=g), "b": torch.randn(n, 3, generator=g)}
    return x, torch.randint(0, 3, (n,), generator=g)


def assert_modulated(model, before, after):
    coeff = model.ogm_state["coefficients"]
    assert min(coeff.values()) < 1.0
    for n in before:
        m = n.split(".")[1] if n.startswith("adapters.") else None
        factor = coeff[m] if m else 1.0  # the fusion head is never modulated
        torch.testing.assert_close(after[n], factor * before[n])


@pytest.mark.parametrize("epoch", [0.0, 2.5, 5.99, 6.0, 9.5])
def test_callback_modulates_only_in_the_first_half_of_the_run(epoch):
    model = make_model(gradient_enhancement=False).train()
    x, y = batch()
    before, after = grads_after_callback(model, x, y, TrainerState(epoch=epoch, num_train_epochs=10))
    if epoch < 6:  # epochs 0-5 of 10
        assert_modulated(model, before, after)
    else:
        assert all(torch.equal(before[n], after[n]) for n in before)


def test_callback_modulates_only_inside_the_modulation_epochs():
    model = make_model(gradient_enhancement=False, start_epoch=1, end_epoch=2).train()
    x, y = batch()
    before, after = grads_after_callback(model, x, y, TrainerState(epoch=0.5, num_train_epochs=10))
    assert all(torch.equal(before[n], after[n]) for n in before)  # epoch 0: outside [1, 2]
    before, after = grads_after_callback(model, x, y, TrainerState(epoch=1.5, num_train_epochs=10))
    assert_modulated(model, before, after)
    before, after = grads_after_callback(model, x, y, TrainerState(epoch=3.0, num_train_epochs=10))
    assert all(torch.equal(before[n], after[n]) for n in before)


@pytest.mark.parametrize("name", ["ogm", "ogm_ge"])
def test_registry_trains_ogm_with_the_released_sgd(tmp_path, datasets, name):
    spec = get_baseline(name)
    assert spec.learning_rate == 3e-2
    assert "learning_rate" not in spec.training  # callers pass their own next to **training
    torch.manual_seed(0)
    model = spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8))
    args = training_args(tmp_path, **spec.training_arguments(num_train_epochs=1))
    trainer = BalanceTrainer(model=model, args=args, train_dataset=datasets[0], callbacks=spec.make_callbacks())
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.SGD
    groups = optimizer.param_groups
    assert all(g["momentum"] == 0.9 and g["lr"] == 3e-2 and not g["nesterov"] for g in groups)
    decay = [g for g in groups if g["params"] and g["weight_decay"] > 0]
    assert decay and all(g["weight_decay"] == 1e-4 for g in decay)
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len([p for p in model.parameters() if p.requires_grad])
    # a learning rate of the caller replaces the base one, the optimiser stays
    assert spec.training_arguments(learning_rate=3e-2)["learning_rate"] == 3e-2
    assert spec.training_arguments(optim="adamw_torch")["optim"] == "sgd"


def test_other_baselines_keep_the_callers_optimiser():
    spec = get_baseline("concat")
    assert spec.learning_rate is None
    assert "optim" not in spec.training_arguments(learning_rate=1e-3)
    assert spec.training_arguments(learning_rate=1e-3)["learning_rate"] == 1e-3


def test_a_modality_absent_from_every_row_scores_zero_without_warnings():
    logits = {"a": torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0]]), "b": torch.tensor([[1.0, 0.0, 0.0]] * 2)}
    present = {"a": torch.tensor([True, True]), "b": torch.tensor([False, False])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the class axis is named: no implicit-dimension warning
        scores = ogm_scores(logits, torch.tensor([0, 2]), present)
    p0 = math.exp(2) / (math.exp(2) + 1 + math.exp(1))
    p1 = math.exp(3) / (1 + math.exp(1) + math.exp(3))
    assert scores == pytest.approx({"a": (p0 + p1) / 2, "b": 0.0}, rel=1e-6)


@pytest.mark.parametrize("form", ["release", "shifted"])
def test_a_single_modality_is_never_modulated(form):
    coeff, ratios = ogm_coefficients({"a": 0.7}, alpha=0.8, form=form)
    assert coeff == {"a": 1.0} and ratios == {"a": 1.0}


def test_training_forward_keeps_the_scores_ratios_and_coefficients():
    model = make_model().train()
    x, y = batch()
    model(x, labels=y)
    assert set(model.ogm_state) == {"scores", "ratios", "coefficients"}
    s = model.ogm_state["scores"]
    assert model.ogm_state["ratios"] == pytest.approx({"a": s["a"] / s["b"], "b": s["b"] / s["a"]}, rel=1e-12)


def test_a_fraction_without_the_run_length_is_refused_with_the_full_message():
    with pytest.raises(ValueError, match=r"^end_fraction needs the number of training epochs \(num_epochs\)$"):
        make_model().modulation_active(0)


def test_callback_without_any_run_length_follows_the_epoch_bounds():
    """Neither `state.num_train_epochs` nor `args.num_train_epochs` (args without the attribute): an `end_epoch`
    window needs no run length."""
    model = make_model(gradient_enhancement=False, end_epoch=1).train()
    x, y = batch()
    before, after = grads_after_callback(model, x, y, TrainerState(epoch=0.5))  # args None, num_train_epochs 0
    assert_modulated(model, before, after)
