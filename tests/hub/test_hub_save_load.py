"""Saving and loading adapters: identical logits, only trained weights on disk, the backbone reference recorded."""

from __future__ import annotations

import json
import os

import pytest
import torch
from hub_helpers import TINY_ID, TINY_REVISION, make_model
from safetensors import safe_open
from transformers import AutoConfig, AutoModel

from mllm_balance import BalanceConfig, BalancedModel
from mllm_balance.hub import save_adapters
from mllm_balance.reference import record_backbone


def _features(backbone, batch: int = 6, seed: int = 1) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    features = {m: torch.randn(batch, d, generator=g) for m, d in backbone.feature_sizes.items()}
    mask = {m: torch.ones(batch, dtype=torch.bool) for m in features}
    mask["image"][1] = False
    mask["text"][2] = mask["audio"][2] = False
    return features, mask


@pytest.mark.parametrize("mapping_level", ["sample", "feature"])
def test_round_trip_gives_identical_logits(backbone, tmp_path, mapping_level):
    model = make_model(backbone, mapping_level=mapping_level)
    features, mask = _features(backbone)
    if mapping_level == "feature":  # move the running correlation away from its initial identity
        model.train()
        model(features, modality_mask={m: torch.ones(6, dtype=torch.bool) for m in features})
        model.eval()
        assert not torch.equal(model.mapping.running_correlation, torch.eye(8))
    save_adapters(model, tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, BalancedModel)
    for mode in ("hybrid", "train_order", "entropy"):
        with torch.no_grad():
            expected = model(features, modality_mask=mask, inference_mode=mode).logits
            got = loaded(features, modality_mask=mask, inference_mode=mode).logits
        assert torch.equal(expected, got), mode
    if mapping_level == "feature":
        assert torch.equal(model.mapping.running_correlation, loaded.mapping.running_correlation)


def test_saved_folder_holds_no_backbone_weights(backbone, model, tmp_path):
    files = save_adapters(model, tmp_path)
    assert files == ["README.md", "config.json", "contributions.png", "model.safetensors"]
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys == set(model.state_dict())
    assert all(k.split(".")[0] in {"adapters", "mapping", "memory", "classifier"} for k in keys)
    backbone_bytes = sum(t.numel() * t.element_size() for t in backbone.state_dict().values())
    weights_bytes = os.path.getsize(tmp_path / "model.safetensors")
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert weights_bytes < model_bytes + 4096  # the tensors plus a small header
    assert weights_bytes < backbone_bytes / 10


def test_frozen_submodule_is_left_out(backbone, model, tmp_path):
    model.frozen_encoder = torch.nn.Linear(32, 32).requires_grad_(False)  # e.g. a backbone attached by a user
    save_adapters(model, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert not any(k.startswith("frozen_encoder") for k in keys)
    assert {k for k in model.state_dict() if not k.startswith("frozen_encoder")} == keys


def test_config_records_backbone_labels_order_and_history(model, tmp_path):
    save_adapters(model, tmp_path)
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["backbone_id"] == TINY_ID and raw["backbone_revision"] == TINY_REVISION
    assert raw["backbone_identity"]["layer"] == -1 and raw["backbone_identity"]["type"] == "tiny-test"
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, BalanceConfig)
    assert config.modality_dims == {"text": 32, "image": 12, "audio": 10}
    assert config.modalities == ["text", "image", "audio"]
    assert config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert config.train_order == ["audio", "image", "text"]
    assert config.shapley_history[-1] == {"text": 16.0, "image": 10.0, "audio": 7.5}
    assert config.backbone_identity == model.config.backbone_identity


def test_record_backbone_refuses_other_feature_sizes(backbone):
    config = BalanceConfig(modality_dims={"text": 384, "image": 12}, num_labels=2)
    with pytest.raises(ValueError, match=r"feature size of 'text': adapters expect 384, this backbone gives 32"):
        record_backbone(config, backbone)
    config = BalanceConfig(modality_dims={"video": 12}, num_labels=2)
    with pytest.raises(ValueError, match="modality 'video' is not served"):
        record_backbone(config, backbone)


def test_save_without_backbone_reference_warns(tmp_path):
    model = BalancedModel(BalanceConfig(modality_dims={"text": 4}, num_labels=2, hidden_size=4))
    with pytest.warns(UserWarning, match="backbone_id is not set"):
        save_adapters(model, tmp_path)
