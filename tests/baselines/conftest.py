"""Fixtures of the baseline tests."""

from __future__ import annotations

import pytest
from baseline_helpers import features


@pytest.fixture
def datasets():
    from mllm_balance import build_feature_dataset

    return build_feature_dataset(*features(96, seed=1)), build_feature_dataset(*features(48, seed=2))
