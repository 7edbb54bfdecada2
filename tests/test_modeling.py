"""BalancedModel: chain, hybrid-order fusion, missing modalities, batch independence, alternating steps."""

from __future__ import annotations

import itertools

import pytest
import torch

from mllm_balance import BalanceConfig, BalancedModel
from mllm_balance.hybrid_fusion import hybrid_orders
from mllm_balance.modules import ModalityMemory


def three_modality_model(**overrides) -> BalancedModel:
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims={"text": 4, "image": 3, "audio": 5}, num_labels=3, hidden_size=8, **overrides)
    return BalancedModel(config)


def features(batch: int = 6, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, d, generator=g) for m, d in (("text", 4), ("image", 3), ("audio", 5))}


def test_chain_matches_equations_step_by_step():
    model = three_modality_model().eval()
    x = features()
    a = {m: model.adapters[m](x[m]) for m in x}
    h = a["image"]
    for m in ("audio", "text"):
        h = model.memory(h, a[m])  # eval: identity mapping, so x_hat = a_m(x_m)
    out = model(x, order=["image", "audio", "text"])
    torch.testing.assert_close(out.fused, h)
    torch.testing.assert_close(out.logits, model.classifier(h))


def test_hybrid_fusion_is_the_mean_over_every_order():
    model = three_modality_model(hybrid_states="final").eval()  # Algorithm 1
    x = features()
    hybrid = model(x)
    fused = torch.stack([model(x, order=list(p)).fused for p in itertools.permutations(["text", "image", "audio"])])
    torch.testing.assert_close(hybrid.fused, fused.mean(0))
    torch.testing.assert_close(hybrid.logits, model.classifier(fused.mean(0)))


def test_hybrid_samples_orders_beyond_max_orders_and_keeps_the_train_order():
    model = three_modality_model(max_orders=2, train_order=["audio", "text", "image"], hybrid_states="final").eval()
    orders = model.hybrid_orders(["text", "image", "audio"])
    assert len(orders) == 2 and len(set(orders)) == 2
    assert orders[0] == ("audio", "text", "image")
    x = features()
    expected = torch.stack([model(x, order=list(o)).fused for o in orders]).mean(0)
    torch.testing.assert_close(model(x).fused, expected)
    again = three_modality_model(max_orders=2, train_order=["audio", "text", "image"])
    assert again.hybrid_orders(["audio", "image", "text"]) == orders  # seeded: same orders every time


def test_hybrid_fusion_over_every_state_averages_every_prefix_of_every_order():
    model = three_modality_model().eval()  # the default: hybrid_states="all"
    x = features()
    a = {m: model.adapters[m](x[m]) for m in x}
    states = []
    for order in itertools.permutations(["text", "image", "audio"]):
        states += model.chain(a, list(order))  # h_1, h_2, h_3 of this order (eval: identity mapping)
    expected = torch.stack(states).mean(0)
    torch.testing.assert_close(model(x).fused, expected)
    torch.testing.assert_close(model(x).logits, model.classifier(expected))
    # a sample with one modality: its only state is the adapter output
    one = model({"text": x["text"]})
    torch.testing.assert_close(one.fused, a["text"])


@pytest.mark.parametrize("mode", ["hybrid", "train_order", "entropy"])
@pytest.mark.parametrize("level", ["sample", "feature"])
def test_eval_prediction_does_not_depend_on_batch_mates(mode, level):
    model = three_modality_model(mapping_level=level)
    model.train()
    model(features(16, seed=5), labels=torch.zeros(16, dtype=torch.long))  # move the running statistics
    model.eval()
    x = features(8)
    full = model(x, inference_mode=mode).logits
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    shuffled = model({m: v[perm] for m, v in x.items()}, inference_mode=mode).logits
    torch.testing.assert_close(shuffled, full[perm])
    for i in range(8):
        alone = model({m: v[i : i + 1] for m, v in x.items()}, inference_mode=mode).logits
        torch.testing.assert_close(alone, full[i : i + 1])


