"""Missing-modality robustness: each sample keeps a modality, the drop rate is as asked, draws are seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from baseline_helpers import training_args

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer
from mllm_balance.robustness import DEFAULT_DROP_RATES, drop_masks, drop_modalities, missing_modality_accuracy


def full(n: int, mods=("a", "b", "c")) -> dict[str, np.ndarray]:
    return {m: np.ones(n, dtype=bool) for m in mods}


@pytest.mark.parametrize("mods", [("a", "b"), ("a", "b", "c")])
@pytest.mark.parametrize("rate", DEFAULT_DROP_RATES)
def test_every_sample_keeps_a_modality_and_the_rate_is_exact(mods, rate):
    n = 203
    masks = drop_masks(full(n, mods), rate, seed=7)
    stacked = np.stack([masks[m] for m in mods], axis=1)  # (N, n)
    assert stacked.any(1).all()
    dropped = (~stacked).sum()
    assert dropped == round(rate * n * len(mods))
    assert abs(dropped / stacked.size - rate) <= 0.5 / stacked.size


def test_drops_are_seeded_and_nested():
    a = drop_masks(full(100), 0.3, seed=1)
    b = drop_masks(full(100), 0.3, seed=1)
    c = drop_masks(full(100), 0.3, seed=2)
    assert all(np.array_equal(a[m], b[m]) for m in a)
    assert any(not np.array_equal(a[m], c[m]) for m in a)
    larger = drop_masks(full(100), 0.5, seed=1)
    assert all((~a[m] <= ~larger[m]).all() for m in a)  # what 30 % drops, 50 % drops too


def test_modalities_are_dropped_evenly():
    masks = drop_masks(full(3000), 0.4, seed=0)
    shares = [1 - masks[m].mean() for m in masks]
    assert max(shares) - min(shares) < 0.05


def test_already_missing_entries_stay_missing():
    present = full(50, ("a", "b"))
    present["b"][:10] = False
    masks = drop_masks(present, 0.2, seed=0)
    assert not masks["b"][:10].any()
    assert masks["a"][:10].all()  # their only modality is kept
    assert (~np.stack(list(masks.values()))).sum() == 10 + round(0.2 * 100)


def test_impossible_rates_are_refused():
    with pytest.raises(ValueError, match="every sample keeps a modality"):
        drop_masks(full(10, ("a", "b")), 0.6, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        drop_masks(full(10), 1.0, seed=0)


def test_dropped_dataset_follows_the_feature_column_convention(datasets):
    _, val = datasets
    dropped = drop_modalities(val, ["a", "b"], 0.5, seed=0)
    view = dropped.with_format("numpy")
    for m in ("a", "b"):
        present = np.asarray(view[f"{m}_present"])
        x = np.asarray(view[m])
        assert (x[~present] == 0).all()
        np.testing.assert_array_equal(x[present], np.asarray(val.with_format("numpy")[m])[present])
    np.testing.assert_array_equal(view["labels"], val.with_format("numpy")["labels"])


def test_accuracy_per_rate_matches_evaluation_at_zero(tmp_path, datasets):
    train, val = datasets
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)
    trainer = BalanceTrainer(model=BalancedModel(config), args=training_args(tmp_path), train_dataset=train,
                             eval_dataset=val)  # fmt: skip
    trainer.train()
    accuracy = missing_modality_accuracy(trainer, val, rates=(0.0, 0.5), seed=0)
    assert set(accuracy) == {0.0, 0.5}
    assert accuracy[0.0] == pytest.approx(trainer.evaluate(val)["eval_accuracy"])
