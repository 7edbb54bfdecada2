"""Missing-modality robustness: each sample keeps a modality, the drop rate is as asked, draws are seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from baseline_helpers import training_args

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer
from mllm_balance.robustness import (
    DEFAULT_DROP_RATES,
    draw_seed,
    drop_masks,
    drop_modalities,
    missing_modality_accuracy,
)


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


def test_default_seed_is_zero():
    """`seed` defaults to 0 in the three entry points (the drops of a run are reproducible without naming it)."""
    present = full(60)
    np.testing.assert_equal(drop_masks(present, 0.3), drop_masks(present, 0.3, seed=0))


def test_integer_presence_masks_give_boolean_masks():
    """0/1 integer presence arrays are read as booleans, and the result is boolean."""
    present = {"a": np.ones(40, dtype=np.int64), "b": np.ones(40, dtype=np.int64)}
    present["b"][:5] = 0
    masks = drop_masks(present, 0.25, seed=3)
    expected = drop_masks({m: v.astype(bool) for m, v in present.items()}, 0.25, seed=3)
    for m in ("a", "b"):
        assert masks[m].dtype == np.bool_
        np.testing.assert_array_equal(masks[m], expected[m])
    # 5 already missing + round(0.25 * 40 * 2) = 20 dropped
    assert (~np.stack(list(masks.values()))).sum() == 5 + 20


def test_samples_without_any_modality_are_named():
    """A sample with no modality present is refused, and the error lists the first ten such samples."""
    present = full(6, ("a", "b"))
    for m in present:
        present[m][[1, 3]] = False
    with pytest.raises(ValueError, match=r"samples \[1, 3\] have no modality present"):
        drop_masks(present, 0.1)
    many = full(14, ("a", "b"))
    for m in many:
        many[m][:12] = False
    with pytest.raises(ValueError, match=r"samples \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] have"):
        drop_masks(many, 0.0)
    with pytest.raises(ValueError, match="^present must name at least one modality$"):
        drop_masks({}, 0.1)


def test_infeasible_rate_error_gives_the_counts():
    """The refusal of a too-large rate gives the number of entries and the largest share that can go."""
    # 10 samples x 2 modalities = 20 entries; each keeps one, so at most 10 (50 %) can go
    with pytest.raises(ValueError, match=r"of the 20 entries .* at most 10 entries \(50%\) can go"):
        drop_masks(full(10, ("a", "b")), 0.6, seed=0)


def test_dropped_dataset_keeps_missing_entries_and_uses_the_seed():
    """Entries already missing stay missing, and the drops are those of `drop_masks` with the same seed."""
    from baseline_helpers import features

    from mllm_balance import build_feature_dataset

    x, y = features(30, seed=4)
    present = {"a": np.ones(30, dtype=bool), "b": np.ones(30, dtype=bool)}
    present["b"][:6] = False
    dataset = build_feature_dataset(x, y, present=present)
    unchanged = drop_modalities(dataset, ["a", "b"], 0.0).with_format("numpy")
    np.testing.assert_array_equal(unchanged["b_present"], present["b"])
    for seed in (0, 3):
        dropped = drop_modalities(dataset, ["a", "b"], 0.3, seed=seed).with_format("numpy")
        expected = drop_masks(present, 0.3, seed=seed)
        for m in ("a", "b"):
            np.testing.assert_array_equal(dropped[f"{m}_present"], expected[m])
    default = drop_modalities(dataset, ["a", "b"], 0.3).with_format("numpy")
    np.testing.assert_array_equal(default["b_present"], drop_masks(present, 0.3, seed=0)["b"])


def test_accuracy_per_rate_uses_the_seeded_drops(tmp_path, datasets):
    """Each rate's accuracy is the prediction accuracy on `drop_modalities(..., seed)`; the seed defaults to 0."""
    _, val = datasets
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)
    trainer = BalanceTrainer(model=BalancedModel(config), args=training_args(tmp_path), eval_dataset=val)

    def direct(seed: int) -> float:
        dropped = drop_modalities(val, ["a", "b"], 0.4, seed=seed)
        return trainer.predict(dropped, metric_key_prefix="x").metrics["x_accuracy"]

    by_seed = {seed: direct(seed) for seed in (0, 1, 5)}
    assert len(set(by_seed.values())) > 1  # the seed changes the accuracy of this untrained model
    assert missing_modality_accuracy(trainer, val, rates=(0.4,), seed=5) == {0.4: pytest.approx(by_seed[5])}
    assert missing_modality_accuracy(trainer, val, rates=(0.4,)) == {0.4: pytest.approx(by_seed[0])}


def test_draws_average_explicit_masked_calls(tmp_path, datasets):
    """`draws=k` is the mean of the accuracies on the drops of `draw_seed(seed, j)`, j < k; its first draw is the
    single draw, the other draws differ from it, and rate 0 is scored once."""
    _, val = datasets
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)
    trainer = BalanceTrainer(model=BalancedModel(config), args=training_args(tmp_path), eval_dataset=val)

    def direct(seed) -> float:
        dropped = drop_modalities(val, ["a", "b"], 0.5, seed=seed)
        return trainer.predict(dropped, metric_key_prefix="x").metrics["x_accuracy"]

    assert draw_seed(3, 0) == 3 and draw_seed(3, 2) == [3, 2]
    by_draw = [direct(draw_seed(3, j)) for j in range(4)]
    assert len(set(by_draw)) > 1  # the draws differ on this untrained model
    got = missing_modality_accuracy(trainer, val, rates=(0.0, 0.5), seed=3, draws=4)
    assert got[0.5] == pytest.approx(sum(by_draw) / 4)
    assert missing_modality_accuracy(trainer, val, rates=(0.5,), seed=3)[0.5] == pytest.approx(by_draw[0])
    calls = []
    original = trainer.predict
    trainer.predict = lambda *a, **k: calls.append(1) or original(*a, **k)
    assert got[0.0] == pytest.approx(missing_modality_accuracy(trainer, val, rates=(0.0,), seed=3, draws=4)[0.0])
    assert len(calls) == 1
    with pytest.raises(ValueError, match="draws must be at least 1, got 0"):
        missing_modality_accuracy(trainer, val, rates=(0.5,), draws=0)
