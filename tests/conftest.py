"""Shared fixtures: tiny configs and small feature datasets with one informative and one noisy modality."""

from __future__ import annotations

import os

import pytest
import torch
from feature_helpers import make_features

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models run far faster on one thread than on threads contending for two shared cores.
torch.set_num_threads(1)


@pytest.fixture
def feature_maker():
    """The `make_features` function, for tests that build their own feature sets."""
    return make_features


@pytest.fixture
def features_dir(tmp_path):
    """A `save_to_disk` folder of feature splits (text 6-d, image 5-d; 64 / 32 / 32 samples), for recipe runs."""
    from datasets import DatasetDict

    from mllm_balance import build_feature_dataset

    dims = (("text", 6), ("image", 5))
    splits = DatasetDict(
        {
            split: build_feature_dataset(*make_features(n, seed=seed, dims=dims))
            for split, n, seed in (("train", 64, 1), ("validation", 32, 2), ("test", 32, 3))
        }
    )
    path = tmp_path / "features"
    splits.save_to_disk(str(path))
    return path


@pytest.fixture
def tiny_config():
    from mllm_balance import BalanceConfig

    return BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)


@pytest.fixture
def tiny_datasets():
    from mllm_balance import build_feature_dataset

    train = build_feature_dataset(*make_features(96, seed=1))
    val = build_feature_dataset(*make_features(48, seed=2))
    return train, val
