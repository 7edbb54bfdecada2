"""Adapters next to another backbone are refused; the recorded backbone loads through the registry."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hub_helpers import TINY_ID, TINY_REVISION, TinyBackbone

from mllm_balance import BalanceConfig
from mllm_balance.reference import (
    backbone_reference,
    backbone_spec,
    base_models,
    check_backbone_compatibility,
    load_backbone_for,
    record_backbone,
)


def test_matching_backbone_passes(model, backbone):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_backbone_compatibility(model.config, backbone) == []
    assert check_backbone_compatibility(model.config, TinyBackbone()) == []  # another instance, same identity


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (
            dict(name_or_path="other-org/other-backbone"),
            r"backbone id: adapters trained on 'tiny-org/tiny-backbone', "
            r"this backbone is 'other-org/other-backbone'",
        ),
        (
            dict(revision="fedcba"),
            r"backbone revision: adapters trained on '0123456789abcdef', this backbone reports "
            r"'fedcba'",
        ),
        (dict(revision=None), r"this backbone reports no revision"),
        (dict(text_size=48), r"feature size of 'text': adapters expect 32, this backbone gives 48"),
        (dict(layer=-2), r"layer: recorded -1, this backbone has -2"),
    ],
)
def test_mismatched_backbone_is_refused(model, other, expected):
    with pytest.raises(ValueError, match=expected) as info:
        check_backbone_compatibility(model.config, TinyBackbone(**other))
    message = str(info.value)
    assert "'tiny-org/tiny-backbone' (revision '0123456789abcdef')" in message  # names both backbones
    assert "allow_mismatch=True" in message


def test_override_warns_and_reports(model):
    with pytest.warns(UserWarning, match="backbone mismatch"):
        problems = check_backbone_compatibility(model.config, TinyBackbone(revision="fedcba"), allow_mismatch=True)
    assert len(problems) == 1 and "revision" in problems[0]


def test_dtype_difference_only_warns(model):
    with pytest.warns(UserWarning, match=r"dtype: recorded \"float32\", this backbone has \"bfloat16\""):
        assert check_backbone_compatibility(model.config, TinyBackbone(dtype="bfloat16")) == []


def test_backbone_missing_a_modality_is_refused(model):
    class TextOnly(TinyBackbone):
        def __init__(self):
            super().__init__()
            self.feature_sizes = {"text": 32}

    with pytest.raises(ValueError, match=r"modality 'audio' is not served by this backbone"):
        check_backbone_compatibility(model.config, TextOnly())


def test_unrecorded_backbone_checks_feature_sizes_only(backbone):
    config = BalanceConfig(modality_dims={"text": 32}, num_labels=2)
    with pytest.warns(UserWarning, match="records no backbone_id"):
        assert check_backbone_compatibility(config, backbone) == []
    config = BalanceConfig(modality_dims={"text": 31}, num_labels=2)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="feature size of 'text'"):
        check_backbone_compatibility(config, backbone)


class _Composite:
    """Stand-in with the identity layout of `CompositeBackbone` (one encoder identity per modality)."""

    feature_sizes = {"text": 384, "image": 1280, "audio": 384}

    def __init__(self, image_pooling: str = "global average"):
        self.image_pooling = image_pooling

    def identity(self) -> dict[str, Any]:
        text = {
            "type": "transformers-text",
            "id": "sentence-transformers/all-MiniLM-L6-v2",
            "revision": "c9745ed",
            "layer": "last",
            "pooling": "mean",
            "preprocessing": {"max_length": 256},
            "dtype": "float32",
        }
        image = {
            "type": "torch-module",
            "id": "efficientnet-lite0",
            "revision": "9f3a",
            "layer": "feature_fn",
            "pooling": self.image_pooling,
            "preprocessing": {"image_size": 224},
            "dtype": "float32",
        }
        audio = {"type": "transformers-audio", "id": "/models/whisper", "revision": "local-77", "pooling": "mean"}
        return {"type": "composite", "encoders": {"text": text, "image": image, "audio": audio}}


def test_composite_backbone_reference_uses_the_model_modalities():
    ref = backbone_reference(_Composite(), ["text", "image"])
    assert ref["id"] == "text=sentence-transformers/all-MiniLM-L6-v2,image=efficientnet-lite0"
    assert ref["revision"] == "text=c9745ed,image=9f3a"
    config = record_backbone(BalanceConfig(modality_dims={"text": 384, "image": 1280}, num_labels=2), _Composite())
    assert config.backbone_id == ref["id"]
    assert base_models(config) == ["sentence-transformers/all-MiniLM-L6-v2"]
    assert check_backbone_compatibility(config, _Composite()) == []
    with pytest.raises(ValueError, match=r"encoders\.image\.pooling: recorded \"global average\""):
        check_backbone_compatibility(config, _Composite(image_pooling="max"))
    assert backbone_spec(config) == {
        "type": "composite",
        "encoders": {
            "text": {"name_or_path": "sentence-transformers/all-MiniLM-L6-v2", "pooling": "mean"},
            "image": "efficientnet-lite0",
        },
    }


def test_spec_prefers_the_recorded_one(model):
    assert backbone_spec(model.config) == {"type": "tiny-test", "name_or_path": TINY_ID, "layer": -1}
    record_backbone(model.config, TinyBackbone(), spec="tiny-test:tiny-org/tiny-backbone")
    assert backbone_spec(model.config) == "tiny-test:tiny-org/tiny-backbone"


def test_recorded_backbone_loads_through_the_registry(model):
    loaded = load_backbone_for(model.config)
    assert isinstance(loaded, TinyBackbone)
    assert loaded.revision == TINY_REVISION and loaded.layer == -1
    assert check_backbone_compatibility(model.config, loaded) == []


def test_loading_without_a_reference_is_explained():
    config = BalanceConfig(modality_dims={"text": 4}, num_labels=2)
    with pytest.raises(ValueError, match="records no backbone"):
        load_backbone_for(config)
