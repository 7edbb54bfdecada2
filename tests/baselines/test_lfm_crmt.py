"""CRMT's two stages (LFM's tests are in test_lfm.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainerControl, TrainerState

from mllm_balance.baselines import CRMTCallback, get_baseline


def batch(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(n, 6, generator=g), "b": torch.randn(n, 5, generator=g)}, torch.randint(
        0, 3, (n,), generator=g
    )


def build(name, **overrides):
    spec = get_baseline(name)
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8, **overrides))


def test_crmt_classifier_rows_are_orthonormal():
    model = build("crmt")
    for m in ("a", "b"):
        w = model.classifiers[m].orthonormal_weight  # (C, d)
        torch.testing.assert_close(w @ w.T, torch.eye(3), atol=1e-5, rtol=0)


def test_crmt_stage1_adds_the_margin_regulariser():
    model = build("crmt", rho=1.5).train()
    x, y = batch()
    loss = model(x, labels=y).loss
    u = {m: model.classifiers[m](model.adapters[m](x[m])) for m in x}
    logits = model.bias + sum(model.integration[m] * u[m] for m in u)
    margin = sum((u[m].exp().sum(-1) / u[m].gather(1, y[:, None]).squeeze(1).exp()) - 1 for m in u)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y) + 1.5 * torch.log(margin + 1e-5).mean())


def test_crmt_stage2_trains_only_the_integration_weights():
    model = build("crmt").train()
    model.enter_stage2(torch.ones(2, 3))
    x, y = batch()
    model(x, labels=y).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and all(n.startswith("integration.") for n in with_grad)


def test_crmt_lipschitz_is_the_largest_input_gradient_norm():
    model = build("crmt")
    x, _ = batch(n=5)
    lip = model.estimate_lipschitz([{"features": x}])
    for i, m in enumerate(("a", "b")):
        for k in range(3):
            norms = []
            for row in x[m]:
                xi = row.clone().requires_grad_(True)
                (g,) = torch.autograd.grad(model.classifiers[m](model.adapters[m](xi))[k], xi)
                norms.append(g.norm())
            assert lip[i, k] == pytest.approx(max(norms).item(), rel=1e-5)


def test_crmt_callback_switches_at_the_stage_boundary():
    model = build("crmt", stage2_fraction=0.25)
    args = type("Args", (), {"num_train_epochs": 8})()
    x, _ = batch()
    loader = [{"features": x}]
    CRMTCallback().on_epoch_begin(args, TrainerState(epoch=5.0), TrainerControl(), model=model, train_dataloader=loader)
    assert model.crmt_stage == 1
    CRMTCallback().on_epoch_begin(args, TrainerState(epoch=6.0), TrainerControl(), model=model, train_dataloader=loader)
    assert model.crmt_stage == 2 and model.crmt_lipschitz.abs().sum() > 0
