"""Per-sample modality contributions (`mllm_balance.contributions`) and the pipeline's `return_contributions`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from contribution_helpers import NumberBackbone
from feature_helpers import make_args
from transformers import pipeline

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, build_feature_dataset
from mllm_balance import contributions as contributions_module
from mllm_balance.baselines import SumConfig, SumModel
from mllm_balance.contributions import label_prior, modality_contributions
from mllm_balance.pipeline import TASK
from mllm_balance.reference import record_backbone

PRIOR = [0.5, 0.3, 0.2]
X_A = [2.0, 0.0, 0.0]
X_B = [0.0, 1.5, 0.0]


def softmax(logits):
    exps = [math.exp(v) for v in logits]
    return [e / sum(exps) for e in exps]


@pytest.fixture
def sum_head():
    """Sum fusion with identity adapters and classifier: the logits of a coalition are the sum of its inputs."""
    backbone = NumberBackbone({"a": 3, "b": 3})
    config = SumConfig(modality_dims={"a": 3, "b": 3}, num_labels=3, hidden_size=3, label_prior=list(PRIOR))
    record_backbone(config, backbone)
    model = SumModel(config).eval()
    with torch.no_grad():
        for linear in (model.adapters["a"].proj, model.adapters["b"].proj, model.head.classifier):
            linear.weight.copy_(torch.eye(3))
            linear.bias.zero_()
    return model, backbone


def hand_shapley():
    """Two players, label 0 (the prediction of X_A + X_B): phi_a = (v(a) - v0 + v(ab) - v(b)) / 2."""
    v0 = PRIOR[0]
    va, vb = softmax(X_A)[0], softmax(X_B)[0]
    vab = softmax([a + b for a, b in zip(X_A, X_B)])[0]
    return {"a": 0.5 * (va - v0) + 0.5 * (vab - vb), "b": 0.5 * (vb - v0) + 0.5 * (vab - va)}, vab, v0


def test_hand_built_head_gets_the_hand_computed_shapley_values(sum_head):
    model, _ = sum_head
    expected, vab, v0 = hand_shapley()
    found = modality_contributions(model, {"a": torch.tensor([X_A]), "b": torch.tensor([X_B])})
    assert found.target.tolist() == [0]
    assert found.values[0]["a"] == pytest.approx(expected["a"], abs=1e-6)
    assert found.values[0]["b"] == pytest.approx(expected["b"], abs=1e-6)
    assert expected["a"] > 0.2 > expected["b"]  # the modality that carries the label gets the larger share
    assert float(found.full[0]) == pytest.approx(vab, abs=1e-6) and float(found.base[0]) == pytest.approx(v0)
    efficiency = float(found.full[0]) - float(found.base[0])
    assert sum(found.values[0].values()) == pytest.approx(efficiency, abs=1e-12)
    assert sum(found.values[0].values()) == pytest.approx(vab - v0, abs=1e-6)


def test_pipeline_returns_the_hand_computed_values_beside_the_scores(sum_head):
    model, backbone = sum_head
    expected, vab, v0 = hand_shapley()
    pipe = pipeline(TASK, model=model, backbone=backbone, device="cpu")
    out = pipe({"a": " ".join(map(str, X_A)), "b": X_B}, return_contributions=True)
    assert set(out) == {"scores", "contributions", "base_score"}
    assert out["scores"][0]["label"] == model.config.id2label[0]
    assert out["scores"][0]["score"] == pytest.approx(vab, abs=1e-6)
    assert list(out["contributions"]) == ["a", "b"]
    for m in ("a", "b"):
        assert out["contributions"][m] == pytest.approx(expected[m], abs=1e-6)
    assert out["base_score"] == pytest.approx(v0)
    assert out["base_score"] + sum(out["contributions"].values()) == pytest.approx(out["scores"][0]["score"], abs=1e-7)
    both = pipe({"a": X_A, "b": X_B}, return_contributions=True, return_modality_scores=True, top_k=1)
    assert set(both) == {"scores", "modality_scores", "contributions", "base_score"} and len(both["scores"]) == 1
    assert both["contributions"] == out["contributions"]


def test_one_present_modality_gets_all_the_contribution(sum_head):
    model, backbone = sum_head
    pipe = pipeline(TASK, model=model, backbone=backbone, device="cpu")
    out = pipe({"b": X_B}, return_contributions=True)
    p_b = softmax(X_B)
    assert out["scores"][0]["label"] == model.config.id2label[1]
    assert out["contributions"] == {"b": pytest.approx(p_b[1] - PRIOR[1], abs=1e-6)}
    assert out["base_score"] == pytest.approx(PRIOR[1])


def three_modality_model(seed: int = 0, **config_kwargs) -> tuple[BalancedModel, NumberBackbone]:
    backbone = NumberBackbone({"a": 4, "b": 3, "c": 2})
    torch.manual_seed(seed)
    config = BalanceConfig(
        modality_dims=dict(backbone.feature_sizes), num_labels=3, hidden_size=6, train_order=["c", "a", "b"],
        **config_kwargs,
    )  # fmt: skip
    record_backbone(config, backbone)
    return BalancedModel(config).eval(), backbone


def mixed_samples(n: int, sizes: dict[str, int], seed: int = 0) -> list[dict[str, list[float]]]:
    """Samples with every presence pattern (at least one modality each)."""
    rng = np.random.default_rng(seed)
    mods = list(sizes)
    samples = []
    for i in range(n):
        pattern = [(i + 1) >> k & 1 for k in range(len(mods))] if i + 1 < 2 ** len(mods) else [1] * len(mods)
        samples.append({m: (2 * rng.normal(size=sizes[m])).tolist() for m, on in zip(mods, pattern) if on})
    return samples


def test_batch_size_does_not_change_the_values_and_efficiency_holds():
    model, backbone = three_modality_model(label_prior=[0.2, 0.5, 0.3])
    pipe = pipeline(TASK, model=model, backbone=backbone, device="cpu")
    samples = mixed_samples(11, backbone.feature_sizes)
    one = pipe(samples, batch_size=1, return_contributions=True)
    eight = pipe(samples, batch_size=8, return_contributions=True)  # chunks of 8 and 3, mixed presence patterns
    for sample, a, b in zip(samples, one, eight):
        assert list(a["contributions"]) == [m for m in ("a", "b", "c") if m in sample]
        assert a["scores"][0]["label"] == b["scores"][0]["label"]
        for m in a["contributions"]:
            assert a["contributions"][m] == pytest.approx(b["contributions"][m], abs=1e-6)
        assert a["base_score"] + sum(a["contributions"].values()) == pytest.approx(a["scores"][0]["score"], abs=1e-7)
    assert any(abs(v) > 1e-3 for r in one for v in r["contributions"].values())


def test_backbone_runs_once_and_the_model_twice_per_batch():
    model, backbone = three_modality_model()
    pipe = pipeline(TASK, model=model, backbone=backbone, device="cpu")
    calls = []
    forward = model.forward
    model.forward = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)
    samples = mixed_samples(8, backbone.feature_sizes)
    backbone.calls.clear()
    pipe(samples, batch_size=8, return_contributions=True)
    expected = {m: sum(m in s for s in samples) for m in ("a", "b", "c")}
    assert backbone.calls == [expected] and expected == {"a": 5, "b": 5, "c": 5}  # once, each input encoded once
    assert len(calls) == 2  # the prediction, then every coalition of every sample in one stacked call


def test_values_are_the_prediction_on_each_coalition():
    """Each coalition's value is the model's own prediction (hybrid fusion) with only those modalities present."""
    model, backbone = three_modality_model()
    features = {m: torch.randn(1, d) for m, d in backbone.feature_sizes.items()}
    found = modality_contributions(model, features)
    target = int(found.target[0])

    def value(coalition):
        if not coalition:
            return 1 / 3  # no prior recorded: uniform
        with torch.no_grad():
            return float(model({m: features[m] for m in coalition}).logits.softmax(-1)[0, target])

    mods = ["a", "b", "c"]
    phi_a = sum(
        math.factorial(len(s)) * math.factorial(2 - len(s)) / 6 * (value(s | {"a"}) - value(s))
        for s in (frozenset(), frozenset("b"), frozenset("c"), frozenset("bc"))
    )
    assert found.values[0]["a"] == pytest.approx(phi_a, abs=1e-6)
    assert sum(found.values[0][m] for m in mods) == pytest.approx(value(frozenset(mods)) - 1 / 3, abs=1e-6)
    assert float(found.base[0]) == pytest.approx(1 / 3)


def test_permutation_sampling_beyond_the_exact_limit(monkeypatch):
    sizes = {m: 2 for m in "abcdefg"}  # 7 modalities > EXACT_MAX_MODALITIES
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims=sizes, num_labels=3, hidden_size=4, max_orders=2)
    model = BalancedModel(config).eval()
    features = {m: 2 * torch.randn(2, 2) for m in sizes}
    sampled = modality_contributions(model, features, seed=3)
    again = modality_contributions(model, {m: x[1:] for m, x in features.items()}, seed=3)
    assert dict(sampled.values[1]) == pytest.approx(dict(again.values[0]), abs=1e-6)  # seeded, batch-independent
    assert all(v > 0 for v in sampled.values[1].stderr.values())
    for b in range(2):
        assert sum(sampled.values[b].values()) == pytest.approx(float(sampled.full[b] - sampled.base[b]), abs=1e-6)
    monkeypatch.setattr(contributions_module, "EXACT_MAX_MODALITIES", 7)
    exact = modality_contributions(model, features)
    assert exact.values[0].stderr == dict.fromkeys(sizes, 0.0)
    for m in sizes:
        assert sampled.values[0][m] == pytest.approx(exact.values[0][m], abs=4 * sampled.values[0].stderr[m] + 1e-3)


def test_bad_input_raises_the_pipelines_errors(sum_head):
    model, backbone = sum_head
    pipe = pipeline(TASK, model=model, backbone=backbone, device="cpu")
    with pytest.raises(ValueError, match="return_contributions must be a bool, got 'yes'"):
        pipe({"a": X_A}, return_contributions="yes")
    with pytest.raises(ValueError, match="takes top_k, return_modality_scores, return_contributions"):
        pipe({"a": X_A}, return_contribution=True)
    for bad in ({"c": X_A}, {"a": None}, [{"a": X_A}, "not a dict"], {"a": [1.0, 2.0]}):
        with pytest.raises(ValueError) as plain:
            pipe(bad)
        with pytest.raises(ValueError) as explained:
            pipe(bad, return_contributions=True)
        assert str(explained.value) == str(plain.value)
    features = {"a": torch.tensor([X_A]), "b": torch.tensor([[float("nan")] * 3])}
    with pytest.raises(ValueError, match="NaN or inf in present samples"):
        modality_contributions(model, features)
    with pytest.raises(ValueError, match=r"probs has shape \(1, 2\)"):
        modality_contributions(model, {"a": torch.tensor([X_A])}, probs=torch.ones(1, 2))


def test_label_prior_recorded_by_the_trainer_and_saved(tmp_path, feature_maker):
    features, labels = feature_maker(40, seed=4)
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=4)
    trainer = BalanceTrainer(
        model=BalancedModel(config),
        args=make_args(tmp_path, order_schedule="fixed"),
        train_dataset=build_feature_dataset(features, labels),
    )
    expected = (np.bincount(labels, minlength=3) / len(labels)).tolist()
    assert trainer.model.config.label_prior == pytest.approx(expected)
    assert trainer.majority_label == int(np.argmax(expected))
    trainer.model.save_pretrained(tmp_path / "saved")
    reloaded = BalancedModel.from_pretrained(tmp_path / "saved")
    assert label_prior(reloaded.config).tolist() == pytest.approx(expected)
    assert label_prior(BalanceConfig(modality_dims={"a": 2}, num_labels=4)).tolist() == [0.25] * 4
    with pytest.raises(ValueError, match="label_prior must be non-negative shares summing to 1"):
        BalanceConfig(modality_dims={"a": 2}, num_labels=2, label_prior=[0.7, 0.7])
