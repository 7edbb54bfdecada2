"""MLA: gradient projection orthogonal to the stored directions, and entropy-weighted fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mllm_balance.baselines import get_baseline, orthonormal_basis, project_gradient


def test_projected_gradient_is_orthogonal_to_every_stored_direction():
    g = torch.Generator().manual_seed(0)
    directions = torch.randn(3, 8, generator=g)
    weight = torch.randn(4, 8, generator=g, requires_grad=True)
    x = torch.randn(5, 8, generator=g)
    basis = orthonormal_basis(directions)
    loss = (torch.tanh(x @ project_gradient(weight, basis).T) ** 2).sum()
    loss.backward()
    projected = weight.grad.clone()
    weight.grad = None
    (torch.tanh(x @ weight.T) ** 2).sum().backward()
    plain = weight.grad
    torch.testing.assert_close(projected @ directions.T, torch.zeros(4, 3), atol=1e-5, rtol=0)
    # and only the components along the stored directions were removed
    q, _ = torch.linalg.qr(directions.T)  # (8, 3)
    torch.testing.assert_close(projected, plain - plain @ q @ q.T, atol=1e-5, rtol=0)


def test_basis_keeps_the_numerical_rank():
    d = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    basis = orthonormal_basis(d)
    assert basis.shape == (2, 3)
    torch.testing.assert_close(basis @ basis.T, torch.eye(2))


def make_model():
    spec = get_baseline("mla")
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 4, "b": 3}, 3, hidden_size=6, max_directions=4))


def test_alternating_step_projects_the_head_gradient_away_from_the_other_modality():
    model = make_model().train()
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # three steps of modality "a" store three directions
        x = {"a": torch.randn(8, 4, generator=g), "b": torch.randn(8, 3, generator=g)}
        model(x, labels=torch.randint(0, 3, (8,), generator=g), active_modality="a").loss.backward()
    stored = model.stored_directions("a")
    assert stored.shape == (3, 6)
    model.zero_grad()
    x = {"a": torch.randn(8, 4, generator=g), "b": torch.randn(8, 3, generator=g)}
    model(x, labels=torch.randint(0, 3, (8,), generator=g), active_modality="b").loss.backward()
    grad = model.head.weight.grad
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad @ stored.T, torch.zeros(3, 3), atol=1e-6, rtol=0)
    assert model.adapters["a"].proj.weight.grad is None  # the step of "b" does not touch "a"'s adapter


def test_directions_are_a_fifo_of_the_latest_batch_means():
    model = make_model()
    for i in range(6):
        model.store_direction("a", torch.full((6,), float(i)))
    assert sorted(model.stored_directions("a")[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]


def test_entropy_weights_match_a_hand_computation():
    model = make_model().eval()
    g = torch.Generator().manual_seed(2)
    x = {"a": torch.randn(5, 4, generator=g), "b": torch.randn(5, 3, generator=g)}
    mask = {"a": torch.tensor([True, True, True, True, False]), "b": torch.ones(5, dtype=torch.bool)}
    out = model(x, modality_mask=mask).logits
    uni = {m: model.head(model.adapters[m](x[m])).detach().numpy().astype(np.float64) for m in x}
    expected = []
    for i in range(5):
        mods = [m for m in ("a", "b") if mask[m][i]]
        entropies = []
        for m in mods:
            p = np.exp(uni[m][i] - uni[m][i].max())
            p /= p.sum()
            entropies.append(-(p * np.log(p)).sum())
        w = np.exp(-np.array(entropies))
        w /= w.sum()
        expected.append(sum(wi * uni[m][i] for wi, m in zip(w, mods)))
    np.testing.assert_allclose(out.detach().numpy(), np.array(expected), rtol=1e-5, atol=1e-6)


def test_mla_refuses_joint_training():
    model = make_model().train()
    x = {"a": torch.randn(4, 4), "b": torch.randn(4, 3)}
    with pytest.raises(ValueError, match="alternation='step'"):
        model(x, labels=torch.tensor([0, 1, 2, 0]))


def test_basis_of_no_direction_is_empty_with_the_feature_size():
    assert orthonormal_basis(torch.zeros(0, 5)).shape == (0, 5)


def test_basis_rank_is_relative_to_the_largest_singular_value():
    # a condition number of 1e5 is below 1 / rtol (rank 2), one of 1e7 above it (rank 1), at any scale
    for scale in (1e-3, 1.0, 1e3):
        well = orthonormal_basis(torch.diag(torch.tensor([1.0, 1e-5])) * scale)
        torch.testing.assert_close(well.abs(), torch.eye(2))
        ill = orthonormal_basis(torch.diag(torch.tensor([1.0, 1e-7])) * scale)
        torch.testing.assert_close(ill.abs(), torch.tensor([[1.0, 0.0]]))


def test_basis_never_spans_more_than_the_directions_even_without_tolerance():
    # with rtol=0 a zero singular value is still not part of the rank: its vector is outside the directions' span
    basis = orthonormal_basis(torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), rtol=0.0)
    torch.testing.assert_close(basis.abs(), torch.tensor([[1.0, 0.0, 0.0]]))
    assert orthonormal_basis(torch.zeros(2, 3), rtol=0.0).shape == (0, 3)


def test_basis_keeps_the_dtype_of_the_directions():
    directions = torch.tensor([[3.0, 4.0, 0.0]], dtype=torch.float64)
    basis = orthonormal_basis(directions)
    assert basis.dtype == torch.float64
    torch.testing.assert_close(basis.abs(), torch.tensor([[0.6, 0.8, 0.0]], dtype=torch.float64))


def test_projection_onto_the_complement_of_a_single_direction():
    weight = torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    basis = orthonormal_basis(torch.tensor([[1.0, 1.0]]))  # u = (1, 1) / sqrt(2)
    (project_gradient(weight, basis) * torch.tensor([[1.0, 0.0], [2.0, 4.0]])).sum().backward()
    # g = [[1, 0], [2, 4]]; g - (g u) u^T = [[0.5, -0.5], [-1, 1]]
    torch.testing.assert_close(weight.grad, torch.tensor([[0.5, -0.5], [-1.0, 1.0]]))


def test_direction_counts_stay_exact_in_a_bfloat16_model():
    # bfloat16 holds integers exactly only up to 256: the FIFO of a bfloat16 model must still advance past it
    model = make_model().to(torch.bfloat16)
    for i in range(260):
        model.store_direction("a", torch.full((6,), float(i % 16)))
    assert int(model.mla_counts[0]) == 260
    assert sorted(model.stored_directions("a")[:, 0].tolist()) == [0.0, 1.0, 2.0, 3.0]  # steps 256-259


def unprojected_step(model, x, labels, modality):
    """Loss, logits and head-weight gradient of the plain unimodal prediction `head(a_m(x_m))`, for reference."""
    model.zero_grad()
    logits = model.head(model.adapters[modality](x[modality]))
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    return loss.detach(), logits.detach(), model.head.weight.grad.clone()


def mla_step(model, x, labels, modality):
    """`unprojected_step`'s values of the model's own alternating step, and its output."""
    model.zero_grad()
    out = model(x, labels=labels, active_modality=modality)
    out.loss.backward()
    return out.loss.detach(), out.logits.detach(), model.head.weight.grad.clone(), out


def test_a_step_is_not_projected_away_from_the_directions_of_its_own_modality():
    model = make_model().train()
    g = torch.Generator().manual_seed(3)
    for _ in range(3):  # "a" stores directions, "b" none
        x = {"a": torch.randn(8, 4, generator=g), "b": torch.randn(8, 3, generator=g)}
        model(x, labels=torch.randint(0, 3, (8,), generator=g), active_modality="a")
    x = {"a": torch.randn(8, 4, generator=g), "b": torch.randn(8, 3, generator=g)}
    y = torch.randint(0, 3, (8,), generator=g)
    loss, logits, grad, out = mla_step(model, x, y, "a")
    torch.testing.assert_close((loss, logits, grad), unprojected_step(model, x, y, "a"))
    assert out.fused is None


def test_single_modality_mla_trains_without_projection():
    spec = get_baseline("mla")
    torch.manual_seed(0)
    model = spec.build_model(spec.build_config({"a": 4}, 3, hidden_size=6, max_directions=4)).train()
    g = torch.Generator().manual_seed(4)
    for _ in range(2):
        x = {"a": torch.randn(5, 4, generator=g)}
        y = torch.randint(0, 3, (5,), generator=g)
        loss, _, grad, _ = mla_step(model, x, y, "a")
        want_loss, _, want_grad = unprojected_step(model, x, y, "a")
        torch.testing.assert_close((loss, grad), (want_loss, want_grad))
    assert int(model.mla_counts[0]) == 2


def test_the_stored_direction_is_the_mean_head_input_of_the_present_rows():
    model = make_model().train()
    g = torch.Generator().manual_seed(5)
    x = {"a": torch.randn(6, 4, generator=g), "b": torch.randn(6, 3, generator=g)}
    mask = {"a": torch.tensor([True, False, True, True, False, True]), "b": torch.ones(6, dtype=torch.bool)}
    out = model(x, modality_mask=mask, active_modality="a")  # no labels: no loss, but the direction is stored
    assert out.loss is None
    h = model.adapters["a"](x["a"]).detach()
    torch.testing.assert_close(model.stored_directions("a"), h[mask["a"]].mean(0, keepdim=True))


def test_a_step_without_any_sample_of_its_modality_has_zero_loss():
    model = make_model().train()
    g = torch.Generator().manual_seed(6)
    x = {"a": torch.randn(4, 4, generator=g), "b": torch.randn(4, 3, generator=g)}
    mask = {"a": torch.zeros(4, dtype=torch.bool), "b": torch.ones(4, dtype=torch.bool)}
    out = model(x, labels=torch.tensor([0, 1, 2, 0]), modality_mask=mask, active_modality="a")
    assert out.loss.item() == 0.0
    out.loss.backward()
    assert model.head.weight.grad.abs().sum() == 0
    assert int(model.mla_counts[0]) == 0  # nothing stored


def test_joint_training_error_names_the_way_to_train_mla():
    model = make_model().train()
    x = {"a": torch.randn(4, 4), "b": torch.randn(4, 3)}
    message = "MLA trains one modality at a time: use BalanceTrainer with alternation='step'"
    with pytest.raises(ValueError, match=f"^{message}$"):
        model(x, labels=torch.tensor([0, 1, 2, 0]))


def test_unimodal_predictions_go_through_the_shared_head():
    model = make_model().eval()
    h = {"a": torch.randn(3, 6, generator=torch.Generator().manual_seed(7)), "b": torch.zeros(3, 6)}
    uni = model.unimodal(h)
    torch.testing.assert_close(uni["a"], h["a"] @ model.head.weight.T + model.head.bias)
    torch.testing.assert_close(uni["b"], model.head.bias.expand(3, 3))
