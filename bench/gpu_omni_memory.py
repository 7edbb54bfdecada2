"""Extraction throughput and peak GPU memory of a full-size Qwen2.5-Omni-7B thinker, bf16 vs 8-bit.

The thinker is built from its configuration with random weights (no download): throughput and memory do not
depend on the weight values. The bf16 model is built on the GPU, measured, saved as safetensors (to /dev/shm when
it has room), and loaded back through `BitsAndBytesConfig(load_in_8bit=True)` for the 8-bit run, so the 8-bit path
is the one users get from `QwenOmniBackbone.from_pretrained(..., quantization="8bit")`.

    python bench/gpu_omni_memory.py                 # one GPU, about 3-4 minutes
    python bench/gpu_omni_memory.py --tiny --device cpu --iters 1   # the same logic on a tiny config

Prints one JSON line per variant and the 8-bit / bf16 ratios (target: 8-bit peak memory <= 0.6x bf16).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mllm_balance.backbones import QwenOmniBackbone, load_frozen  # noqa: E402

# Qwen2.5-Omni-7B thinker sizes (its published config.json).
OMNI_7B = {
    "text_config": {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": False,
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "hidden_act": "silu",
    },
    "audio_config": {
        "d_model": 1280,
        "encoder_layers": 32,
        "encoder_attention_heads": 20,
        "encoder_ffn_dim": 5120,
        "num_mel_bins": 128,
        "max_source_positions": 1500,
        "n_window": 100,
        "output_dim": 3584,
    },
    "audio_token_index": 151646,
    "image_token_index": 151655,
    "video_token_index": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "audio_start_token_id": 151647,
    "audio_end_token_id": 151648,
    "user_token_id": 872,
}

# transformers' own test sizes, for a CPU dry run of this script.
TINY = {
    "text_config": {
        "vocab_size": 99,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 1024,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [1, 1, 2]},
    },
    "vision_config": {
        "depth": 2,
        "embed_dim": 32,
        "hidden_size": 32,
        "out_hidden_size": 32,
        "num_heads": 4,
        "patch_size": 14,
        "spatial_merge_size": 1,
        "temporal_patch_size": 2,
    },
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
    "audio_token_index": 1,
    "image_token_index": 2,
    "video_token_index": 3,
    "audio_start_token_id": 4,
    "audio_end_token_id": 5,
    "user_token_id": 6,
    "vision_start_token_id": 7,
    "vision_end_token_id": 8,
}


class HashTokenizer:
    """Maps words to stable ids in `[10, vocab_size)`; enough to feed text of a given length to a random model."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def __call__(self, text: str, add_special_tokens: bool = False, truncation: bool = True, max_length: int = 512):
        ids = [10 + (sum(map(ord, word)) * 2654435761) % (self.vocab_size - 10) for word in text.split()]
        return {"input_ids": ids[:max_length] if truncation else ids}


def thinker_config(tiny: bool):
    from transformers import Qwen2_5OmniThinkerConfig

    return Qwen2_5OmniThinkerConfig(**(TINY if tiny else OMNI_7B))


def processors(config, tiny: bool):
    from transformers import WhisperFeatureExtractor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    vision = config.vision_config
    pixels = (28 * 28, 56 * 56) if tiny else (256 * 28 * 28, 256 * 28 * 28)  # 7B: 448x448 -> 256 image tokens
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=vision.patch_size,
        merge_size=vision.spatial_merge_size,
        temporal_patch_size=vision.temporal_patch_size,
        min_pixels=pixels[0],
        max_pixels=pixels[1],
    )
    extractor = WhisperFeatureExtractor(feature_size=config.audio_config.num_mel_bins)
    return HashTokenizer(config.text_config.vocab_size), image_processor, extractor


