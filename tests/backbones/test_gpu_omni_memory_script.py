"""bench/gpu_omni_memory.py: its 7B configuration and a CPU dry run of its logic on the tiny configuration."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("gpu_omni_memory", REPO / "bench" / "gpu_omni_memory.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_full_size_config_is_the_7b_thinker(script):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    config = script.thinker_config(tiny=False)
    with torch.device("meta"):
        model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    billions = sum(p.numel() for p in model.parameters()) / 1e9
    assert 8.5 < billions < 9.5, billions  # Qwen2.5-Omni-7B's thinker: about 8.9 B parameters with its LM head
    assert config.text_config.hidden_size == 3584 and config.vision_config.out_hidden_size == 3584


def test_tiny_dry_run_on_cpu(script, tmp_path):
    pytest.importorskip("bitsandbytes")
    results = script.main(
        ["--tiny", "--device", "cpu", "--iters", "1", "--batch-size", "2", "--save-dir", str(tmp_path)]
    )
    for variant in ("bf16", "8bit"):
        assert set(results[variant]["throughput"]) == {"text", "image", "audio"}
        assert all(value > 0 for value in results[variant]["throughput"].values())
    assert results["ratios_8bit_over_bf16"]["weights"] < 0.75  # int8 linear layers
    assert not list(tmp_path.iterdir())  # the temporary checkpoint is removed
