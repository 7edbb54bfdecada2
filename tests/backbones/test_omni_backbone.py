"""QwenOmniBackbone on a tiny Qwen2.5-Omni thinker (random weights) against direct computations."""

from __future__ import annotations

import json

import pytest
import torch
from backbone_helpers import random_image, tone

from mllm_balance.backbones import QwenOmniBackbone, load_backbone

ATOL = 1e-5
TEXTS = ["the cat sat on the mat", "happy dog", "loud music at night"]


@pytest.fixture(scope="module")
def parts(tiny_omni_parts):
    return tiny_omni_parts


def make_backbone(parts, **kwargs) -> QwenOmniBackbone:
    model, tokenizer, image_processor, feature_extractor = parts
    return QwenOmniBackbone(
        model,
        tokenizer=tokenizer,
        image_processor=image_processor,
        feature_extractor=feature_extractor,
        name_or_path="tiny-omni",
        **kwargs,
    )


def direct_pooled(model, input_ids, positions, layer=None, **inputs) -> torch.Tensor:
    """One unpadded sample through the thinker's own forward; mean of a layer over `positions`."""
    with torch.no_grad():
        out = model.model(
            input_ids=input_ids[None],
            attention_mask=torch.ones(1, len(input_ids), dtype=torch.long),
            output_hidden_states=layer is not None,
            **inputs,
        )
    hidden = out.last_hidden_state if layer is None else out.hidden_states[layer]
    return hidden[0, positions].mean(0)


def test_serves_four_modalities_with_documented_sizes(parts):
    backbone = make_backbone(parts)
    assert backbone.modalities == ("text", "image", "audio", "video")
    assert backbone.feature_sizes == {m: 32 for m in backbone.modalities}  # text_config.hidden_size
    out = backbone.encode({"text": TEXTS[:2], "image": [random_image(0)], "audio": [tone(1.0), tone(0.4), tone(2.0)]})
    assert {m: tuple(t.shape) for m, t in out.items()} == {"text": (2, 32), "image": (1, 32), "audio": (3, 32)}
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in out.values())
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not backbone.training and not backbone.thinker.training


def test_text_matches_direct_forward(parts):
    model, tokenizer = parts[0], parts[1]
    features = make_backbone(parts).encode({"text": TEXTS})["text"]
    for row, text in enumerate(TEXTS):
        ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
        expected = direct_pooled(model, ids, torch.arange(len(ids)))
        torch.testing.assert_close(features[row], expected, atol=ATOL, rtol=0)


def test_image_matches_direct_forward(parts):
    model, _, image_processor, _ = parts
    images = [random_image(1), random_image(2, (56, 28)), random_image(3, (40, 50))]
    features = make_backbone(parts).encode({"image": images})["image"]
    for row, image in enumerate(images):
        processed = image_processor(images=[image], return_tensors="pt")
        count = int(processed["image_grid_thw"].prod())
        ids = torch.tensor([7] + [2] * count + [8])  # vision_start, image tokens, vision_end
        expected = direct_pooled(model, ids, torch.arange(1, count + 1), **processed)
        torch.testing.assert_close(features[row], expected, atol=ATOL, rtol=0)


