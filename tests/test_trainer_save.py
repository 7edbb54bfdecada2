"""`BalanceTrainer` saving: what the refusal to save non-finite weights tells the user."""

from __future__ import annotations

import os

import pytest
import torch
from feature_helpers import make_args

from mllm_balance import BalancedModel, BalanceTrainer
from mllm_balance.trainer import NonFiniteTrainingError


def test_the_refusal_names_the_first_four_non_finite_weights(tmp_path, tiny_config, tiny_datasets) -> None:
    """With every weight NaN, the error lists the first four of them (in state-dict order) and no more."""
    torch.manual_seed(0)
    trainer = BalanceTrainer(model=BalancedModel(tiny_config), args=make_args(tmp_path), eval_dataset=tiny_datasets[1])
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.fill_(float("nan"))
    names = list(trainer.model.trainable_state_dict())
    assert len(names) > 4
    out = os.path.join(tmp_path, "saved")
    with pytest.raises(NonFiniteTrainingError) as caught:
        trainer.save_model(out)
    assert f"the weights {names[:4]} are NaN or infinite" in str(caught.value)
    assert repr(names[4]) not in str(caught.value)
    assert not os.path.exists(out) or not os.listdir(out)
