"""`--report_to tensorboard`: the Shapley values, per-modality accuracies, EDM and order of every epoch are scalars in
the event file, read back with TensorBoard's own reader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from datasets import DatasetDict

from mllm_balance import build_feature_dataset
from mllm_balance.recipe import parse_recipe_args, run_recipe

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, TRAIN_SIZE, BATCH = 3, 64, 32


@pytest.fixture
def features_dir(tmp_path, feature_maker):
    dims = (("text", 6), ("image", 5))
    splits = DatasetDict(
        {
            split: build_feature_dataset(*feature_maker(n, seed=seed, dims=dims))
            for split, n, seed in (("train", TRAIN_SIZE, 1), ("validation", 32, 2), ("test", 32, 3))
        }
    )
    splits.save_to_disk(str(tmp_path / "features"))
    return tmp_path / "features"


def scalars(accumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def test_tensorboard_event_file_holds_the_balance_scalars(tmp_path, features_dir):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "out"
    flags = ["--features_dir", str(features_dir), "--output_dir", str(out), "--num_train_epochs", str(EPOCHS),
             "--hidden_size", "8", "--learning_rate", "0.01", "--use_cpu", "true", "--save_strategy", "no",
             "--per_device_train_batch_size", str(BATCH), "--disable_tqdm", "true",
             "--report_to", "tensorboard"]  # fmt: skip
    results = run_recipe(*parse_recipe_args(str(ROOT / "recipes" / "configs" / "mvsa.yaml"), flags))
    (run_dir,) = (out / "runs").iterdir()
    accumulator = event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    steps = [(epoch + 1) * math.ceil(TRAIN_SIZE / BATCH) for epoch in range(EPOCHS)]
    for m in ("text", "image"):
        logged = scalars(accumulator, f"train/shapley/{m}")
        assert [s for s, _ in logged] == steps
        assert [v for _, v in logged] == pytest.approx([phi[m] for phi in results["shapley_history"]], abs=1e-4)
        assert [s for s, _ in scalars(accumulator, f"train/accuracy/{m}")] == steps
    edm = scalars(accumulator, "train/edm")
    assert [v for _, v in edm] == pytest.approx(results["edm_history"], abs=1e-3)
    # the order set after each epoch, as each modality's position (0 = weakest, trained first)
    final_order = json.loads((out / "config.json").read_text())["train_order"]
    next_orders = [*results["order_history"][1:], final_order]
    for m in ("text", "image"):
        assert [v for _, v in scalars(accumulator, f"train/order/{m}")] == [o.index(m) for o in next_orders]
    assert [s for s, _ in scalars(accumulator, "train/loss")] == steps  # the training loss of every epoch
    assert len(scalars(accumulator, "eval/accuracy")) >= EPOCHS  # the fusion accuracy of every epoch
    assert "train/order/text_summary" in accumulator.Tags()["tensors"]  # and the order as text ("image>text")
