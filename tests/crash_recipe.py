"""A recipe run (`run_recipe`, raw samples -> extraction -> training -> results.json and model) that can stop itself
with SIGKILL at one exact point, for the crash-safety tests:

    python tests/crash_recipe.py <point> <recipe flags>

`<point>` is `none`, `extraction` (right after the first batch of features is written to the cache),
`checkpoint-<epoch>` (right after that epoch's checkpoint is saved), `model-<n>` (halfway through the n-th write of
model.safetensors: one per checkpoint, then the final model) or `results` (halfway through writing results.json).

The raw samples are tiny: each modality's value is its feature vector written as text (`"0.12 -1.30 ..."`), which the
`numbers` backbone parses, so extraction costs nothing and the features carry the signal of `make_features`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers import TrainerCallback

sys.path.insert(0, str(Path(__file__).parent))
from feature_helpers import make_features  # noqa: E402

from mllm_balance import recipe  # noqa: E402
from mllm_balance.backbones import Backbone  # noqa: E402
from mllm_balance.backbones.registry import register_backbone  # noqa: E402

DIMS = (("text", 6), ("image", 5))
SPLITS = (("train", 64, 1), ("validation", 32, 2), ("test", 32, 3))
BACKBONE = "numbers:toy"


class NumberBackbone(Backbone):
    """Parses each value (numbers separated by spaces) into its feature vector."""

    modalities = tuple(m for m, _ in DIMS)
    feature_sizes = dict(DIMS)
    kill_at_call: int | None = None  # SIGKILL this process when `encode` is called for this time

    def __init__(self, target: str = "toy", **options):
        super().__init__()
        self.calls = 0
        self.freeze()

    def identity(self) -> dict:
        return {"type": "numbers", "id": "toy/numbers"}

    def preprocess_one(self, modality: str, value):
        self.check_modality(modality)
        return value

    def encode(self, batch):
        self.calls += 1
        if self.calls == self.kill_at_call:
            kill_self()
        return super().encode(batch)

    def encode_modality(self, modality: str, items: list) -> torch.Tensor:
        return torch.tensor([[float(x) for x in item.split()] for item in items])  # (B, D_m)


def raw_split(n: int, seed: int) -> Dataset:
    vectors, labels = make_features(n, seed=seed, dims=DIMS)
    columns = {m: [" ".join(f"{x:.6f}" for x in row) for row in v] for m, v in vectors.items()}
    features = Features({**{m: Value("string") for m in columns}, "labels": ClassLabel(names=["x", "y", "z"])})
    return Dataset.from_dict({**columns, "labels": labels.tolist()}, features=features)


def load_raw(data_args) -> tuple[str, DatasetDict]:
    """Stands in for `mllm_balance.recipe.load_raw`: the tiny raw splits."""
    return "toy-numbers", DatasetDict({split: raw_split(n, seed) for split, n, seed in SPLITS})


def install() -> None:
    """Route `run_recipe` to the tiny raw splits and register the `numbers` backbone."""
    recipe.load_raw = load_raw
    register_backbone("numbers", NumberBackbone, exist_ok=True)


def kill_self() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class KillAfterCheckpoint(TrainerCallback):
    """SIGKILL right after the checkpoint of `epoch` is complete (`on_save` follows the whole checkpoint write)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_save(self, args, state, control, **kwargs):
        if round(state.epoch) == self.epoch:
            kill_self()


def arm_checkpoint_kill(epoch: int) -> None:
    base = recipe.BalanceTrainer

    class KillingTrainer(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(KillAfterCheckpoint(epoch))

    recipe.BalanceTrainer = KillingTrainer


def arm_results_kill() -> None:
    dump = json.dump

    def half_dump(obj, fp, **kwargs):
        if "results.json" not in os.path.basename(getattr(fp, "name", "")):
            return dump(obj, fp, **kwargs)
        text = json.dumps(obj, **kwargs)
        fp.write(text[: len(text) // 2])
        fp.flush()
        kill_self()

    json.dump = half_dump


def arm_model_kill(nth: int) -> None:
    import safetensors.torch
    import transformers.modeling_utils as modeling_utils

    save_file = modeling_utils.safe_save_file
    calls = []

    def half_save_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) < nth:
            return save_file(tensors, filename, metadata=metadata)
        data = safetensors.torch.save(tensors, metadata=metadata)
        with open(filename, "wb") as f:
            f.write(data[: len(data) // 2])
        kill_self()

    modeling_utils.safe_save_file = half_save_file


def arm(point: str) -> None:
    if point == "extraction":
        NumberBackbone.kill_at_call = 2
    elif point.startswith("checkpoint-"):
        arm_checkpoint_kill(int(point.split("-", 1)[1]))
    elif point == "results":
        arm_results_kill()
    elif point.startswith("model-"):
        arm_model_kill(int(point.split("-", 1)[1]))
    elif point != "none":
        raise ValueError(f"unknown kill point {point!r}")


def main(argv: list[str]) -> None:
    install()
    arm(argv[0])
    recipe.run_recipe(*recipe.parse_recipe_args(None, argv[1:]))


if __name__ == "__main__":
    main(sys.argv[1:])