@pytest.mark.parametrize("mode", ["hybrid", "train_order", "entropy"])
def test_missing_modality_predicted_as_the_chain_over_present_ones(mode):
    model = three_modality_model(train_order=["image", "text", "audio"]).eval()
    x = features(6)
    mask = {"audio": torch.tensor([True, False, True, False, True, True])}
    out = model(x, modality_mask=mask, inference_mode=mode).logits
    for i in (1, 3):
        present_only = {"text": x["text"][i : i + 1], "image": x["image"][i : i + 1]}
        torch.testing.assert_close(out[i : i + 1], model(present_only, inference_mode=mode).logits)
    if mode == "train_order":
        explicit = model({m: x[m][[1]] for m in ("text", "image")}, order=["image", "text"]).logits
        torch.testing.assert_close(out[1:2], explicit)
    # a missing modality's values never matter
    x2 = dict(x, audio=x["audio"].clone())
    x2["audio"][[1, 3]] = 1e6
    torch.testing.assert_close(model(x2, modality_mask=mask, inference_mode=mode).logits, out)


def test_alternating_step_updates_only_the_active_adapter():
    model = three_modality_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    out = model(
        features(), labels=torch.tensor([0, 1, 2, 0, 1, 2]), order=["text", "image", "audio"], active_modality="image"
    )
    out.loss.backward()
    optimizer.step()
    after = model.state_dict()
    for k in before:
        changed = not torch.equal(before[k], after[k])
        if k.startswith("adapters.image") or k.startswith("memory") or k.startswith("classifier"):
            assert changed, k
        else:
            assert not changed, k  # other adapters bit-identical


def test_an_alternating_step_is_refused_in_eval_mode() -> None:
    """`active_modality` on a model in eval mode is an error that says the step is for training only."""
    model = three_modality_model().eval()
    with pytest.raises(ValueError, match="^active_modality is only meaningful in training mode$"):
        model(features(), labels=torch.zeros(6, dtype=torch.long), active_modality="text")


def test_first_modality_step_does_not_touch_the_memory():
    model = three_modality_model().train()
    out = model(
        features(), labels=torch.zeros(6, dtype=torch.long), order=["text", "image", "audio"], active_modality="text"
    )
    out.loss.backward()
    assert model.memory.gates.weight.grad is None
    assert model.adapters["text"].proj.weight.grad is not None


def test_ablation_switches_bypass_their_module(monkeypatch):
    calls = []
    model = three_modality_model(use_memory=False, use_mapping=False).train()
    monkeypatch.setattr(model.memory, "forward", lambda *a: calls.append("memory"))
    monkeypatch.setattr(model.mapping, "forward", lambda *a: calls.append("mapping"))
    out = model(features(), labels=torch.zeros(6, dtype=torch.long))
    assert calls == [] and torch.isfinite(out.loss)


def test_save_and_load_round_trip(tmp_path):
    model = three_modality_model(train_order=["audio", "image", "text"]).eval()
    model.save_pretrained(tmp_path)
    loaded = BalancedModel.from_pretrained(tmp_path).eval()
    assert loaded.config.modalities == ["text", "image", "audio"]
    assert loaded.train_order == ["audio", "image", "text"]
    x = features()
    torch.testing.assert_close(loaded(x).logits, model(x).logits, rtol=0, atol=0)


def test_auto_classes_load_without_remote_code(tmp_path):
    from transformers import AutoConfig, AutoModel

    model = three_modality_model()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), BalanceConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), BalancedModel)


def hand_states(model: BalancedModel, a: dict[str, torch.Tensor], order) -> list[torch.Tensor]:
    """Eq. 9-14 written out for one order, honouring the ablation switches: every prefix state h_1 .. h_k."""
    h = a[order[0]]
    states = [h]
    for m in order[1:]:
        x_hat = model.mapping(h, a[m]) if model.config.use_mapping else a[m]
        h = model.memory(h, x_hat) if model.config.use_memory else (h + x_hat) / 2
        states.append(h)
    return states


