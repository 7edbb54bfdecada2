"""CRMT's two stages (LFM's tests are in test_lfm.py)."""

from __future__ import annotations

import math

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


# ------------------------------------------------------------------ errors, initialisation, edge cases
def test_orthonormal_rows_need_no_more_outputs_than_inputs():
    from mllm_balance.baselines.crmt import OrthonormalLinear

    with pytest.raises(ValueError, match=r"out_features \(5\) <= in_features \(4\)"):
        OrthonormalLinear(4, 5)
    with pytest.raises(ValueError, match=r"num_labels \(9\) must not exceed hidden_size \(8\)"):
        spec = get_baseline("crmt")
        spec.build_model(spec.build_config({"a": 6, "b": 5}, 9, hidden_size=8))


def test_free_classifier_weight_starts_as_the_default_of_nn_linear():
    """`kaiming_uniform_(a=sqrt(5))`: U(-1/sqrt(d), 1/sqrt(d)); the scale of the free weight sets how fast its
    polar factor moves under a given learning rate. 2048 draws reach the bound within 3 %."""
    from mllm_balance.baselines.crmt import OrthonormalLinear

    torch.manual_seed(0)
    bound = 1 / 64**0.5
    free = OrthonormalLinear(64, 32).weight.abs().max().item()
    assert 0.97 * bound < free <= bound
    spec = get_baseline("crmt")
    model = spec.build_model(spec.build_config({"a": 6, "b": 5}, 32, hidden_size=64))
    for m in ("a", "b"):
        assert 0.97 * bound < model.classifiers[m].weight.abs().max().item() <= bound


def test_crmt_margin_sums_only_the_present_modalities_over_all_classes():
    """Rows missing a modality add nothing to the margin; labels that leave out the last class still mask the true
    class among all `num_labels` classes."""
    model = build("crmt", rho=0.5).train()
    x, _ = batch()
    y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])  # class 2 never occurs
    mask = {
        "a": torch.tensor([1, 1, 0, 1, 1, 1, 1, 0], dtype=torch.bool),
        "b": torch.tensor([1, 0, 1, 1, 1, 0, 1, 1], dtype=torch.bool),
    }
    loss = model(x, labels=y, modality_mask=mask).loss
    u = {m: model.classifiers[m](model.adapters[m](x[m]) * mask[m][:, None]) for m in x}
    logits = model.bias + sum(model.integration[m] * u[m] * mask[m][:, None] for m in u)
    margin = torch.zeros(8)
    for m in u:
        for i in range(8):
            if mask[m][i]:
                label = int(y[i])
                margin[i] += sum(torch.exp(u[m][i, k] - u[m][i, label]) for k in range(3) if k != label)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y) + 0.5 * torch.log(margin + 1e-5).mean())


def test_crmt_margin_of_a_confident_sample_is_floored_at_the_epsilon():
    """`u = (30, 0, 0)`, label 0: the margin `2 exp(-30)` is far below 1e-5, the regulariser is `log(1e-5 + 2e-30)`."""
    spec = get_baseline("crmt")
    torch.manual_seed(0)
    model = spec.build_model(spec.build_config({"a": 3}, 3, hidden_size=3, rho=2.0)).train()
    with torch.no_grad():
        model.adapters["a"].proj.weight.copy_(torch.eye(3))
        model.adapters["a"].proj.bias.zero_()
        model.classifiers["a"].weight.copy_(torch.eye(3))
    loss = model({"a": torch.tensor([[30.0, 0.0, 0.0]])}, labels=torch.tensor([0])).loss
    # logits = 0.1 * u = (3, 0, 0): CE = log(1 + 2 exp(-3))
    expected = math.log(1 + 2 * math.exp(-3.0)) + 2.0 * math.log(1e-5 + 2 * math.exp(-30.0))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_crmt_stage2_loss_stays_finite_for_a_modality_without_lipschitz_estimate():
    """A modality absent from every stage-1 batch keeps `L = 0`; a row that has only it gets the bound's
    denominator `0 + 1e-12`, so its term is `numerator / 1e-6`, not NaN."""
    model = build("crmt")
    x, y = batch(n=4)
    lip = model.estimate_lipschitz([{"features": x, "modality_mask": {"b": torch.zeros(4, dtype=torch.bool)}}])
    assert lip[1].abs().sum() == 0 and lip[0].abs().sum() > 0
    model.enter_stage2(lip)
    model.train()
    mask = {"a": torch.tensor([False, True, True, True]), "b": torch.tensor([True, True, False, True])}
    loss = model(x, labels=y, modality_mask=mask).loss
    assert torch.isfinite(loss)
    with torch.no_grad():
        u = {m: model.classifiers[m](model.adapters[m](x[m]) * mask[m][:, None]) for m in x}
        a = {m: model.integration[m] for m in x}
        logits = sum(a[m] * u[m] * mask[m][:, None] for m in x) + model.bias
        bounds = []
        for i in range(4):
            label = int(y[i])
            j = max((k for k in range(3) if k != label), key=lambda k: float(logits[i, k]))
            num, den = 0.0, 0.0
            for row, m in enumerate(("a", "b")):
                if mask[m][i]:
                    num += float(a[m][label] * u[m][i, label] - a[m][j] * u[m][i, j])
                    den += float(a[m][label] * lip[row, label] + a[m][j] * lip[row, j]) ** 2
            bounds.append(num / math.sqrt(den + 1e-12))
    assert loss.item() == pytest.approx(-sum(bounds) / 4, rel=1e-4)


def test_crmt_callback_ignores_other_models_and_a_model_already_in_stage2():
    args = type("Args", (), {"num_train_epochs": 4})()
    state, control = TrainerState(epoch=3.0), TrainerControl()
    CRMTCallback().on_epoch_begin(args, state, control, model=build("lfm"), train_dataloader=None)
    CRMTCallback().on_epoch_begin(args, state, control, model=None, train_dataloader=None)
    model = build("crmt", stage2_fraction=0.5)
    lip = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    model.enter_stage2(lip)
    x, _ = batch()
    CRMTCallback().on_epoch_begin(args, state, control, model=model, train_dataloader=[{"features": x}])
    assert model.crmt_stage == 2
    torch.testing.assert_close(model.crmt_lipschitz, lip)  # not estimated again


def test_crmt_callback_without_stage2_never_switches():
    """`stage2_fraction=0` stays in stage 1 even past `args.num_train_epochs` (a run whose length `max_steps` sets)."""
    model = build("crmt", stage2_fraction=0.0)
    args = type("Args", (), {"num_train_epochs": 2})()
    x, _ = batch()
    for epoch in range(5):
        CRMTCallback().on_epoch_begin(
            args, TrainerState(epoch=float(epoch)), TrainerControl(), model=model, train_dataloader=[{"features": x}]
        )
        assert model.crmt_stage == 1


@pytest.mark.parametrize("epoch", [None, 0.0])
def test_crmt_callback_reads_no_epoch_yet_as_epoch_zero(epoch):
    """Two epochs with `stage2_fraction=0.5`: stage 1 is epoch 0, so the run's first call must not switch."""
    model = build("crmt", stage2_fraction=0.5)
    args = type("Args", (), {"num_train_epochs": 2})()
    x, _ = batch()
    loader = [{"features": x}]
    for start, stage in [(epoch, 1), (1.0, 2)]:
        CRMTCallback().on_epoch_begin(
            args, TrainerState(epoch=start), TrainerControl(), model=model, train_dataloader=loader
        )
        assert model.crmt_stage == stage
