"""`BalanceTrainer` scoring and prediction entry points: the Shapley estimator `"auto"` picks, the coalitions it
scores, an explicit scoring order, `ignore_keys`, and datasets given as plain lists of rows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from feature_helpers import make_args, make_features
from transformers.trainer_utils import EvalPrediction

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance.shapley import sample_permutations


def scoring_trainer(tmp_path, dims: dict[str, int], rows: int, model_seed: int = 0, **overrides) -> BalanceTrainer:
    """A trainer with an eval set only (so `v(empty)` is 0): `rows` samples, every modality present."""
    features, labels = make_features(rows, seed=2, dims=tuple(dims.items()), strength=(1.0,) * len(dims))
    torch.manual_seed(model_seed)
    model = BalancedModel(BalanceConfig(modality_dims=dims, num_labels=3, hidden_size=4))
    args = make_args(tmp_path, **overrides)
    return BalanceTrainer(model=model, args=args, eval_dataset=build_feature_dataset(features, labels))


@pytest.mark.parametrize("n", [8, 9])
def test_auto_scores_every_coalition_up_to_eight_modalities_and_sampled_orders_beyond(tmp_path, n: int) -> None:
    """`shapley_method="auto"` is exact (all `2^n` coalitions) for 8 modalities, the permutation estimator over
    `shapley_permutations` orders drawn with `seed` (their prefixes only) for 9."""
    mods = [f"m{i}" for i in range(n)]
    trainer = scoring_trainer(tmp_path, dict.fromkeys(mods, 1), rows=6, shapley_permutations=2, seed=3)
    assert trainer.args.shapley_method == "auto"
    scores = trainer.score_modalities()
    if n <= 8:
        every = {frozenset(s) for k in range(n + 1) for s in itertools.combinations(mods, k)}
        assert set(scores["accuracy"]) == every
    else:
        orders = sample_permutations(n, 2, 3)  # the two orders of seed 3
        prefixes = {frozenset(mods[i] for i in order[:k]) for order in orders for k in range(n + 1)}
        assert set(scores["accuracy"]) == prefixes and len(prefixes) < 2**n
    assert set(scores["shapley"]) == set(mods)
    # efficiency holds for both estimators: the values add up to P(all) - v(empty)
    assert sum(scores["shapley"].values()) == pytest.approx(scores["accuracy"][frozenset(mods)])


def hand_accuracy(model: BalancedModel, features, labels, coalition, order) -> float:
    """Accuracy (percent) of the model called on the coalition's features, chained over `order` restricted to it."""
    x = {m: torch.from_numpy(features[m]) for m in order if m in coalition}
    with torch.no_grad():
        preds = model(x, order=[m for m in order if m in coalition]).logits.argmax(-1).numpy()
    return float(100 * np.mean(preds == labels))


def test_score_modalities_runs_the_chains_over_the_order_it_is_given(tmp_path) -> None:
    """`score_modalities(order=...)` scores the coalitions over that order, not over the trainer's current one."""
    dims = {"a": 6, "b": 5}
    trainer = scoring_trainer(tmp_path, dims, rows=24, model_seed=2)
    trainer.set_order(["b", "a"])
    features, labels = make_features(24, seed=2, dims=tuple(dims.items()), strength=(1.0, 1.0))
    model = trainer.model.eval()
    both = frozenset("ab")
    over_ab = hand_accuracy(model, features, labels, both, ["a", "b"])
    assert over_ab != pytest.approx(hand_accuracy(model, features, labels, both, ["b", "a"]))  # orders differ
    scores = trainer.score_modalities(order=["a", "b"])
    assert scores["accuracy"][both] == pytest.approx(over_ab)
    only_a = hand_accuracy(model, features, labels, {"a"}, ["a", "b"])
    assert scores["accuracy"][frozenset("a")] == pytest.approx(only_a)
    assert trainer.order_state.order == ["b", "a"]  # scoring leaves the training order alone


def count_outputs(pred: EvalPrediction) -> dict[str, float]:
    """How many output arrays the metrics function is handed."""
    return {"outputs": len(pred.predictions) if isinstance(pred.predictions, tuple) else 1}


def test_evaluate_and_predict_honour_ignore_keys(tmp_path) -> None:
    """`ignore_keys=["fused"]` leaves the fused features out: only the logits reach the metrics and the
    predictions."""
    trainer = scoring_trainer(tmp_path, {"a": 6, "b": 5}, rows=12)
    trainer.compute_metrics = count_outputs
    assert trainer.evaluate()["eval_outputs"] == 2  # logits and fused features
    assert trainer.evaluate(ignore_keys=["fused"])["eval_outputs"] == 1
    logits, fused = trainer.predict(trainer.eval_dataset).predictions
    only = trainer.predict(trainer.eval_dataset, ignore_keys=["fused"]).predictions
    assert isinstance(only, np.ndarray) and only.shape == (12, 3)
    np.testing.assert_allclose(only, logits)


def test_a_plain_list_of_rows_is_evaluated_and_predicted(tmp_path) -> None:
    """A list of row dicts (no `datasets.Dataset`) goes to the data loader as it is: the predictions are the
    model's logits on those rows and the accuracy is theirs."""
    dims = {"a": 6, "b": 5}
    trainer = scoring_trainer(tmp_path, dims, rows=12)
    features, labels = make_features(12, seed=2, dims=tuple(dims.items()), strength=(1.0, 1.0))
    rows = [{**{m: features[m][i].tolist() for m in dims}, "labels": int(labels[i])} for i in range(12)]
    with torch.no_grad():
        want = trainer.model.eval()({m: torch.from_numpy(features[m]) for m in dims}).logits.numpy()
    accuracy = 100 * float(np.mean(want.argmax(-1) == labels))
    out = trainer.predict(rows, ignore_keys=["fused"])
    np.testing.assert_allclose(out.predictions, want, rtol=1e-5, atol=1e-6)
    assert out.metrics["test_accuracy"] == pytest.approx(accuracy)
    assert trainer.evaluate(rows)["eval_accuracy"] == pytest.approx(accuracy)


def test_the_empty_coalition_is_scored_on_the_dataset_scored(tmp_path) -> None:
    """`v(empty)` with `empty_value="prior"` is the majority training label's share of the dataset passed to
    `score_modalities`, not of the trainer's own eval set."""
    dims = {"a": 6, "b": 5}
    features, labels = make_features(12, seed=2, dims=tuple(dims.items()))
    train_labels = np.array([1] * 9 + [0] * 3)  # majority label 1
    model = BalancedModel(BalanceConfig(modality_dims=dims, num_labels=3, hidden_size=4))
    trainer = BalanceTrainer(
        model=model,
        args=make_args(tmp_path, empty_value="prior"),
        train_dataset=build_feature_dataset(features, train_labels),
        eval_dataset=build_feature_dataset(features, np.array([1] * 6 + [2] * 6)),  # label 1: 50 %
    )
    other = build_feature_dataset(features, np.array([1] * 3 + [0] * 9))  # label 1: 25 %
    assert trainer.score_modalities()["accuracy"][frozenset()] == pytest.approx(50.0)
    assert trainer.score_modalities(other)["accuracy"][frozenset()] == pytest.approx(25.0)