@pytest.mark.parametrize("hybrid_states", ["final", "all"])
@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"use_memory": False},
        {"use_mapping": False},
        {"use_mapping": False, "use_memory": False},
        {"mapping_level": "feature"},
        {"mapping_at_eval": "batch"},
        {"memory_residual": False},
        {"memory_residual": False, "mapping_at_eval": "batch"},
    ],
    ids=["full", "no_memory", "no_mapping", "neither", "feature_mapping", "batch_mapping", "eq14", "eq14_batch"],
)
def test_hybrid_fusion_is_the_hand_written_chain_mean_in_every_configuration(switches, hybrid_states):
    # The batched chains take a fast path (each modality mapped and projected once) when the mapping cannot read
    # the state; every configuration must give the hand-written mean over orders either way.
    model = three_modality_model(hybrid_states=hybrid_states, **switches)
    if switches.get("mapping_level") == "feature":  # a running correlation that is not the identity
        with torch.no_grad():
            model.mapping.running_correlation.copy_(torch.rand(8, 8, generator=torch.Generator().manual_seed(4)))
    model.eval()
    x = features()
    a = {m: model.adapters[m](x[m]) for m in x}
    states = []
    for order in itertools.permutations(["text", "image", "audio"]):
        chain = hand_states(model, a, order)
        states += chain if hybrid_states == "all" else chain[-1:]
    expected = torch.stack(states).mean(0)
    torch.testing.assert_close(model(x).fused, expected)
    if model.config.use_memory:  # h_2 is Eq. 14's output, plus h_1 with the residual path (the default)
        h1 = a["text"]
        x_hat = model.mapping(h1, a["image"])
        plain = ModalityMemory(8)
        plain.load_state_dict(model.memory.state_dict())
        residual = h1 if model.config.memory_residual else 0.0
        torch.testing.assert_close(hand_states(model, a, ("text", "image"))[1], residual + plain(h1, x_hat))


def test_subset_logits_names_an_unknown_modality():
    model = three_modality_model().eval()
    known = r"known: \['text', 'image', 'audio'\]"
    with pytest.raises(ValueError, match=r"subset names unknown modalities \['video'\]; " + known):
        model.subset_logits(features(), [("text",), ("text", "video")])


def test_sampled_hybrid_orders_are_pinned():
    # a saved model predicts with these orders: a change of the sampling would change its predictions
    five = list("abcde")
    assert hybrid_orders(five, five, 3, 0) == [tuple("abcde"), tuple("abced"), tuple("baecd")]
    assert hybrid_orders(five, list("ecab"), 3, 7) == [tuple("abce"), tuple("beac"), tuple("acbe")]


def test_entropy_inference_is_the_entropy_weighted_sum_of_the_unimodal_logits():
    """`inference_mode="entropy"`: `sum_m w_m g(a_m(x_m))`, `w = softmax(-H)` over each sample's present modalities."""
    model = three_modality_model().eval()
    x = features(4)
    mask = {"audio": torch.tensor([True, False, True, False])}
    with torch.no_grad():
        out = model(x, modality_mask=mask, inference_mode="entropy")
        uni = {m: model.classifier(model.adapters[m](x[m])) for m in x}
    assert out.fused is None
    for i in range(4):
        mods = [m for m in ("text", "image", "audio") if m != "audio" or bool(mask["audio"][i])]
        entropy = torch.stack([-(uni[m][i].softmax(-1) * uni[m][i].log_softmax(-1)).sum() for m in mods])
        weights = torch.exp(-entropy) / torch.exp(-entropy).sum()
        torch.testing.assert_close(out.logits[i], sum(w * uni[m][i] for w, m in zip(weights, mods)))


def test_batch_mapping_at_eval_reads_the_batch() -> None:
    """`mapping_at_eval="batch"` keeps the batch correlation in eval mode: a sample alone is predicted differently
    than in its batch (the documented trade-off against the default identity mapping)."""
    model = three_modality_model(mapping_at_eval="batch").eval()
    assert model.mapping.at_eval == "batch"
    x = features(8)
    full = model(x).logits
    alone = model({m: v[:1] for m, v in x.items()}).logits
    assert not torch.allclose(alone, full[:1])
