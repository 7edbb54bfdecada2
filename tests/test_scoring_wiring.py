"""Wiring of the scoring path against hand computations: `<m>_present` columns -> the collator's `modality_mask` ->
predictions; the coalition accuracies `P(S)` with both empty-coalition values and the fallback label; the Shapley
values and EDM built on them; missing-modality accuracy; EDM and the order rule with a negative Shapley value.

Each test names the one-line mutant of the package it is meant to catch (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from feature_helpers import make_args, make_features

from mllm_balance import (
    BalanceConfig,
    BalanceDataCollator,
    BalancedModel,
    BalanceTrainer,
    build_feature_dataset,
    equilibrium_deviation,
    next_order,
)
from mllm_balance.robustness import drop_masks, missing_modality_accuracy

DIMS = {"a": 6, "b": 5}
MAJORITY = 2
N_EVAL = 24


def tiny_model() -> BalancedModel:
    # a seed whose coalitions score unevenly (with the prior, order a > b: 37.5, 33.3, 37.5 and 25 %) and whose chain
    # predictions depend on the order (P(a+b) is 41.7 % over the order b > a)
    torch.manual_seed(13)
    return BalancedModel(BalanceConfig(modality_dims=DIMS, num_labels=3, hidden_size=8))


def train_set():
    features, _ = make_features(30, seed=1)
    labels = np.array([MAJORITY] * 12 + [0] * 9 + [1] * 9)  # the majority training label is 2
    return build_feature_dataset(features, labels)


def eval_arrays():
    """Rows `i % 3 == 0` have `a` only, `i % 3 == 1` `b` only, the others both; the labels run 0, 0, 0, 1, 1, 1,
    2, 2, 2, 0, ... (six 2s), so rows without `a` and rows without `b` both hold the majority label 2 (rows 6, 7,
    15, 16)."""
    features, _ = make_features(N_EVAL, seed=2)
    i = np.arange(N_EVAL)
    present = {"a": i % 3 != 1, "b": i % 3 != 0}
    labels = (i // 3) % 3
    return features, labels, present


def make_trainer(tmp_path, model=None, eval_dataset=None, **overrides) -> BalanceTrainer:
    features, labels, present = eval_arrays()
    if eval_dataset is None:
        eval_dataset = build_feature_dataset(features, labels, present)
    args = make_args(tmp_path, per_device_eval_batch_size=5, **overrides)  # several eval batches
    return BalanceTrainer(model=model or tiny_model(), args=args, train_dataset=train_set(), eval_dataset=eval_dataset)


def explicit_prediction(model: BalancedModel, features, i: int, modalities, order=None) -> int:
    """The model called on sample `i` with the features of `modalities` only (no mask involved)."""
    x = {m: torch.from_numpy(features[m][i : i + 1]) for m in modalities}
    with torch.no_grad():
        return int(model(x, order=order).logits.argmax(-1))


def logits_of(prediction) -> np.ndarray:
    p = prediction.predictions
    return p[0] if isinstance(p, tuple) else p


# ----------------------------------------------------------- collator (mutant 4)
def test_present_columns_become_the_collators_modality_mask():
    """Mutant 4 (no `modality_mask` emitted)."""
    features, labels, present = eval_arrays()
    dataset = build_feature_dataset(features, labels, present)
    rows = [dataset[i] for i in range(7)]
    batch = BalanceDataCollator(DIMS)(rows)
    assert set(batch["modality_mask"]) == {"a", "b"}
    for m in DIMS:
        np.testing.assert_array_equal(batch["modality_mask"][m].numpy(), present[m][:7])
        assert batch["modality_mask"][m].dtype == torch.bool
    # a `None` value marks a modality missing too; a complete modality gets no mask entry
    rows = [{"a": [0.5] * 6, "b": None, "labels": 1}, {"a": [1.0] * 6, "b": [2.0] * 5, "labels": 0}]
    batch = BalanceDataCollator(DIMS)(rows)
    assert list(batch["modality_mask"]) == ["b"]
    assert batch["modality_mask"]["b"].tolist() == [False, True]
    torch.testing.assert_close(batch["features"]["b"][0], torch.zeros(5))
    assert batch["labels"].tolist() == [1, 0]


def test_predictions_from_present_columns_equal_explicit_masked_calls(tmp_path):
    """`<m>_present` -> collator -> model: the trainer's logits are those of the model called on each sample's
    present modalities, and those of one masked call; the zeroed vectors of missing rows never count."""
    features, labels, present = eval_arrays()
    trainer = make_trainer(tmp_path)
    model = trainer.model.eval()
    got = logits_of(trainer.predict(trainer.eval_dataset))
    masked = model(
        {m: torch.from_numpy(np.where(present[m][:, None], features[m], 0.0)) for m in DIMS},
        modality_mask={m: torch.from_numpy(present[m]) for m in DIMS},
    ).logits.detach()
    np.testing.assert_allclose(got, masked.numpy(), rtol=1e-5, atol=1e-6)
    for i in range(N_EVAL):
        x = {m: torch.from_numpy(features[m][i : i + 1]) for m in DIMS if present[m][i]}
        np.testing.assert_allclose(got[i], model(x).logits.detach()[0].numpy(), rtol=1e-5, atol=1e-6)
    # the zeros stand for "missing", not for a zero feature: as present features they would change the logits
    unmasked = model({m: torch.from_numpy(np.where(present[m][:, None], features[m], 0.0)) for m in DIMS}).logits
    assert not np.allclose(got, unmasked.detach().numpy(), atol=1e-4)


# ------------------------------------------------------- coalition accuracy (mutant 5)
def hand_coalition_accuracy(model, order, empty_value: str) -> dict[frozenset[str], float]:
    features, labels, present = eval_arrays()
    out = {}
    for coalition in (frozenset("a"), frozenset("b"), frozenset("ab")):
        correct = 0
        for i in range(N_EVAL):
            mods = [m for m in order if m in coalition and present[m][i]]
            if mods:
                pred = explicit_prediction(model, features, i, mods, order=mods)
            else:  # no modality of the coalition: the majority training label, or wrong
                pred = MAJORITY if empty_value == "prior" else None
            correct += pred == labels[i]
        out[coalition] = 100.0 * correct / N_EVAL
    empty = 100.0 * float(np.mean(labels == MAJORITY)) if empty_value == "prior" else 0.0  # 6 / 24 with the prior
    out[frozenset()] = empty
    return out


@pytest.mark.parametrize("empty_value", ["prior", "zero"])
def test_coalition_accuracies_by_hand(tmp_path, empty_value):
    """Mutant 5: `v(empty)` forced to 0, and rows with no modality of a coalition always counted wrong."""
    trainer = make_trainer(tmp_path, empty_value=empty_value)
    assert trainer.majority_label == MAJORITY
    trainer.set_order(["b", "a"])  # the chains run over the current order
    model = trainer.model.eval()
    hand = hand_coalition_accuracy(model, ["b", "a"], empty_value)
    got = trainer.coalition_accuracy([frozenset("a"), frozenset("b"), frozenset("ab")])
    assert got == pytest.approx({c: v for c, v in hand.items() if c})
    assert trainer.empty_coalition_value() == pytest.approx(hand[frozenset()])
    if empty_value == "prior":
        assert hand[frozenset()] == pytest.approx(25.0)  # 6 of the 24 labels are 2
    # an explicit order overrides the current one
    other = hand_coalition_accuracy(model, ["a", "b"], empty_value)[frozenset("ab")]
    assert other != pytest.approx(hand[frozenset("ab")])  # (the test can tell the orders apart)
    assert trainer.coalition_accuracy([frozenset("ab")], order=["a", "b"]) == pytest.approx({frozenset("ab"): other})


def test_the_fallback_label_decides_the_rows_without_the_coalitions_modalities(tmp_path):
    """The rows without `b` (8 of 24, two of them labelled 2) are right under the prior exactly when labelled 2."""
    prior = make_trainer(tmp_path / "prior", empty_value="prior").coalition_accuracy([frozenset("b")])
    zero = make_trainer(tmp_path / "zero", empty_value="zero").coalition_accuracy([frozenset("b")])
    assert prior[frozenset("b")] - zero[frozenset("b")] == pytest.approx(100 * 2 / N_EVAL)


@pytest.mark.parametrize("empty_value", ["prior", "zero"])
def test_shapley_values_and_edm_from_the_hand_accuracies(tmp_path, empty_value):
    trainer = make_trainer(tmp_path, empty_value=empty_value)
    p = hand_coalition_accuracy(trainer.model.eval(), ["a", "b"], empty_value)
    scores = trainer.score_modalities()
    assert scores["accuracy"] == pytest.approx(p)
    a, b, ab, empty = p[frozenset("a")], p[frozenset("b")], p[frozenset("ab")], p[frozenset()]
    phi = {"a": 0.5 * (a - empty) + 0.5 * (ab - b), "b": 0.5 * (b - empty) + 0.5 * (ab - a)}
    assert dict(scores["shapley"]) == pytest.approx(phi)
    total = phi["a"] + phi["b"]
    assert total == pytest.approx(ab - empty) and total > 0
    assert scores["edm"] == pytest.approx(sum(abs(100 - 100 * 2 * v / total) for v in phi.values()))


# ------------------------------------------------------- missing-modality robustness
def test_missing_modality_accuracy_at_half_equals_explicit_masked_calls(tmp_path):
    features, labels = make_features(40, seed=4)
    complete = build_feature_dataset(features, labels)
    trainer = make_trainer(tmp_path, eval_dataset=complete)
    model = trainer.model.eval()
    masks = drop_masks({m: np.ones(40, dtype=bool) for m in DIMS}, 0.5, seed=0)
    assert sum(int((~masks[m]).sum()) for m in DIMS) == 40  # half of the 80 entries, each sample keeps one
    hand = 100.0 * np.mean(
        [explicit_prediction(model, features, i, [m for m in DIMS if masks[m][i]]) == labels[i] for i in range(40)]
    )
    full = 100.0 * np.mean([explicit_prediction(model, features, i, list(DIMS)) == labels[i] for i in range(40)])
    accuracy = missing_modality_accuracy(trainer, complete, rates=(0.0, 0.5), seed=0)
    assert accuracy == pytest.approx({0.0: full, 0.5: hand})


# ------------------------------------------------------- negative Shapley values
def test_edm_and_next_order_with_a_negative_shapley_value():
    # sum = 20: phi~ = 100 * 2 * (30, -10) / 20 = (300, -100) -> |100 - 300| + |100 + 100| = 400
    edm, terms = equilibrium_deviation({"a": 30.0, "b": -10.0}, return_terms=True)
    assert edm == pytest.approx(400.0)
    assert terms == pytest.approx({"a": 200.0, "b": 200.0})
    assert next_order({"a": 30.0, "b": -10.0}, ["a", "b"]) == ["b", "a"]
    # three modalities, sum 20: phi~ = 300 * (20, -5, 5) / 20 = (300, -75, 75) -> 200 + 175 + 25
    assert equilibrium_deviation({"a": 20.0, "b": -5.0, "c": 5.0}) == pytest.approx(400.0)
    assert next_order({"a": 20.0, "b": -5.0, "c": 5.0}, ["a", "b", "c"]) == ["b", "c", "a"]


def test_epoch_end_scores_reorders_and_logs_with_a_negative_shapley_value(tmp_path, monkeypatch):
    """P(a) = 40, P(b) = 0, P(a+b) = 20, v(empty) = 0 give phi = {a: 30, b: -10}: EDM 400, `b` trained first."""
    trainer = make_trainer(tmp_path, empty_value="zero")
    table = {frozenset("a"): 40.0, frozenset("b"): 0.0, frozenset("ab"): 20.0}
    monkeypatch.setattr(trainer, "coalition_accuracy", lambda coalitions, *a, **k: {c: table[c] for c in coalitions})
    assert trainer.order_state.order == ["a", "b"]
    trainer.state.epoch = 1.0
    trainer.shapley_callback.on_epoch_end(trainer.args, trainer.state, trainer.control)
    assert trainer.order_state.order == ["b", "a"] and trainer.model.config.train_order == ["b", "a"]
    (log,) = [entry for entry in trainer.state.log_history if "edm" in entry]
    assert log["edm"] == pytest.approx(400.0)
    assert log["shapley/a"] == pytest.approx(30.0) and log["shapley/b"] == pytest.approx(-10.0)
    assert log["order"] == "b>a"
