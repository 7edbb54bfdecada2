"""CRMT's stage-2 certified bound and LFM's contrastive option against hand computations written sample by sample
(what test_lfm_crmt.py and test_lfm.py do not already cover).

Each test names the one-line mutant of the package it is meant to catch (issue 13)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mllm_balance.baselines import get_baseline
from mllm_balance.baselines.lfm import info_nce, lfm_release_weight


def batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    x = {"a": torch.randn(n, 6, generator=g), "b": torch.randn(n, 5, generator=g)}
    return x, torch.randint(0, 3, (n,), generator=g)


def build(name, **overrides):
    spec = get_baseline(name)
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8, **overrides))


# ------------------------------------------------------------------ CRMT stage 2 (mutant 7)
INTEGRATION = {"a": [0.3, 0.7, 1.2], "b": [0.9, 0.4, 0.6]}
BIAS = [0.1, -0.2, 0.05]
LIPSCHITZ = [[1.0, 2.0, 0.5], [0.7, 1.5, 3.0]]  # rows: modalities a, b; columns: classes
MASK = {
    "a": torch.tensor([1, 1, 0, 1, 1, 1, 1, 0], dtype=torch.bool),
    "b": torch.tensor([1, 0, 1, 1, 1, 0, 1, 1], dtype=torch.bool),
}


def stage2_model():
    model = build("crmt").train()
    with torch.no_grad():
        for m, a in INTEGRATION.items():
            model.integration[m].copy_(torch.tensor(a))
        model.bias.copy_(torch.tensor(BIAS))
    model.enter_stage2(torch.tensor(LIPSCHITZ))
    return model


def hand_certified_bound_loss(model, x, y, mask):
    """`-mean_i r(x_i)` with `r = (sum_m on_m [a_y u_y - a_j u_j]^(m) + b_y - b_j)
    / sqrt(sum_m on_m ((a_y L_y + a_j L_j)^(m))^2)`, `j` the runner-up class of the fused logits, written out per
    sample (differentiable in `a` only)."""
    with torch.no_grad():
        u = {m: model.classifiers[m](model.adapters[m](x[m])) * mask[m][:, None] for m in x}  # missing rows zero
    a = {m: model.integration[m] for m in x}
    a_now = {m: v.detach().tolist() for m, v in a.items()}
    bias = [float(v) for v in BIAS]
    bounds = []
    for i in range(y.shape[0]):
        label = int(y[i])
        fused = [bias[k] + sum(a_now[m][k] * float(u[m][i, k]) * bool(mask[m][i]) for m in x) for k in range(3)]
        runner_up = max((k for k in range(3) if k != label), key=lambda k: fused[k])
        numerator = bias[label] - bias[runner_up]
        denominator = 0.0
        for row, m in enumerate(("a", "b")):
            if not bool(mask[m][i]):
                continue  # a missing modality adds nothing to either side
            lip = LIPSCHITZ[row]
            numerator = numerator + a[m][label] * u[m][i, label] - a[m][runner_up] * u[m][i, runner_up]
            denominator = denominator + (a[m][label] * lip[label] + a[m][runner_up] * lip[runner_up]) ** 2
        bounds.append(numerator / torch.sqrt(denominator))
    return -torch.stack(bounds).mean()


def test_crmt_stage2_loss_is_the_certified_bound_by_hand():
    """Mutant 7 (the bound's denominator altered: sign, square, square root, or the presence factor)."""
    model = stage2_model()
    x, y = batch()
    loss = model(x, labels=y, modality_mask=MASK).loss
    hand = hand_certified_bound_loss(model, x, y, MASK)
    torch.testing.assert_close(loss, hand)
    model.zero_grad(set_to_none=True)
    loss.backward()
    got = {m: model.integration[m].grad.clone() for m in INTEGRATION}
    model.zero_grad(set_to_none=True)
    hand.backward()
    for m in INTEGRATION:
        torch.testing.assert_close(got[m], model.integration[m].grad, msg=m)


def test_crmt_certified_bound_of_one_sample_in_numbers():
    """One sample, one modality with `u = (1, 0.5, 0)` (label 0, runner-up 1), `a = (2, 1, 1)`, `L = (3, 4, 1)`,
    `b = 0`: `r = (2 * 1 - 1 * 0.5) / sqrt((2 * 3 + 1 * 4)^2) = 1.5 / 10`."""
    spec = get_baseline("crmt")
    torch.manual_seed(0)
    model = spec.build_model(spec.build_config({"a": 3}, 3, hidden_size=3)).train()
    with torch.no_grad():
        model.adapters["a"].proj.weight.copy_(torch.eye(3))
        model.adapters["a"].proj.bias.zero_()
        model.classifiers["a"].weight.copy_(torch.eye(3))  # already orthonormal: its polar factor is itself
        model.integration["a"].copy_(torch.tensor([2.0, 1.0, 1.0]))
    model.enter_stage2(torch.tensor([[3.0, 4.0, 1.0]]))
    x = {"a": torch.tensor([[1.0, 0.5, 0.0]])}  # ReLU keeps (1, 0.5, 0); u = (1, 0.5, 0)
    loss = model(x, labels=torch.tensor([0])).loss
    assert loss.item() == pytest.approx(-(2 * 1 - 1 * 0.5) / (2 * 3 + 1 * 4), rel=1e-6)


# ------------------------------------------------------------------ LFM contrastive
def hand_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> float:
    """`0.5 * (mean_i -log softmax_j(s_ij)_i + mean_j -log softmax_i(s_ij)_j)`, `s_ij = cos(a_i, b_j) / T`."""
    n = a.shape[0]
    s = [
        [float(a[i] @ b[j]) / (float(a[i].norm()) * float(b[j].norm())) / temperature for j in range(n)]
        for i in range(n)
    ]
    rows = [-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(n))) for i in range(n)]
    cols = [-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(n))) for j in range(n)]
    return 0.5 * (sum(rows) / n + sum(cols) / n)


