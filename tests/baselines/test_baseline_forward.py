"""The baselines' shared forward: label checks, the errors of `active_modality`, and the fields of the output."""

from __future__ import annotations

import pytest
import torch

from mllm_balance.baselines import get_baseline

X = {"a": torch.randn(4, 6, generator=torch.Generator().manual_seed(0)),
     "b": torch.randn(4, 5, generator=torch.Generator().manual_seed(1))}  # fmt: skip


def build(name: str):
    spec = get_baseline(name)
    torch.manual_seed(0)
    return spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, hidden_size=8))


@pytest.mark.parametrize("training", [True, False])
def test_labels_outside_the_label_set_are_refused(training: bool):
    """A label past `num_labels - 1` (here 3 for labels 0..2) is refused in both modes."""
    model = build("concat").train(training)
    with pytest.raises(ValueError, match="label"):
        model(X, labels=torch.tensor([0, 1, 2, 3]))


def test_active_modality_errors():
    """`active_modality` is refused at evaluation and when it names no modality of the model."""
    model = build("mla")
    with pytest.raises(ValueError, match="training mode"):
        model.eval()(X, labels=torch.tensor([0, 1, 2, 0]), active_modality="a")
    with pytest.raises(ValueError, match="'c' is not one of"):
        model.train()(X, labels=torch.tensor([0, 1, 2, 0]), active_modality="c")


def test_output_without_labels_has_no_loss_and_returns_the_fusion():
    """Without labels the loss is None; the concat baseline's fused vector is the concatenated adapted features."""
    model = build("concat").eval()
    with torch.no_grad():
        out = model(X)
        hand = torch.cat([model.adapters[m](X[m]) for m in ("a", "b")], dim=-1)  # (4, 16)
    assert out.loss is None
    torch.testing.assert_close(out.fused, hand)
