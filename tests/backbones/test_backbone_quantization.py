"""8-bit / 4-bit loading through BitsAndBytesConfig on bitsandbytes' CPU backend, dtype and device maps."""

from __future__ import annotations

import json

import pytest
import torch
from backbone_helpers import random_image, tone

from mllm_balance.backbones import QwenOmniBackbone, TextEncoder, load_backbone, per_process_device_map
from mllm_balance.backbones.loading import normalize_quantization, quantization_config, resolve_dtype

pytest.importorskip("bitsandbytes")

SENTENCES = [
    "A man is playing a guitar.",
    "The new movie is awesome and everyone loved it.",
    "Stock markets fell sharply on Monday.",
    "How do I bake bread at home?",
]


@pytest.fixture(scope="module")
def fp32_features(minilm_path):
    return TextEncoder.from_pretrained(str(minilm_path)).encode(SENTENCES)


def test_quantization_configs():
    eight = quantization_config("8bit")
    assert eight.load_in_8bit and not eight.load_in_4bit
    four = quantization_config("nf4", torch.bfloat16)
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config(None) is None and normalize_quantization("int8") == "8bit"
    with pytest.raises(ValueError, match="quantization must be"):
        normalize_quantization("3bit")
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_dtype("int8")
    assert per_process_device_map() == {"": "cpu"}  # a GPU run gets {"": PartialState().local_process_index}


def test_8bit_minilm_close_to_fp32(minilm_path, fp32_features):
    import bitsandbytes as bnb

    encoder = TextEncoder.from_pretrained(str(minilm_path), quantization="8bit")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in encoder.model.modules())
    features = encoder.encode(SENTENCES)
    cosine = torch.nn.functional.cosine_similarity(features, fp32_features)
    assert cosine.min() >= 0.95, cosine
    assert encoder.identity()["quantization"] == "bnb-int8"


def test_4bit_minilm_runs_and_stays_close(minilm_path, fp32_features):
    import bitsandbytes as bnb

    encoder = TextEncoder.from_pretrained(str(minilm_path), quantization="4bit")
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in encoder.model.modules())
    features = encoder.encode(SENTENCES)
    assert features.shape == fp32_features.shape and torch.isfinite(features).all()
    cosine = torch.nn.functional.cosine_similarity(features, fp32_features)
    assert cosine.min() >= 0.9, cosine  # NF4 is coarser than int8
    assert encoder.identity()["quantization"] == "bnb-nf4"


def test_bfloat16_dtype(minilm_path, fp32_features):
    encoder = TextEncoder.from_pretrained(str(minilm_path), dtype="bfloat16")
    assert next(encoder.model.parameters()).dtype == torch.bfloat16
    assert encoder.identity()["dtype"] == "bfloat16"
    features = encoder.encode(SENTENCES)
    assert features.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(features, fp32_features).min() >= 0.99


def test_8bit_omni_thinker_from_folder(tiny_omni_parts, tmp_path):
    import bitsandbytes as bnb

    model, tokenizer, image_processor, feature_extractor = tiny_omni_parts
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    merged = {**feature_extractor.to_dict(), **image_processor.to_dict()}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(merged, default=list))
    backbone = load_backbone({"type": "qwen2.5-omni", "name_or_path": str(tmp_path), "quantization": "8bit"})
    assert isinstance(backbone, QwenOmniBackbone)
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in backbone.thinker.language_model.modules())
    assert backbone.identity()["quantization"] == "bnb-int8"
    batch = {"text": ["the cat sat on the mat"], "image": [random_image(0)], "audio": [tone(0.5)]}
    out = backbone.encode(batch)
    reference = QwenOmniBackbone(
        model, tokenizer=tokenizer, image_processor=image_processor, feature_extractor=feature_extractor
    ).encode(batch)
    for modality in batch:
        assert torch.isfinite(out[modality]).all()
        assert torch.nn.functional.cosine_similarity(out[modality], reference[modality]).min() >= 0.9
