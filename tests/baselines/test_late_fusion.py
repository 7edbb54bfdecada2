"""Late fusion at inference: the mean of the unimodal probabilities (`combine="prob"`) or the sum of their
log-probabilities (`"logprob"`) over each sample's present modalities, checked against a hand computation."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from mllm_balance.baselines import get_baseline

MASK = {"a": torch.tensor([True, True, False]), "b": torch.tensor([True, False, True])}  # both, a only, b only


def model_and_unimodal(combine: str):
    """An eval-mode late-fusion model with its heads set by hand, and the unimodal logits it gives on `MASK`'s rows."""
    spec = get_baseline("late_fusion")
    model = spec.build_model(spec.build_config({"a": 2, "b": 2}, 3, hidden_size=2, combine=combine)).eval()
    logits = {"a": [[2.0, 0.0, 1.0], [0.0, 1.0, 3.0]], "b": [[1.0, 0.0, 0.0], [0.5, 2.0, -1.0]]}
    with torch.no_grad():
        for m in ("a", "b"):
            model.adapters[m].proj.weight.copy_(torch.eye(2))
            model.adapters[m].proj.bias.zero_()
            # the head reads the adapter output (1, 0) for row 0 and (0, 1) for rows 1 and 2
            model.heads[m].weight.copy_(torch.tensor(logits[m]).T)
            model.heads[m].bias.zero_()
    return model, logits


def log_softmax(row: list[float]) -> list[float]:
    norm = math.log(sum(math.exp(v) for v in row))
    return [v - norm for v in row]


@pytest.mark.parametrize("combine", ["prob", "logprob"])
def test_late_fusion_combines_the_present_modalities_by_hand(combine: str):
    """Row 0 has both modalities, row 1 only `a`, row 2 only `b`; each row combines its present ones' predictions."""
    model, logits = model_and_unimodal(combine)
    rows_in = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    x = {"a": rows_in, "b": rows_in.clone()}
    a0, a1 = (log_softmax(r) for r in logits["a"])
    b0, b1 = (log_softmax(r) for r in logits["b"])
    if combine == "logprob":
        rows = [[p + q for p, q in zip(a0, b0)], a1, b1]
    else:
        rows = [[math.log((math.exp(p) + math.exp(q)) / 2) for p, q in zip(a0, b0)], a1, b1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the class axis is named: no implicit-dimension warning
        with torch.no_grad():
            out = model(x, modality_mask=MASK)
    assert out.fused is None
    torch.testing.assert_close(out.logits, torch.tensor(rows), rtol=1e-6, atol=1e-6)
