"""Feature sets and trainer arguments shared by the test modules (tests/ is on the import path)."""

from __future__ import annotations

import numpy as np

from mllm_balance import BalanceTrainingArguments


def make_features(n: int, seed: int = 0, dims=(("a", 6), ("b", 5)), num_labels: int = 3, strength=(3.0, 0.3)):
    """Features where modality i carries the label with signal `strength[i]` plus unit noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_labels, size=n)
    features = {}
    for (name, dim), s in zip(dims, strength):
        centers = np.random.default_rng(len(name) * 100 + dim).normal(size=(num_labels, dim))
        features[name] = (s * centers[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    return features, labels


def make_args(tmp_path, **overrides):
    defaults = dict(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        learning_rate=5e-2,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="epoch",
        seed=0,
    )
    defaults.update(overrides)
    return BalanceTrainingArguments(**defaults)
