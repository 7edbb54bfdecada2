"""Eq. 9-14 on small tensors against numbers written out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from mllm_balance import BalanceConfig
from mllm_balance.modules import CrossModalMapping, ModalityAdapter, ModalityMemory
from mllm_balance.modules.mapping import thresholded_correlation

R = 1 / math.sqrt(2)
WEAK = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # rows = samples r
STRONG = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # rows = samples q


def test_eq9_10_correlation_threshold_and_unit_diagonal():
    c = thresholded_correlation(WEAK, STRONG, threshold=0.5)
    # cosines: [[1, R, 0], [0, R, 1], [R, 1, R]]; entries <= 0.5 zeroed; diagonal forced to 1
    expected = torch.tensor([[1.0, R, 0.0], [0.0, 1.0, 1.0], [R, 1.0, 1.0]])
    torch.testing.assert_close(c, expected)
    c = thresholded_correlation(WEAK, STRONG, threshold=0.8)
    torch.testing.assert_close(c, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]))


def test_eq11_sample_level_mapping_in_training():
    mapping = CrossModalMapping(2, threshold=0.5, level="sample").train()
    x_hat = mapping(WEAK, STRONG)
    # X_hat = X_strong C in the paper's d x B layout: sample q receives sum_r C_rq * strong_r
    expected = torch.tensor([[1.0, R], [1.0 + R, 2.0], [1.0, 2.0]])
    torch.testing.assert_close(x_hat, expected)


def test_normalised_mapping_is_a_weighted_mean():
    mapping = CrossModalMapping(2, threshold=0.5, level="sample", normalize=True).train()
    x_hat = mapping(WEAK, STRONG)
    # column 0 of C is (1, 0, R): weights 1/(1+R) and R/(1+R) on strong_0 = (1,0) and strong_2 = (0,1)
    torch.testing.assert_close(x_hat[0], torch.tensor([1 / (1 + R), R / (1 + R)]))
    torch.testing.assert_close(x_hat[2], torch.tensor([0.5, 1.0]))  # (strong_1 + strong_2) / 2


def test_sample_level_mapping_is_identity_in_eval_unless_asked():
    assert torch.equal(CrossModalMapping(2, 0.5).eval()(WEAK, STRONG), STRONG)
    batch = CrossModalMapping(2, 0.5, at_eval="batch").eval()
    torch.testing.assert_close(batch(WEAK, STRONG), torch.tensor([[1.0, R], [1.0 + R, 2.0], [1.0, 2.0]]))


def test_feature_level_mapping_and_running_correlation():
    mapping = CrossModalMapping(2, threshold=0.5, level="feature", momentum=1.0).train()
    x_hat = mapping(WEAK, STRONG)
    # feature columns across the batch: weak f0=(1,0,1), f1=(0,1,1); strong f0=(1,1,0), f1=(0,1,1)
    # cos(w0,s0)=1/2 -> 0 (not > 0.5), cos(w0,s1)=1/2 -> 0, cos(w1,s0)=1/2 -> 0, cos(w1,s1)=1; diagonal -> 1
    torch.testing.assert_close(mapping.running_correlation, torch.eye(2))
    torch.testing.assert_close(x_hat, STRONG)
    mapping = CrossModalMapping(2, threshold=0.4, level="feature", momentum=0.5).train()
    mapping(WEAK, STRONG)
    # C = [[1, 0.5], [0.5, 1]]; running = 0.5 * I + 0.5 * C
    torch.testing.assert_close(mapping.running_correlation, torch.tensor([[1.0, 0.25], [0.25, 1.0]]))
    mapping.eval()
    torch.testing.assert_close(mapping(WEAK, STRONG), STRONG @ torch.tensor([[1.0, 0.25], [0.25, 1.0]]))


def test_eq12_14_memory_update():
    memory = ModalityMemory(1)
    with torch.no_grad():
        memory.gates.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        memory.gates.bias.zero_()
    h, x_hat = torch.tensor([[0.5]]), torch.tensor([[2.0]])
    # f = s(0.5) = 0.622459, i = s(2) = 0.880797, o = s(2.5) = 0.924142
    # memory = f * 0.5 + i * 2 = 2.072824; h' = o * tanh(memory) = 0.895334
    assert memory(h, x_hat).item() == pytest.approx(0.8953337388950275, abs=1e-6)


def test_residual_memory_adds_the_state_back():
    """`memory_residual`: h' = h + o * tanh(c), on the numbers of the Eq. 12-14 case, in both the one-product and the
    projected path (hybrid fusion's fast path)."""
    memory = ModalityMemory(1, residual=True)
    with torch.no_grad():
        memory.gates.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        memory.gates.bias.zero_()
    h, x_hat = torch.tensor([[0.5]]), torch.tensor([[2.0]])
    assert memory(h, x_hat).item() == pytest.approx(0.5 + 0.8953337388950275, abs=1e-6)
    projected = memory.forward_projected(h, x_hat, memory.project_input(x_hat))
    assert projected.item() == pytest.approx(0.5 + 0.8953337388950275, abs=1e-6)


def test_adapter_is_linear_relu():
    adapter = ModalityAdapter(2, 2)
    with torch.no_grad():
        adapter.proj.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, 0.0]]))
        adapter.proj.bias.copy_(torch.tensor([0.0, -5.0]))
    out = adapter(torch.tensor([[3.0, 1.0], [1.0, 3.0]]))
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.0], [0.0, 0.0]]))


def test_a_correlation_equal_to_tau_is_zeroed():
    """Eq. 10 keeps `C > tau`: an entry exactly at the threshold goes (the config says "at or below it")."""
    raw = thresholded_correlation(WEAK, STRONG, threshold=-1.0)  # every cosine kept
    tau = float(raw[2, 0])  # cos(weak_2, strong_0) = R, off the diagonal
    c = thresholded_correlation(WEAK, STRONG, threshold=tau)
    assert c[2, 0] == 0 and c[2, 1] == raw[2, 1]  # R goes, 1 stays


def test_feature_level_mapping_of_stacked_orders_uses_the_mean_correlation():
    """A `(K, B, d)` stack (the batched chains) in training: one `d x d` correlation, the mean over the K slices of
    the cosines across each slice's batch, feeds both the mapping and the running estimate."""
    g = torch.Generator().manual_seed(0)
    weak, strong = torch.randn(3, 5, 2, generator=g), torch.randn(3, 5, 2, generator=g)
    mapping = CrossModalMapping(2, threshold=0.1, level="feature", normalize=False, momentum=0.5).train()
    c = torch.stack([thresholded_correlation(weak[k].T, strong[k].T, 0.1) for k in range(3)]).mean(0)  # (d, d)
    torch.testing.assert_close(mapping(weak, strong), strong @ c)
    torch.testing.assert_close(mapping.running_correlation, torch.eye(2).lerp(c, 0.5))


def test_mapping_defaults_are_the_configs():
    mapping, config = CrossModalMapping(4), BalanceConfig(modality_dims={"a": 2}, num_labels=2)
    assert (mapping.threshold, mapping.momentum) == (config.mapping_threshold, config.mapping_momentum)