def make_batches(batch_size: int, tiny: bool, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    side = 28 if tiny else 448
    seconds = 1.0 if tiny else 10.0
    words = "the a cat dog sat on mat happy sad music loud red blue sky sea day night".split()
    return {
        "text": [" ".join(rng.choice(words, size=8 if tiny else 64)) for _ in range(batch_size)],
        "image": [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(batch_size)],
        "audio": [(0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32) for _ in range(batch_size)],
    }


def measure(backbone: QwenOmniBackbone, batches: dict[str, list], iters: int, device: torch.device) -> dict:
    """Samples per second for each modality and peak memory over the whole run."""
    cuda = device.type == "cuda"
    result = {"throughput": {}}
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    backbone.encode({m: v[:1] for m, v in batches.items()})  # warm-up
    for modality, values in batches.items():
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            backbone.encode({modality: values})
        if cuda:
            torch.cuda.synchronize()
        result["throughput"][modality] = round(iters * len(values) / (time.perf_counter() - start), 2)
    result["weights_bytes"] = backbone.thinker.get_memory_footprint()
    if cuda:
        result["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
        result["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
    return result


def run(tiny: bool, device: str, iters: int, batch_size: int, save_dir: str | None) -> dict:
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    device = torch.device(device)
    config = thinker_config(tiny)
    tokenizer, image_processor, extractor = processors(config, tiny)
    batches = make_batches(batch_size, tiny)
    results = {}
    workdir = Path(tempfile.mkdtemp(dir=save_dir or _fast_tmp(tiny)))
    try:
        torch.manual_seed(0)
        start = time.perf_counter()
        with device:
            model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
        model.eval()
        backbone = QwenOmniBackbone(
            model,
            tokenizer=tokenizer,
            image_processor=image_processor,
            feature_extractor=extractor,
            modalities=("text", "image", "audio"),
        )
        load_seconds = time.perf_counter() - start
        model.save_pretrained(workdir)
        del model  # the backbone keeps the towers and the language model, not the LM head
        _free(device)
        results["bf16"] = {
            "load_seconds": round(load_seconds, 1),
            **measure(backbone, batches, iters, device),
        }
        print(json.dumps({"variant": "bf16", **results["bf16"]}), flush=True)
        del backbone
        _free(device)

        start = time.perf_counter()
        device_map = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
        model = load_frozen(
            Qwen2_5OmniThinkerForConditionalGeneration,
            str(workdir),
            quantization="8bit",
            dtype="bfloat16",
            device_map=device_map,
        )
        backbone = QwenOmniBackbone(
            model,
            tokenizer=tokenizer,
            image_processor=image_processor,
            feature_extractor=extractor,
            modalities=("text", "image", "audio"),
            quantization="8bit",
        )
        load_seconds = time.perf_counter() - start
        del model
        _free(device)
        results["8bit"] = {
            "load_seconds": round(load_seconds, 1),
            **measure(backbone, batches, iters, device),
        }
        print(json.dumps({"variant": "8bit", **results["8bit"]}), flush=True)
        del backbone
        _free(device)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ratios = {"weights": results["8bit"]["weights_bytes"] / results["bf16"]["weights_bytes"]}
    if "peak_allocated_bytes" in results["bf16"]:
        ratios["peak_allocated"] = results["8bit"]["peak_allocated_bytes"] / results["bf16"]["peak_allocated_bytes"]
    for modality in batches:
        ratios[f"throughput_{modality}"] = (
            results["8bit"]["throughput"][modality] / results["bf16"]["throughput"][modality]
        )
    results["ratios_8bit_over_bf16"] = {k: round(v, 3) for k, v in ratios.items()}
    print(json.dumps({"ratios_8bit_over_bf16": results["ratios_8bit_over_bf16"], "target_peak_ratio": 0.6}))
    return results


def _fast_tmp(tiny: bool) -> str | None:
    """/dev/shm when it can hold the bf16 checkpoint (about 18 GB for the 7B thinker)."""
    shm = Path("/dev/shm")
    need = 1 if tiny else 20 * 2**30
    return str(shm) if shm.is_dir() and shutil.disk_usage(shm).free > need else None


def _free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny config (a dry run of the logic)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--save-dir", default=None, help="where the temporary bf16 checkpoint goes")
    args = parser.parse_args(argv)
    return run(args.tiny, args.device, args.iters, args.batch_size, args.save_dir)


if __name__ == "__main__":
    main()
