"""The fingerprinted feature cache: hits without backbone calls, re-extraction, corruption, processes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from backbone_helpers import CountingTextBackbone

from mllm_balance.feature_cache import FeatureCacheWarning, load_feature_cache
from mllm_balance.features import extract_features

TEXTS = [f"sample {i} " + "xyz" * (i % 4) for i in range(10)]


def histogram(text: str) -> list[float]:
    counts = [0.0] * 26
    for char in text.lower():
        if "a" <= char <= "z":
            counts[ord(char) - 97] += 1
    return counts


@pytest.fixture
def dataset():
    labels = datasets.ClassLabel(names=["a", "b", "c"])
    features = datasets.Features({"text": datasets.Value("string"), "label": labels, "id": datasets.Value("int32")})
    return datasets.Dataset.from_dict(
        {"text": TEXTS, "label": [i % 3 for i in range(10)], "id": list(range(100, 110))}, features=features
    )


def extract(dataset, backbone, cache_dir, **kwargs):
    return extract_features(dataset, backbone, cache_dir=cache_dir, batch_size=4, progress=False, **kwargs)


def test_feature_columns_follow_the_convention(dataset, tmp_path):
    features = extract(dataset, CountingTextBackbone(), tmp_path, keep_columns=["id"])
    assert features.features == datasets.Features(
        {
            "text": datasets.List(datasets.Value("float32"), length=26),
            "text_present": datasets.Value("bool"),
            "labels": datasets.ClassLabel(names=["a", "b", "c"]),
            "id": datasets.Value("int32"),
        }
    )
    assert features["text"][:] == [histogram(t) for t in TEXTS]
    assert features["labels"][:] == [i % 3 for i in range(10)] and features["id"][:] == list(range(100, 110))
    assert features.cache_files and all(Path(f["filename"]).is_relative_to(tmp_path) for f in features.cache_files)
    torch_rows = features.with_format("torch")[:3]
    assert torch_rows["text"].shape == (3, 26) and torch_rows["text_present"].all()


def test_second_extraction_does_not_call_the_backbone(dataset, tmp_path):
    first_backbone = CountingTextBackbone()
    first, report = extract(dataset, first_backbone, tmp_path, return_report=True)
    assert first_backbone.calls == 3 and not report.cache_hit  # ceil(10 / 4) batches
    again = CountingTextBackbone()
    second, report = extract(dataset, again, tmp_path, return_report=True)
    assert again.calls == 0 and report.cache_hit and report.backbone_calls == 0
    assert second["text"][:] == first["text"][:]
    other_batching = CountingTextBackbone()
    extract_features(dataset, other_batching, cache_dir=tmp_path, batch_size=7, progress=False)
    assert other_batching.calls == 0  # the batch size does not change the features


def test_changed_settings_re_extract(dataset, tmp_path):
    extract(dataset, CountingTextBackbone(), tmp_path)
    scaled = CountingTextBackbone(scale=2.0)  # another identity, e.g. another layer or quantization
    features, report = extract(dataset, scaled, tmp_path, return_report=True)
    assert scaled.calls == 3 and not report.cache_hit
    assert features["text"][0] == [2 * v for v in histogram(TEXTS[0])]
    changed_input = CountingTextBackbone()
    extract(dataset.map(lambda row: {"text": row["text"] + " more"}), changed_input, tmp_path)
    assert changed_input.calls == 3
    policy = CountingTextBackbone()
    extract(dataset, policy, tmp_path, on_error="missing")
    assert policy.calls == 3
    assert len(list(tmp_path.glob("features-*"))) == 4


def test_truncated_cache_file_is_detected_and_rebuilt(dataset, tmp_path):
    _, report = extract(dataset, CountingTextBackbone(), tmp_path, return_report=True)
    shard = next(Path(report.cache_path).glob("shard-*.arrow"))
    shard.write_bytes(shard.read_bytes()[:-100])
    backbone = CountingTextBackbone()
    with pytest.warns(FeatureCacheWarning, match=r"is corrupt \(shard-00000-of-00001.arrow has \d+ bytes"):
        features = extract(dataset, backbone, tmp_path)
    assert backbone.calls == 3 and features["text"][:] == [histogram(t) for t in TEXTS]
    with pytest.raises(ValueError, match="corrupt"):
        Path(report.cache_path, shard.name).write_bytes(b"")
        load_feature_cache(report.cache_path)


def test_same_size_corruption_needs_the_checksum(dataset, tmp_path):
    _, report = extract(dataset, CountingTextBackbone(), tmp_path, return_report=True)
    shard = next(Path(report.cache_path).glob("shard-*.arrow"))
    data = bytearray(shard.read_bytes())
    data[-200:-150] = bytes(50)  # zero part of the last record batch, keeping the size
    shard.write_bytes(bytes(data))
    quick = CountingTextBackbone()
    extract(dataset, quick, tmp_path)
    assert quick.calls == 0  # the default check looks at sizes, schema and row counts only
    thorough = CountingTextBackbone()
    with pytest.warns(FeatureCacheWarning, match="fails its CRC-32 check"):
        extract(dataset, thorough, tmp_path, verify="checksum")
    assert thorough.calls == 3


def test_incomplete_and_stale_caches_are_rebuilt(dataset, tmp_path):
    _, report = extract(dataset, CountingTextBackbone(), tmp_path, return_report=True)
    manifest = Path(report.cache_path, "manifest.json")
    saved = json.loads(manifest.read_text())
    manifest.unlink()
    with pytest.warns(FeatureCacheWarning, match="incomplete"):
        extract(dataset, CountingTextBackbone(), tmp_path)
    manifest.write_text(json.dumps({**saved, "fingerprint": "0000000000000000"}))
    backbone = CountingTextBackbone()
    with pytest.warns(FeatureCacheWarning, match="stale"):
        extract(dataset, backbone, tmp_path)
    assert backbone.calls == 3
    assert load_feature_cache(report.cache_path).num_rows == 10


@pytest.mark.skipif(sys.platform == "win32", reason="accelerate launch with gloo")
def test_two_processes_under_accelerate_launch(dataset, tmp_path):
    from accelerate.test_utils import execute_subprocess_async, get_launch_command

    script = Path(__file__).with_name("distributed_extract.py")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = get_launch_command(
        multi_gpu=True, num_processes=2, num_machines=1, mixed_precision="no", dynamo_backend="no"
    )
    assert command[:2] == ["accelerate", "launch"]
    command = [sys.executable, "-m", "accelerate.commands.launch", *command[2:]]  # the venv's bin may not be on PATH
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    execute_subprocess_async([*command, str(script), str(tmp_path / "cache"), str(out_dir)], env=env)
    ranks = [json.loads((out_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["calls"] for r in ranks] == [3, 3]  # 11 and 10 rows in batches of 4: each rank encodes its shard
    assert ranks[0]["text"] == ranks[1]["text"] and ranks[0]["cache_path"] == ranks[1]["cache_path"]
    texts = [f"sample number {i} " + "abc" * (i % 5) for i in range(21)]
    assert ranks[0]["text"] == [histogram(t) for t in texts]  # merged in the original order
    assert ranks[0]["labels"] == [i % 3 for i in range(21)]
    manifest = json.loads(Path(ranks[0]["cache_path"], "manifest.json").read_text())
    assert [s["num_rows"] for s in manifest["shards"]] == [11, 10]
    merged = load_feature_cache(ranks[0]["cache_path"], verify="checksum")
    assert np.allclose(np.asarray(merged["text"][:]), np.asarray(ranks[0]["text"]))
