"""Joint: LoRA (peft) on a tiny random transformer built from a config; only LoRA and the head train."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import features, training_args

from mllm_balance import BalanceTrainer, build_feature_dataset
from mllm_balance.baselines import get_baseline
from mllm_balance.baselines.joint import build_backbone

DIMS = {"a": 6, "b": 32}  # "b" has the backbone's hidden size: identity connector


def make_model(backbone=None):
    spec = get_baseline("joint")
    torch.manual_seed(0)
    return spec.build_model(spec.build_config(DIMS, 3, lora_r=4), backbone=backbone)


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_only_lora_and_head_parameters_require_grad():
    model = make_model()
    names = trainable(model)
    assert names, "nothing trains"
    assert all("lora_" in n or n.startswith("head.") for n in names)
    assert {"head.weight", "head.bias"} <= names
    assert any("attention" in n and "lora_A" in n for n in names)  # LoRA on the backbone's attention
    assert any(n.startswith("joint.connectors.a.") and "lora_" in n for n in names)  # and on the connector


def test_training_changes_only_lora_and_head(tmp_path):
    model = make_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train = build_feature_dataset(*features(64, seed=1, dims=tuple(DIMS.items())))
    val = build_feature_dataset(*features(32, seed=2, dims=tuple(DIMS.items())))
    spec = get_baseline("joint")
    args = training_args(tmp_path, **spec.training_arguments(num_train_epochs=2, learning_rate=1e-2))
    BalanceTrainer(model=model, args=args, train_dataset=train, eval_dataset=val).train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed, "training changed nothing"
    assert changed <= trainable(model)
    assert any("lora_B" in n for n in changed)  # LoRA B starts at zero: it moved


def test_a_given_backbone_keeps_its_weights():
    backbone = build_backbone()
    reference = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    model = make_model(backbone=backbone)
    base = model.joint["backbone"]
    for name, value in reference.items():
        # peft renames wrapped linear layers' weights to `<layer>.base_layer.weight`
        wrapped = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        params = dict(base.named_parameters())
        torch.testing.assert_close(params.get(name, params.get(wrapped)), value)


def test_missing_modality_is_masked_out_of_the_input():
    model = make_model().eval()
    g = torch.Generator().manual_seed(0)
    x = {"a": torch.randn(4, 6, generator=g), "b": torch.randn(4, 32, generator=g)}
    only_a = model({"a": x["a"]}).logits
    masked = model(x, modality_mask={"a": torch.ones(4, dtype=torch.bool), "b": torch.zeros(4, dtype=torch.bool)})
    torch.testing.assert_close(masked.logits, only_a)
    subset = model.subset_logits(x, [{"a"}])[frozenset({"a"})]
    torch.testing.assert_close(subset, only_a)


SMALL_BACKBONE = {
    "model_type": "bert",
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 24,
    "vocab_size": 8,
    "max_position_embeddings": 8,
    "type_vocab_size": 1,
}


def test_build_backbone_follows_the_given_config():
    config = build_backbone(SMALL_BACKBONE).config
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == ("bert", 16, 1)
    assert (config.num_attention_heads, config.intermediate_size, config.max_position_embeddings) == (2, 24, 8)


def test_build_backbone_without_a_model_type_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^transformer_config needs a 'model_type' \(e\.g\. 'bert'\)$"):
        build_backbone({"hidden_size": 16})


def test_the_model_builds_its_backbone_from_transformer_config():
    spec = get_baseline("joint")
    model = spec.build_model(spec.build_config({"a": 6, "b": 5}, 3, transformer_config=SMALL_BACKBONE))
    assert model.joint["backbone"].config.hidden_size == 16
    assert model.joint["backbone"].config.num_hidden_layers == 1
    assert (model.head.in_features, model.head.out_features) == (16, 3)


def test_connectors_are_seeded_gaussian_projections_without_bias():
    spec = get_baseline("joint")
    config = spec.build_config(DIMS, 3, lora_r=4, connector_seed=7)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    # P_a ~ N(0, 1 / D_a) drawn from connector_seed alone (32 x 6), whatever the global seed
    projection = torch.randn(32, 6, generator=torch.Generator().manual_seed(7)) / 6**0.5
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        model = spec.build_model(config)
        tokens = model.adapt({"a": x, "b": torch.zeros(5, 32)}, {"a": torch.ones(5, dtype=torch.bool)})
        torch.testing.assert_close(tokens["a"], x @ projection.T)  # LoRA's B starts at zero


def lora_connector(**config):
    spec = get_baseline("joint")
    torch.manual_seed(0)
    model = spec.build_model(spec.build_config(DIMS, 3, **config))
    connector = model.joint["connectors"]["a"]
    with torch.no_grad():
        connector.lora_B["default"].weight.copy_(torch.randn(32, connector.lora_A["default"].weight.shape[0]))
    return connector


def test_lora_rank_and_scaling_follow_the_config():
    connector = lora_connector(lora_r=4, lora_alpha=12).eval()
    a, b = connector.lora_A["default"].weight, connector.lora_B["default"].weight
    assert a.shape == (4, 6) and b.shape == (32, 4)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    expected = x @ connector.base_layer.weight.T + (12 / 4) * (x @ a.T @ b.T)  # W x + (alpha / r) B A x
    torch.testing.assert_close(connector(x), expected)


def test_lora_dropout_follows_the_config():
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(1))
    for dropout, differs in ((0.0, False), (0.5, True)):
        connector = lora_connector(lora_r=4, lora_dropout=dropout)
        evaluated = connector.eval()(x)
        torch.manual_seed(0)
        trained = connector.train()(x)
        assert (not torch.allclose(trained, evaluated)) == differs, dropout


def test_fusion_mean_pools_the_backbone_outputs_of_the_present_tokens():
    model = make_model().eval()
    g = torch.Generator().manual_seed(3)
    x = {"a": torch.randn(4, 6, generator=g), "b": torch.randn(4, 32, generator=g)}
    mask = {"a": torch.tensor([True, False, True, True]), "b": torch.tensor([True, True, False, True])}
    with torch.no_grad():
        out = model(x, modality_mask=mask)
        for i in range(4):  # one sample at a time: tokens (a, b) at positions 0, 1, a missing one masked out
            tokens = torch.stack([model.joint["connectors"][m](x[m][i]) for m in ("a", "b")]).unsqueeze(0)
            present = torch.tensor([[int(mask["a"][i]), int(mask["b"][i])]])
            hidden = model.joint["backbone"](inputs_embeds=tokens, attention_mask=present).last_hidden_state[0]
            pooled = hidden[present[0].bool()].mean(0)
            torch.testing.assert_close(out.fused[i], pooled)
            torch.testing.assert_close(out.logits[i], model.head(pooled))


def test_a_head_resized_on_loading_is_freshly_initialised(tmp_path):
    from mllm_balance.baselines import JointModel

    make_model().save_pretrained(tmp_path)
    model = JointModel.from_pretrained(tmp_path, id2label={i: str(i) for i in range(5)}, ignore_mismatched_sizes=True)
    weight, bias = model.head.weight.detach(), model.head.bias.detach()
    assert weight.shape == (5, 32)
    bound = 32**-0.5  # nn.Linear's initialisation: U(-1 / sqrt(fan_in), 1 / sqrt(fan_in))
    assert weight.abs().max() <= bound and bias.abs().max() <= bound
    assert weight.std() > bound / 3  # the std of U(-bound, bound) is bound / sqrt(3): not left at zero