def test_info_nce_by_hand():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    assert float(info_nce(a, b, 0.3)) == pytest.approx(hand_info_nce(a, b, 0.3), rel=1e-5)
    # two orthogonal pairs: s = [[1, 0], [0, 1]] / T, each row and column gives log(1 + exp(-1 / T))
    e = torch.eye(2)
    assert float(info_nce(e, e, 0.5)) == pytest.approx(math.log(1 + math.exp(-2.0)), rel=1e-6)


@pytest.mark.parametrize("progress", [0.0, 0.5])
def test_lfm_contrastive_loss_by_hand_over_the_rows_with_both_modalities(progress):
    model = build("lfm", alignment="contrastive", temperature=0.5).train()
    model.train_progress = progress
    x, y = batch(seed=2)
    loss = model(x, labels=y, modality_mask=MASK).loss
    h = {m: model.adapters[m](x[m]) for m in x}
    u = {m: model.heads[m](h[m]) for m in x}
    on = {m: MASK[m].float()[:, None] for m in x}
    fused = (u["a"] * on["a"] + u["b"] * on["b"]) / (on["a"] + on["b"])  # mean over the present heads
    both = MASK["a"] & MASK["b"]  # 5 rows: the pairs of the contrastive term
    w = lfm_release_weight(progress)
    nce = hand_info_nce(h["a"][both].detach(), h["b"][both].detach(), 0.5)
    expected = 2 * (w * F.cross_entropy(fused, y).item() + (1 - w) * nce)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_lfm_contrastive_term_is_zero_without_two_shared_rows():
    model = build("lfm", alignment="contrastive").train()
    x, y = batch(seed=2, n=3)
    mask = {"a": torch.tensor([True, True, False]), "b": torch.tensor([False, True, True])}  # one row has both
    loss = model(x, labels=y, modality_mask=mask).loss
    u = {m: model.heads[m](model.adapters[m](x[m])) for m in x}
    fused = torch.stack([u["a"][0], (u["a"][1] + u["b"][1]) / 2, u["b"][2]])
    torch.testing.assert_close(loss, 2 * lfm_release_weight(0.0) * F.cross_entropy(fused, y))