def test_audio_matches_direct_forward(parts):
    model, _, _, feature_extractor = parts
    clips = [tone(1.0, freq=300), tone(0.37, freq=900, seed=1)]
    features = make_backbone(parts).encode({"audio": clips})["audio"]
    for row, clip in enumerate(clips):
        extracted = feature_extractor(
            [clip], sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt"
        )
        frames = int(extracted["attention_mask"].sum())
        count = ((frames - 1) // 2 + 1 - 2) // 2 + 1  # the audio tower's output length
        ids = torch.tensor([4] + [1] * count + [5])  # audio_start, audio tokens, audio_end
        expected = direct_pooled(
            model,
            ids,
            torch.arange(1, count + 1),
            input_features=extracted["input_features"],
            feature_attention_mask=extracted["attention_mask"],
        )
        torch.testing.assert_close(features[row], expected, atol=ATOL, rtol=0)


def test_layer_zero_is_the_towers_own_output(parts):
    """At layer 0 the pooled vector is the mean of what the model's towers put into the sequence."""
    model, tokenizer, image_processor, feature_extractor = parts
    backbone = make_backbone(parts, layer=0)
    images = [random_image(4), random_image(5, (56, 56))]
    clips = [tone(0.8), tone(1.5, freq=250)]
    out = backbone.encode({"image": images, "audio": clips, "text": TEXTS[:1]})
    with torch.no_grad():
        processed = image_processor(images=images, return_tensors="pt")
        per_image = model.get_image_features(processed["pixel_values"], processed["image_grid_thw"]).pooler_output
        extracted = feature_extractor(
            clips, sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt"
        )
        frames = model.get_audio_features(
            extracted["input_features"], feature_attention_mask=extracted["attention_mask"]
        ).last_hidden_state  # all clips' frames, flattened
        _, lengths = model.model.audio_tower._get_feat_extract_output_lengths(extracted["attention_mask"].sum(-1))
        per_clip = frames.split(lengths.tolist())
        ids = torch.tensor(tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"])
        text_embedding = model.get_input_embeddings()(ids).mean(0)
    torch.testing.assert_close(out["image"], torch.stack([x.mean(0) for x in per_image]), atol=ATOL, rtol=0)
    torch.testing.assert_close(out["audio"], torch.stack([x.mean(0) for x in per_clip]), atol=ATOL, rtol=0)
    torch.testing.assert_close(out["text"][0], text_embedding, atol=ATOL, rtol=0)


def test_chosen_layer_is_pooled(parts):
    model, tokenizer = parts[0], parts[1]
    middle = make_backbone(parts, layer=2).encode({"text": TEXTS[:1]})["text"][0]
    last = make_backbone(parts, layer=-1).encode({"text": TEXTS[:1]})["text"][0]
    ids = torch.tensor(tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"])
    torch.testing.assert_close(middle, direct_pooled(model, ids, torch.arange(len(ids)), layer=2), atol=ATOL, rtol=0)
    assert not torch.allclose(middle, last, atol=1e-3)
    assert make_backbone(parts, layer=2).identity()["layer"] == 2
    assert make_backbone(parts, layer=-1).identity()["layer"] == 4
    with pytest.raises(ValueError, match="layer must be"):
        make_backbone(parts, layer=7)


def test_batched_equals_one_by_one(parts):
    backbone = make_backbone(parts)
    batch = {
        "text": TEXTS,
        "image": [random_image(6), random_image(7, (56, 28))],
        "audio": [tone(0.5), tone(1.7, freq=600)],
        "video": [[random_image(8)] * 3, [random_image(9)] * 2],
    }
    together = backbone.encode(batch)
    for modality, values in batch.items():
        for row, value in enumerate(values):
            alone = backbone.encode({modality: [value]})[modality][0]
            torch.testing.assert_close(together[modality][row], alone, atol=ATOL, rtol=0)


def test_video_of_one_repeated_frame_equals_the_image(parts):
    """Two identical frames fill one temporal patch exactly as an image does, so the features agree."""
    backbone = make_backbone(parts)
    frame = random_image(10)
    out = backbone.encode({"video": [[frame, frame]], "image": [frame]})
    torch.testing.assert_close(out["video"], out["image"], atol=ATOL, rtol=0)
    moving = backbone.encode({"video": [[frame, random_image(11)]]})["video"]
    assert not torch.allclose(moving, out["image"], atol=1e-3)


def test_missing_processor_means_modality_not_served(parts):
    model, tokenizer, image_processor, _ = parts
    backbone = QwenOmniBackbone(model, tokenizer=tokenizer, image_processor=image_processor)
    assert backbone.modalities == ("text", "image", "video")
    with pytest.raises(ValueError, match="not 'audio'"):
        backbone.encode({"audio": [tone(1.0)]})
    with pytest.raises(ValueError, match="needs its processor"):
        QwenOmniBackbone(model, tokenizer=tokenizer, modalities=("text", "audio"))


def test_from_pretrained_folder_roundtrip(parts, tmp_path):
    model, tokenizer, image_processor, feature_extractor = parts
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    # Released Omni checkpoints keep the image processor and feature extractor in one preprocessor_config.json.
    merged = {**feature_extractor.to_dict(), **image_processor.to_dict()}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(merged, default=list))
    loaded = load_backbone(f"qwen2.5-omni:{tmp_path}", layer=-1)
    assert isinstance(loaded, QwenOmniBackbone)
    batch = {"text": TEXTS[:2], "image": [random_image(12)], "audio": [tone(0.6)]}
    expected = make_backbone(parts).encode(batch)
    got = loaded.encode(batch)
    for modality in batch:
        torch.testing.assert_close(got[modality], expected[modality], atol=ATOL, rtol=0)
    identity = loaded.identity()
    assert identity["id"] == str(tmp_path) and identity["revision"].startswith("local-")
    assert identity["quantization"] is None and identity["dtype"] == "float32"
    assert set(identity["preprocessing"]) == {"text", "image", "audio", "video"}


def test_ola_gives_a_clear_error():
    with pytest.raises(ImportError, match="Ola backbone .* is unavailable.*qwen2.5-omni"):
        load_backbone("ola:THUdyh/Ola-7b")


TINY_QWEN3_OMNI = {
    "vision_config": {
        "depth": 2,
        "embed_dim": 32,
        "hidden_act": "quick_gelu",
        "hidden_size": 32,
        "out_hidden_size": 32,
        "intermediate_size": 24,
        "num_heads": 4,
        "patch_size": 16,
        "spatial_merge_size": 1,
        "temporal_patch_size": 2,
        "deepstack_visual_indexes": [1],
    },
    "audio_config": {
        "d_model": 32,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 32,
        "encoder_layers": 2,
        "num_mel_bins": 20,
        "max_source_positions": 1500,
        "downsample_hidden_size": 32,
        "n_window": 50,
        "output_dim": 32,
        "n_window_infer": 100,
    },
    "text_config": {
        "rope_parameters": {"mrope_section": [1, 1, 2], "rope_type": "default", "interleaved": True, "rope_theta": 1e6},
        "vocab_size": 99,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 1024,
        "pad_token_id": 0,
        "moe_intermediate_size": 32,
        "num_experts_per_tok": 2,
        "num_experts": 8,
        "decoder_sparse_step": 1,
    },
    "audio_token_id": 1,
    "image_token_id": 2,
    "video_token_id": 3,
    "audio_start_token_id": 4,
    "audio_end_token_id": 5,
    "user_token_id": 6,
    "vision_start_token_id": 7,
    "vision_end_token_id": 8,
    "position_id_per_seconds": 13,
}


def test_qwen3_omni_thinker(parts):
    """Qwen3-Omni (MoE thinker, deepstack vision, chunked audio tower) through the same backbone."""
    from transformers import (
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import _get_feat_extract_output_lengths

    torch.manual_seed(0)
    model = Qwen3OmniMoeThinkerForConditionalGeneration(Qwen3OmniMoeThinkerConfig(**TINY_QWEN3_OMNI)).eval()
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=16, merge_size=1, temporal_patch_size=2, min_pixels=32 * 32, max_pixels=64 * 64
    )
    extractor = WhisperFeatureExtractor(feature_size=20)
    kwargs = {"tokenizer": parts[1], "image_processor": image_processor, "feature_extractor": extractor}
    backbone = QwenOmniBackbone(model, **kwargs)
    assert backbone.identity()["model_type"] == "qwen3_omni_moe_thinker"
    frame = random_image(13, (32, 32))
    batch = {"text": TEXTS[:2], "image": [frame, random_image(14, (64, 32))], "audio": [tone(1.3), tone(0.4)]}
    batch["video"] = [[frame, frame]]
    out = backbone.encode(batch)
    assert {m: tuple(t.shape) for m, t in out.items()} == {
        "text": (2, 32),
        "image": (2, 32),
        "audio": (2, 32),
        "video": (1, 32),
    }
    torch.testing.assert_close(
        out["image"][1], backbone.encode({"image": batch["image"][1:]})["image"][0], atol=ATOL, rtol=0
    )
    torch.testing.assert_close(out["video"][0], out["image"][0], atol=ATOL, rtol=0)
    # Layer 0: the audio tower's own frames for each clip, counted with Qwen3's output-length rule.
    clips = batch["audio"]
    pooled = QwenOmniBackbone(model, layer=0, **kwargs).encode({"audio": clips})["audio"]
    extracted = extractor(
        clips, sampling_rate=16000, return_attention_mask=True, padding="max_length", return_tensors="pt"
    )
    with torch.no_grad():
        frames = model.get_audio_features(
            extracted["input_features"], feature_attention_mask=extracted["attention_mask"]
        ).last_hidden_state
    lengths = _get_feat_extract_output_lengths(extracted["attention_mask"].sum(-1), 50)
    expected = torch.stack([chunk.mean(0) for chunk in frames.split(lengths.tolist())])
    torch.testing.assert_close(pooled, expected, atol=ATOL, rtol=0)
