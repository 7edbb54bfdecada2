"""Crash safety with real processes: a recipe that kills itself with SIGKILL during extraction, halfway through a
checkpoint's weights (after the second epoch's checkpoint exists) or halfway through results.json leaves files that
the next run reuses or detects; resuming ends like the run never interrupted. A loss that turns NaN stops the run.

The child processes run `tests/crash_recipe.py`, which stops itself at the exact point (no sleeps, no polling)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import crash_recipe
import pytest
import torch
from feature_helpers import make_args, make_features
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from mllm_balance import BalanceConfig, BalancedModel, BalanceTrainer
from mllm_balance.atomic import atomic_open
from mllm_balance.backbones.registry import register_backbone
from mllm_balance.checkpoints import checkpoint_folders, incomplete_reason, last_checkpoint
from mllm_balance.feature_cache import load_feature_cache
from mllm_balance.recipe import parse_recipe_args, run_recipe
from mllm_balance.results import load_results
from mllm_balance.trainer import NonFiniteTrainingError

ROOT = Path(__file__).resolve().parents[1]
KILLED = -signal.SIGKILL


@dataclass
class Child:
    returncode: int
    stdout: str
    stderr: str


def recipe_flags(out: Path, cache: Path, *extra: str) -> list[str]:
    """3 epochs of 4 steps (64 training rows, batches of 16), a checkpoint per epoch; dropout makes the RNG count."""
    return ["--output_dir", str(out), "--feature_cache_dir", str(cache), "--backbone", crash_recipe.BACKBONE,
            "--num_train_epochs", "3", "--per_device_train_batch_size", "16", "--extraction_batch_size", "8",
            "--learning_rate", "0.01", "--hidden_size", "8", "--adapter_dropout", "0.2", "--save_strategy", "epoch",
            "--use_cpu", "true", "--disable_tqdm", "true", "--report_to", "none", *extra]  # fmt: skip


def run_child(point: str, flags: list[str]) -> Child:
    """Run the recipe in a new Python process that SIGKILLs itself at `point` (see tests/crash_recipe.py)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    command = [sys.executable, str(Path(crash_recipe.__file__)), point, *flags]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    stdout, stderr = proc.communicate(timeout=300)
    return Child(proc.returncode, stdout, stderr)


