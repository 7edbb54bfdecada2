"""Small feature datasets and trainer arguments shared by the baseline tests."""

from __future__ import annotations

from feature_helpers import make_args, make_features


def features(n: int, seed: int = 0, dims=(("a", 6), ("b", 5)), num_labels: int = 3, strength=(3.0, 0.5)):
    """Modality i carries the label with signal `strength[i]` plus unit noise."""
    return make_features(n, seed, dims, num_labels, strength)


def training_args(tmp_path, **overrides):
    return make_args(tmp_path, **{"logging_strategy": "no", **overrides})
