"""Every registered model type saves and loads back through `AutoConfig` / `AutoModel` (the balanced model and
every baseline): same class, same config, same predictions, same buffers."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel

from mllm_balance import BalanceConfig, BalancedModel
from mllm_balance.baselines import BASELINES, get_baseline
from mllm_balance.classifier import FeatureClassifier
from mllm_balance.configuration import FeatureClassifierConfig

DIMS = {"a": 6, "b": 5}


def build(name: str) -> FeatureClassifier:
    torch.manual_seed(0)
    if name == "ours":
        return BalancedModel(BalanceConfig(modality_dims=DIMS, num_labels=3, hidden_size=8, mapping_level="feature"))
    spec = get_baseline(name)
    return spec.build_model(spec.build_config(DIMS, 3, hidden_size=8))


def train_a_little(model: FeatureClassifier) -> None:
    """Move the weights and the running statistics off their initial values (buffers must round-trip too)."""
    model.train()
    x, y = {"a": torch.randn(8, 6), "b": torch.randn(8, 5)}, torch.randint(0, 3, (8,))
    if isinstance(model, BalancedModel) or name_of(model) == "mla":
        model(x, labels=y, active_modality="b", order=["a", "b"]).loss.backward()
    else:
        model(x, labels=y).loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    if name_of(model) == "mla":
        model.store_direction("a", torch.ones(8))
    if name_of(model) == "crmt":
        model.enter_stage2(torch.full((2, 3), 2.0))


def name_of(model: FeatureClassifier) -> str:
    return getattr(model.config, "method", "ours")


@pytest.mark.parametrize("name", ["ours", *BASELINES])
def test_save_then_automodel_from_pretrained_gives_the_same_model(tmp_path, name):
    model = build(name)
    train_a_little(model)
    model.eval()
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is type(model.config) and isinstance(config, FeatureClassifierConfig)
    skip = {"_name_or_path"}
    assert {k: v for k, v in config.to_dict().items() if k not in skip} == {
        k: v for k, v in model.config.to_dict().items() if k not in skip
    }
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(model) and name_of(reloaded) == name
    x = {"a": torch.randn(5, 6), "b": torch.randn(5, 5)}
    mask = {"a": torch.tensor([True, False, True, True, False]), "b": torch.tensor([True, True, False, True, True])}
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x).logits, model(x).logits, rtol=0, atol=0)
        torch.testing.assert_close(reloaded(x, modality_mask=mask).logits, model(x, modality_mask=mask).logits)
    reloaded_buffers = dict(reloaded.named_buffers())
    for buffer_name, buffer in model.named_buffers():
        torch.testing.assert_close(reloaded_buffers[buffer_name], buffer, rtol=0, atol=0)
    reloaded_state = reloaded.trainable_state_dict()
    for key, value in model.trainable_state_dict().items():
        torch.testing.assert_close(reloaded_state[key], value, rtol=0, atol=0)


def test_every_baseline_has_its_own_registered_config_type():
    types = {spec.model_class.config_class.model_type for spec in BASELINES.values()}
    assert len(types) == len({spec.model_class for spec in BASELINES.values()})  # one config per model class
    assert BalanceConfig.model_type not in types
    for spec in BASELINES.values():
        config = spec.build_config(DIMS, 3)
        assert config.method == spec.name
        assert type(AutoConfig.for_model(config.model_type)) is spec.model_class.config_class