def run_here(flags: list[str]) -> dict:
    """The same recipe in this process, never killed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crash_recipe.recipe, "load_raw", crash_recipe.load_raw)
        register_backbone("numbers", crash_recipe.NumberBackbone, exist_ok=True)
        return run_recipe(*parse_recipe_args(None, flags))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


@dataclass
class Interrupted:
    base: Path
    cache: Path
    run: Path  # the output folder of the killed run (a test resumes in it)
    after_kill: Path  # a copy of `run` as the kill left it
    cache_after_extraction_kill: list[str]
    extraction_kill: Child
    checkpoint_kill: Child
    reference: dict  # results of the same run never interrupted, in `base / "reference"`


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Interrupted:
    """A run killed during extraction; the next run (rebuilding the cache) killed halfway through writing the
    weights of its epoch-3 checkpoint, after those of epochs 1 and 2 were saved; the run never interrupted."""
    base = tmp_path_factory.mktemp("crash")
    cache, run = base / "cache", base / "run"
    extraction_kill = run_child("extraction", recipe_flags(run, cache))
    cache_after = sorted(p.name for p in cache.iterdir())
    checkpoint_kill = run_child("model-3", recipe_flags(run, cache))
    shutil.copytree(run, base / "after-kill")
    reference = run_here(recipe_flags(base / "reference", cache))
    return Interrupted(base, cache, run, base / "after-kill", cache_after, extraction_kill, checkpoint_kill, reference)


def test_a_run_killed_during_extraction_leaves_a_cache_the_next_run_rebuilds(interrupted):
    assert interrupted.extraction_kill.returncode == KILLED, interrupted.extraction_kill.stderr[-3000:]
    partial = [name for name in interrupted.cache_after_extraction_kill if name.endswith(".partial")]
    assert len(partial) == 1 and len(interrupted.cache_after_extraction_kill) == 1  # no split finished
    notice = f"is incomplete (an interrupted extraction left {partial[0]} behind); rebuilding it"
    assert notice in interrupted.checkpoint_kill.stderr
    caches = sorted(interrupted.cache.iterdir())
    assert len(caches) == 3 and not any(p.name.endswith(".partial") for p in caches)  # train, validation, test
    train = next(load_feature_cache(p, verify="checksum") for p in caches if p.name == partial[0][: -len(".partial")])
    vectors, labels = make_features(64, seed=1, dims=crash_recipe.DIMS)  # what the numbers backbone parses
    torch.testing.assert_close(torch.tensor(train["text"]), torch.from_numpy(vectors["text"]), atol=1e-5, rtol=0)
    assert train["labels"] == labels.tolist()


def test_a_run_killed_while_writing_a_checkpoint_leaves_only_whole_checkpoints(interrupted):
    assert interrupted.checkpoint_kill.returncode == KILLED, interrupted.checkpoint_kill.stderr[-3000:]
    after = interrupted.after_kill
    assert [p.name for p in checkpoint_folders(after)] == ["checkpoint-12", "checkpoint-8", "checkpoint-4"]
    assert incomplete_reason(after / "checkpoint-8") is None and incomplete_reason(after / "checkpoint-4") is None
    # the half-written weights are in a hidden staging folder, nothing loadable is in the checkpoint itself
    staged = list((after / "checkpoint-12").glob(".staging-*/model.safetensors"))
    assert len(staged) == 1 and [p.name for p in (after / "checkpoint-12").iterdir()] == [staged[0].parent.name]
    with pytest.raises(SafetensorError):
        safe_open(str(staged[0]), "pt")
    with pytest.raises(OSError):
        BalancedModel.from_pretrained(after / "checkpoint-12")
    assert last_checkpoint(after) == str(after / "checkpoint-8")
    assert not (after / "results.json").exists() and not (after / "model.safetensors").exists()


def same_json(a, b) -> bool:
    """Equal results, a NaN (an undefined EDM of a tiny model's epoch) equal to a NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_resuming_after_the_kill_ends_like_the_run_never_interrupted(interrupted, caplog):
    run = interrupted.run
    results = run_here(recipe_flags(run, interrupted.cache, "--resume_from_checkpoint", "last"))
    assert "skipping checkpoint" in caplog.text and "checkpoint-12" in caplog.text
    reference = interrupted.base / "reference"
    for key, value in weights(reference).items():
        torch.testing.assert_close(weights(run)[key], value, rtol=0, atol=1e-6, msg=key)
    assert same_json(results, interrupted.reference)
    assert same_json(
        json.loads((run / "results.json").read_text()), json.loads((reference / "results.json").read_text())
    )
    assert len(results["order_history"]) == 3
    # epochs 1 and 2 were not trained again: their checkpoints are the killed run's files, untouched
    for name in ("checkpoint-4/optimizer.pt", "checkpoint-8/model.safetensors"):
        assert (run / name).stat().st_mtime_ns == (interrupted.after_kill / name).stat().st_mtime_ns
    assert incomplete_reason(run / "checkpoint-12") is None and not list((run / "checkpoint-12").glob(".staging-*"))


def test_resuming_from_a_modified_checkpoint_changes_the_result(interrupted):
    out = interrupted.base / "modified"
    checkpoint = out / "checkpoint-8"
    shutil.copytree(interrupted.after_kill / "checkpoint-8", checkpoint)
    save_file({k: v + 0.3 for k, v in weights(checkpoint).items()}, str(checkpoint / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    results = run_here(recipe_flags(out, interrupted.cache, "--resume_from_checkpoint", str(checkpoint)))
    reference = weights(interrupted.base / "reference")
    gap = max(float((weights(out)[k] - v).abs().max()) for k, v in reference.items())
    assert gap > 0.05
    assert results["order_history"][:2] == interrupted.reference["order_history"][:2]  # read from the checkpoint


def test_a_run_killed_while_writing_results_leaves_the_previous_results(interrupted):
    out = interrupted.base / "results-kill"
    shutil.copytree(interrupted.base / "reference", out)
    before = (out / "results.json").read_text()
    flags = recipe_flags(out, interrupted.cache, "--num_train_epochs", "1", "--save_strategy", "no", "--seed", "7")
    child = run_child("results", flags)
    assert child.returncode == KILLED, child.stderr[-3000:]
    assert (out / "results.json").read_text() == before
    assert same_json(load_results(out), interrupted.reference)
    half = list(out.glob(".results.json.*.tmp"))  # where the killed write went
    assert len(half) == 1 and half[0].stat().st_size > 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(half[0].read_text())


# ------------------------------------------------------------------------------------------- in one process
def test_a_failed_model_save_leaves_the_previous_model(tmp_path, tiny_datasets, monkeypatch):
    import transformers.modeling_utils as modeling_utils

    trainer = make_trainer(tmp_path, tiny_datasets, num_train_epochs=1)
    trainer.train()
    trainer.save_model(str(tmp_path / "out"))
    saved = weights(tmp_path / "out")
    with torch.no_grad():
        trainer.model.classifier.weight.add_(1.0)

    def half_then_fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 100)
        raise OSError("No space left on device")

    monkeypatch.setattr(modeling_utils, "safe_save_file", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        trainer.save_model(str(tmp_path / "out"))
    loaded = BalancedModel.from_pretrained(tmp_path / "out")
    torch.testing.assert_close(loaded.classifier.weight, saved["classifier.weight"], rtol=0, atol=0)
    assert not list((tmp_path / "out").glob(".staging-*"))


def test_atomic_open_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    with pytest.raises(TypeError), atomic_open(path) as f:
        json.dump({"new": object()}, f)
    assert path.read_text() == '{"old": true}' and [p.name for p in tmp_path.iterdir()] == ["results.json"]


class Poison(TrainerCallback):
    """Sets the classifier's weights to `value` after optimizer step `step`."""

    def __init__(self, step: int, value: float):
        self.step, self.value = step, value

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            with torch.no_grad():
                model.classifier.weight.fill_(self.value)


def make_trainer(out, datasets, callbacks=(), **overrides) -> BalanceTrainer:
    torch.manual_seed(0)
    config = BalanceConfig(modality_dims={"a": 6, "b": 5}, num_labels=3, hidden_size=8)
    args = make_args(out, **{"num_train_epochs": 3, "save_strategy": "epoch", "initial_order": "a,b", **overrides})
    return BalanceTrainer(model=BalancedModel(config), args=args, train_dataset=datasets[0],
                          eval_dataset=datasets[1], callbacks=list(callbacks))  # fmt: skip


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("alternation", ["step", "joint"])
def test_a_loss_that_turns_non_finite_stops_the_run_and_keeps_the_last_checkpoint(
    tmp_path, tiny_datasets, alternation, value
):
    # 96 rows / 16 = 6 steps per epoch: poisoned after step 8, the loss of step 9 (epoch 2) is not finite
    trainer = make_trainer(tmp_path, tiny_datasets, [Poison(8, value)], alternation=alternation)
    with pytest.raises(NonFiniteTrainingError) as caught:
        trainer.train()
    step = f" (the {trainer.order_state.order[0]!r} step)" if alternation == "step" else ""  # the first of the order
    assert f"at epoch 2, step 9{step}: training stopped" in str(caught.value)
    assert f"the last checkpoint, {tmp_path / 'checkpoint-6'}, is kept" in str(caught.value)
    assert trainer.state.global_step == 8  # the step was never applied
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["checkpoint-6"]
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-6")
    assert all(bool(torch.isfinite(v).all()) for v in weights(tmp_path / "checkpoint-6").values())


@pytest.mark.filterwarnings("ignore:EDM is undefined")  # the poisoned model scores no modality
def test_weights_that_turn_non_finite_are_never_saved(tmp_path, tiny_datasets):
    trainer = make_trainer(tmp_path, tiny_datasets, [Poison(6, float("nan"))])  # after the last step of epoch 1
    with pytest.raises(NonFiniteTrainingError, match=r"weights \['classifier.weight'\] are NaN or infinite at epoch 1"):
        trainer.train()
    assert last_checkpoint(tmp_path) is None and not (tmp_path / "checkpoint-6" / "model.safetensors").exists()
