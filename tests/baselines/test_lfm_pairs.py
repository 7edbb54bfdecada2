"""LFM's alignment: the batch mean of the Jensen-Shannon term, and which modality pairs enter the loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mllm_balance.baselines import get_baseline
from mllm_balance.baselines.lfm import LFM_LOSS_SCALE, js_divergence, release_alignment

P, Q = torch.tensor([0.7, 0.2, 0.1]), torch.tensor([0.1, 0.3, 0.6])
JS_PQ = 0.23064548790411332  # 0.5 * (sum p log(p / m) + sum q log(q / m)), m = [0.4, 0.25, 0.35]


def test_js_divergence_is_a_mean_over_the_batch():
    """Each row's divergence, averaged over the rows (not summed)."""
    # rows (P, Q) and (Q, P): JS(P, Q) each, mean JS(P, Q)
    torch.testing.assert_close(js_divergence(torch.stack([P, Q]).log(), torch.stack([Q, P]).log()), torch.tensor(JS_PQ))
    # rows (P, Q) and (P, P): (JS(P, Q) + 0) / 2
    torch.testing.assert_close(
        js_divergence(torch.stack([P, P]).log(), torch.stack([Q, P]).log()), torch.tensor(JS_PQ / 2)
    )


def build(dims: dict[str, int]):
    spec = get_baseline("lfm")
    torch.manual_seed(0)
    return spec.build_model(spec.build_config(dims, 3, hidden_size=8)).train()


def alignment_part(model, x, mask, y) -> torch.Tensor:
    """The loss less its supervised part: `2 (1 - w) U`."""
    out = model(x, labels=y, modality_mask=mask)
    w = model.cls_weight()
    return out.loss - LFM_LOSS_SCALE * w * F.cross_entropy(out.logits, y)


def head_logits(model, x, m: str, rows: torch.Tensor) -> torch.Tensor:
    return model.heads[m](model.adapters[m](x[m][rows]))


def test_a_pair_seen_together_in_two_samples_is_aligned():
    """Two samples with both modalities already give an alignment term."""
    model = build({"a": 6, "b": 5})
    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(2, 6, generator=g), "b": torch.randn(2, 5, generator=g)}
    y, both = torch.tensor([0, 2]), torch.ones(2, dtype=torch.bool)
    u = release_alignment(head_logits(model, x, "a", both), head_logits(model, x, "b", both))
    assert float(u.detach()) > 1e-4
    w = model.cls_weight()
    torch.testing.assert_close(alignment_part(model, x, None, y), LFM_LOSS_SCALE * (1 - w) * u)


def test_pairs_with_fewer_than_two_shared_samples_are_skipped_not_the_rest():
    """With three modalities, a pair sharing one sample is left out and the later pairs still count."""
    model = build({"a": 6, "b": 5, "c": 4})
    g = torch.Generator().manual_seed(1)
    x = {"a": torch.randn(4, 6, generator=g), "b": torch.randn(4, 5, generator=g), "c": torch.randn(4, 4, generator=g)}
    ones = torch.ones(4, dtype=torch.bool)
    mask = {"a": ones, "b": torch.tensor([True, False, False, False]), "c": ones}  # (a, b), (b, c): 1 sample
    y = torch.tensor([0, 1, 2, 1])
    u = release_alignment(head_logits(model, x, "a", ones), head_logits(model, x, "c", ones))  # (a, c) only
    w = model.cls_weight()
    torch.testing.assert_close(alignment_part(model, x, mask, y), LFM_LOSS_SCALE * (1 - w) * u)
