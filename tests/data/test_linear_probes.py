"""Linear probes used for the data cards' accuracy tables."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from mllm_balance.data.probes import markdown_table, probe_table

pytest.importorskip("sklearn")


def features(seed: int = 0) -> DatasetDict:
    """'strong' separates the 3 classes, 'noise' is pure noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", 150), ("validation", 60), ("test", 60)):
        labels = np.arange(n) % 3
        strong = np.eye(3)[labels] * 3 + rng.normal(size=(n, 3))
        noise = rng.normal(size=(n, 4))
        out[split] = Dataset.from_dict({"strong": strong.tolist(), "noise": noise.tolist(), "labels": labels.tolist()})
    return DatasetDict(out)


def test_probe_table_separates_strong_from_noise():
    results = probe_table(features(), ["strong", "noise"])
    assert set(results) == {"strong", "noise", "concat"}
    assert results["strong"]["test"] > 85 and results["noise"]["test"] < 60 and results["concat"]["test"] > 80
    table = markdown_table(results)
    assert table.splitlines()[0].startswith("| probe |") and "| strong |" in table
