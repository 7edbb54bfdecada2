"""OGM / OGM-GE: coefficient of the dominant modality, the others untouched, and the enhancement noise's scale."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import TrainerControl, TrainerState

from mllm_balance.baselines import OGMCallback, get_baseline, modulate_gradients, ogm_coefficients, ogm_scores


@pytest.mark.parametrize("alpha", [0.1, 0.5, 2.0])
def test_dominant_coefficient_matches_the_paper_formula_and_others_stay_one(alpha):
    scores = {"text": 0.9, "image": 0.3}
    coeff, ratios = ogm_coefficients(scores, alpha=alpha, form="paper")
    rho = 0.9 / 0.3
    assert ratios["text"] == pytest.approx(rho)
    assert coeff["text"] == pytest.approx(1 - math.tanh(alpha * max(rho - 1, 0)))
    assert coeff["image"] == 1.0
    code, _ = ogm_coefficients(scores, alpha=alpha, form="code")  # the released script's form
    assert code["text"] == pytest.approx(1 - math.tanh(alpha * rho))
    assert code["image"] == 1.0


def test_balanced_modalities_are_not_modulated_in_the_paper_form():
    coeff, _ = ogm_coefficients({"a": 0.5, "b": 0.5}, alpha=1.0)
    assert coeff == {"a": 1.0, "b": 1.0}


def test_n_modalities_divide_by_the_mean_of_the_others():
    coeff, ratios = ogm_coefficients({"a": 0.2, "b": 0.8, "c": 0.4}, alpha=0.7)
    rho = 0.8 / ((0.2 + 0.4) / 2)
    assert ratios["b"] == pytest.approx(rho)
    assert coeff == pytest.approx({"a": 1.0, "b": 1 - math.tanh(0.7 * (rho - 1)), "c": 1.0})


def make_model(**overrides):
    spec = get_baseline("ogm_ge")
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 4, "b": 3}, 3, hidden_size=6, ogm_alpha=0.8, **overrides))


def test_training_forward_scores_the_true_class_from_the_unimodal_parts():
    model = make_model().train()
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
    assert model.ogm_state["coefficients"][dominant] == pytest.approx(1 - math.tanh(0.8 * (rho - 1)), rel=1e-5)
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


def test_callback_modulates_only_inside_the_modulation_epochs():
    model = make_model(ogm_gradient_enhancement=False, ogm_start_epoch=1, ogm_end_epoch=2).train()
    g = torch.Generator().manual_seed(1)
    x = {"a": torch.randn(12, 4, generator=g), "b": torch.randn(12, 3, generator=g)}
    y = torch.randint(0, 3, (12,), generator=g)

    def grads_after_callback(epoch):
        model.zero_grad()
        model(x, labels=y).loss.backward()
        before = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        OGMCallback().on_pre_optimizer_step(None, TrainerState(epoch=epoch), TrainerControl(), model=model)
        return before, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    before, after = grads_after_callback(epoch=0.5)  # epoch 0: outside [1, 2]
    assert all(torch.equal(before[n], after[n]) for n in before)
    before, after = grads_after_callback(epoch=1.5)
    coeff = model.ogm_state["coefficients"]
    assert min(coeff.values()) < 1.0
    for n in before:
        m = n.split(".")[1] if n.startswith("adapters.") else None
        factor = coeff[m] if m else 1.0  # the fusion head is never modulated
        torch.testing.assert_close(after[n], factor * before[n])
