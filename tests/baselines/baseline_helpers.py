"""Small feature datasets and trainer arguments shared by the baseline tests."""

from __future__ import annotations

import numpy as np


def features(n: int, seed: int = 0, dims=(("a", 6), ("b", 5)), num_labels: int = 3, strength=(3.0, 0.5)):
    """Modality i carries the label with signal `strength[i]` plus unit noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_labels, size=n)
    out = {}
    for (name, dim), s in zip(dims, strength):
        centers = np.random.default_rng(len(name) * 100 + dim).normal(size=(num_labels, dim))
        out[name] = (s * centers[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    return out, labels


def training_args(tmp_path, **overrides):
    from mllm_balance import BalanceTrainingArguments

    values = dict(
        output_dir=str(tmp_path),
        num_train_epochs=2,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        learning_rate=5e-2,
        use_cpu=True,
        report_to=[],
        disable_tqdm=True,
        save_strategy="no",
        logging_strategy="no",
        seed=0,
    )
    values.update(overrides)
    return BalanceTrainingArguments(**values)
