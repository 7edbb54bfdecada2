"""Train the balanced model on two views of scikit-learn's digits (a small real feature set, no download).

The two "modalities" are views of the same 8x8 handwritten digit (1,797 images shipped with scikit-learn):
`profile` (the 8 row sums and 8 column sums of the ink, 16-d: the strong view, ~89 % with a linear probe) and
`thumbnail` (the image mean-pooled to 2x2, 4-d: the weak view, ~47 %). Split 1,200 / 300 / 297, seeded.

    accelerate launch --cpu --num_processes 1 recipes/train_digits.py
    accelerate launch --cpu --num_processes 1 recipes/train_digits.py --num_train_epochs 20 --hidden_size 128
    accelerate launch --cpu --num_processes 1 recipes/train_digits.py --preset paper
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
from sklearn.datasets import load_digits
from transformers import HfArgumentParser, set_seed

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer, BalanceTrainingArguments, build_feature_dataset
from mllm_balance.recipe import preset_flags
from mllm_balance.results import format_summary, save_results, trainer_results

DEFAULTS = [
    "--output_dir", "outputs/digits", "--num_train_epochs", "20", "--learning_rate", "1e-2",
    "--per_device_train_batch_size", "32", "--eval_strategy", "epoch", "--save_strategy", "no",
    "--logging_strategy", "epoch", "--report_to", "none", "--disable_tqdm", "true", "--use_cpu", "true",
]  # fmt: skip


@dataclass
class ModelArguments:
    preset: str = field(default="default", metadata={"help": "Method preset: 'default' or 'paper'."})
    hybrid_states: str = field(default="all", metadata={"help": "States hybrid fusion averages: all or final."})
    hybrid_weighting: str = field(default="mean", metadata={"help": "Hybrid fusion over orders: mean or confidence."})
    memory_residual: bool = field(default=True, metadata={"help": "Add the state back after the memory unit."})
    hidden_size: int = field(default=64, metadata={"help": "Adapter output / memory size."})
    mapping_threshold: float = field(default=0.2, metadata={"help": "tau of the cross-modal mapping."})
    data_seed_split: int = field(default=0, metadata={"help": "Seed of the train/validation/test split."})


def digit_views(seed: int) -> dict:
    """Train / validation / test feature datasets of the two digit views."""
    images, labels = load_digits(return_X_y=True)
    images = images.reshape(-1, 8, 8) / 16.0  # (N, 8, 8)
    idx = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[idx], labels[idx]
    views = {
        "profile": np.concatenate([images.sum(1), images.sum(2)], axis=1),  # (N, 16)
        "thumbnail": images.reshape(-1, 2, 4, 2, 4).mean((2, 4)).reshape(len(labels), 4),  # (N, 4)
    }
    splits = {"train": slice(0, 1200), "validation": slice(1200, 1500), "test": slice(1500, None)}
    return {k: build_feature_dataset({m: v[s] for m, v in views.items()}, labels[s]) for k, s in splits.items()}


def main() -> None:
    parser = HfArgumentParser((ModelArguments, BalanceTrainingArguments))
    argv = sys.argv[1:]
    model_args, training_args = parser.parse_args_into_dataclasses(args=preset_flags(argv) + DEFAULTS + argv)
    data = digit_views(model_args.data_seed_split)
    config = BalanceConfig(
        modality_dims={"profile": 16, "thumbnail": 4},
        num_labels=10,
        id2label={i: str(i) for i in range(10)},
        hidden_size=model_args.hidden_size,
        mapping_threshold=model_args.mapping_threshold,
        hybrid_states=model_args.hybrid_states,
        hybrid_weighting=model_args.hybrid_weighting,
        memory_residual=model_args.memory_residual,
    )
    set_seed(training_args.seed)  # the same initial weights whatever ran before (e.g. a first extraction)
    trainer = BalanceTrainer(
        model=BalancedModel(config), args=training_args, train_dataset=data["train"], eval_dataset=data["validation"]
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)  # "last": the newest checkpoint
    results = trainer_results(trainer, dataset="sklearn-digits-two-views", eval_dataset=data["test"])
    if trainer.is_world_process_zero():
        save_results(results, training_args.output_dir)
        print(format_summary(results, trainer.order_state, trainer.state.log_history))


if __name__ == "__main__":
    main()
