"""Joint: LoRA (peft) on a tiny random transformer built from a config; only LoRA and the head train."""

from __future__ import annotations

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
