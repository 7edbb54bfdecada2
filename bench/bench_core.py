"""Core speed ratios, measured in one run on this machine (not a test; nothing here asserts a time).

1. A BalanceTrainer epoch on cached features vs a hand-written PyTorch loop doing the same math
   (alternating steps in the same order, AdamW, same batches)            target <= 1.5x
2. Exact Shapley scoring for n = 3 vs one training epoch                   target <= 10 %
3. Hybrid-order (n = 3, 6 orders) vs single-order inference                 target <= 2x

    python bench/bench_core.py [--train 20000 --eval 4000 --hidden 256 --batch 64] [--mllm]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, BalanceTrainingArguments, build_feature_dataset

DIMS = {"text": 384, "image": 1280, "audio": 384}  # MiniLM / EfficientNet-Lite0 / Whisper-tiny sizes
MLLM_DIMS = {"text": 3584, "image": 3584, "audio": 3584}  # pooled hidden states of a 7B omni thinker


def feature_set(n: int, seed: int, dims=DIMS):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, n)
    feats = {
        m: (rng.normal(size=(6, d))[labels] + rng.normal(size=(n, d)) * 2).astype(np.float32) for m, d in dims.items()
    }
    return feats, labels


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def hand_written_epoch(model: BalancedModel, feats, labels, order, batch: int, lr: float) -> None:
    """The same math as BalanceTrainer's alternating epoch, written directly in PyTorch."""
    x = {m: torch.from_numpy(v) for m, v in feats.items()}
    y = torch.from_numpy(labels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    perm = torch.randperm(len(y))
    for start in range(0, len(y), batch):
        idx = perm[start : start + batch]
        xb, yb = {m: v[idx] for m, v in x.items()}, y[idx]
        for m in order:
            loss = model(xb, labels=yb, order=order, active_modality=m).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--eval", type=int, default=4000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mllm", action="store_true", help="3584-d features of every modality (7B omni thinker)")
    args = parser.parse_args()
    dims = MLLM_DIMS if args.mllm else DIMS
    torch.manual_seed(0)
    train_x, train_y = feature_set(args.train, 0, dims)
    eval_x, eval_y = feature_set(args.eval, 1, dims)
    config = BalanceConfig(modality_dims=dims, num_labels=6, hidden_size=args.hidden)
    order = list(dims)

    with tempfile.TemporaryDirectory() as out:
        training_args = BalanceTrainingArguments(
            output_dir=out, num_train_epochs=1, per_device_train_batch_size=args.batch, per_device_eval_batch_size=512,
            learning_rate=1e-4, weight_decay=0.0, use_cpu=True, report_to=[], disable_tqdm=True,
            save_strategy="no", logging_strategy="no", order_schedule="fixed", max_grad_norm=0.0,
        )  # fmt: skip
        trainer = BalanceTrainer(
            model=BalancedModel(config), args=training_args,
            train_dataset=build_feature_dataset(train_x, train_y), eval_dataset=build_feature_dataset(eval_x, eval_y),
        )  # fmt: skip
        t_trainer = timed(trainer.train)
        t_shapley = timed(trainer.score_modalities, repeat=3)

    model = BalancedModel(config)
    t_hand = timed(lambda: hand_written_epoch(model, train_x, train_y, order, args.batch, 1e-4))

    model.eval()
    x = {m: torch.from_numpy(v) for m, v in eval_x.items()}

    def infer(mode):
        with torch.inference_mode():
            for start in range(0, args.eval, 512):
                model({m: v[start : start + 512] for m, v in x.items()}, inference_mode=mode)

    t_single = timed(lambda: infer("train_order"), repeat=3)
    t_hybrid = timed(lambda: infer("hybrid"), repeat=3)

    print(f"features: {dims}, hidden {args.hidden}, train {args.train}, eval {args.eval}, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"1. trainer epoch {t_trainer:.2f}s / hand-written epoch {t_hand:.2f}s = {t_trainer / t_hand:.2f}x (<= 1.5x)")
    print(
        f"2. exact Shapley n=3 {t_shapley:.2f}s / epoch {t_trainer:.2f}s = "
        f"{100 * t_shapley / t_trainer:.1f} % (<= 10 %)"
    )
    print(f"3. hybrid {t_hybrid:.3f}s / single-order {t_single:.3f}s = {t_hybrid / t_single:.2f}x (<= 2x)")


if __name__ == "__main__":
    main()
