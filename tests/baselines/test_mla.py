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
