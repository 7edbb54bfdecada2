"""Run under `accelerate launch` by test_feature_cache.py: extracts a small text dataset on every rank."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
from accelerate import PartialState

sys.path.insert(0, str(Path(__file__).parent))
from backbone_helpers import CountingTextBackbone  # noqa: E402

from mllm_balance.features import extract_features  # noqa: E402


def main() -> None:
    cache_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    state = PartialState(cpu=True)
    texts = [f"sample number {i} " + "abc" * (i % 5) for i in range(21)]
    dataset = datasets.Dataset.from_dict({"text": texts, "labels": [i % 3 for i in range(21)]})
    backbone = CountingTextBackbone()
    features, report = extract_features(dataset, backbone, cache_dir=cache_dir, batch_size=4, return_report=True)
    result = {
        "rank": state.process_index,
        "world": state.num_processes,
        "calls": backbone.calls,
        "rows": features.num_rows,
        "text": features[:]["text"],
        "labels": features[:]["labels"],
        "cache_path": report.cache_path,
    }
    (out_dir / f"rank{state.process_index}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
