"""`BalanceTrainer.push_to_hub` on the real `Trainer.push_to_hub` path, with nothing of the trainer patched: the
README.md it would upload is the library's card, not transformers' generic one (uploads intercepted; no network).

Mutant 6 of issue 13 (`BalanceTrainer.create_model_card` removed) makes these tests fail."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import yaml
from hub_helpers import TINY_ID, full_results

from mllm_balance import BalanceTrainer, BalanceTrainingArguments, build_feature_dataset
from mllm_balance.results import save_results

REPO = "me/balanced-kaomoji"


@pytest.fixture
def uploads(monkeypatch):
    """Intercepts the Hub client: `create_repo` answers, `upload_folder` records the files it would send, and every
    other call that could reach the Hub fails the test."""
    import transformers.trainer

    sent: list[dict[str, bytes]] = []

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        assert repo_id == REPO
        root = Path(folder_path)
        files = {}
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix()
            ignored = any(Path(name).match(p) for p in ignore_patterns or []) or name.startswith("checkpoint-")
            if path.is_file() and not ignored:
                files[name] = path.read_bytes()
        sent.append(files)
        return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}/commit/0")

    def refuse(*args, **kwargs):
        raise AssertionError("a Hub call that the test does not intercept")

    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: SimpleNamespace(repo_id=repo_id)
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    for name in ("create_commit", "upload_file", "preupload_lfs_files", "model_info", "whoami"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, refuse)
    for name in ("create_commit", "upload_file", "upload_folder", "create_repo", "model_info"):
        monkeypatch.setattr(huggingface_hub, name, refuse)
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: huggingface_hub.HfApi())
    return sent


def make_trainer(model, output_dir) -> BalanceTrainer:
    rng = np.random.default_rng(0)
    data = build_feature_dataset(
        {m: rng.standard_normal((12, d)).astype(np.float32) for m, d in model.config.modality_dims.items()},
        rng.integers(0, 3, 12),
    )
    args = BalanceTrainingArguments(
        output_dir=str(output_dir), use_cpu=True, report_to="none", hub_model_id=REPO, save_strategy="no"
    )
    return BalanceTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)


def test_trainer_push_uploads_the_librarys_card(model, uploads, tmp_path):
    trainer = make_trainer(model, tmp_path / "run")
    trainer.set_order(["image", "audio", "text"])  # saved into the config by push_to_hub, then into the card
    save_results(full_results(), trainer.args.output_dir)
    trainer.push_to_hub()
    (files,) = uploads
    assert {"README.md", "config.json", "model.safetensors", "contributions.png"} <= set(files)
    card = files["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "mllm-balance" and meta["base_model"] == TINY_ID
    # the library's Shapley / EDM section, filled from results.json (shapley 30 / 18 / 12, EDM 60)
    assert "### Modality contributions" in card
    assert "**Equilibrium deviation metric (EDM): 60" in card
    assert "| text | 30" in card
    assert "image → audio → text" in card  # the trainer's order, recorded by `_save` before the card
    assert "![Shapley value of each modality after every scored epoch](contributions.png)" in card
    # not transformers' generic Trainer card
    assert "This model is a fine-tuned version of" not in card and "Training hyperparameters" not in card


def test_trainer_push_without_results_still_uploads_the_librarys_card(model, uploads, tmp_path):
    trainer = make_trainer(model, tmp_path / "run")
    trainer.push_to_hub()
    (files,) = uploads
    card = files["README.md"].decode()
    assert yaml.safe_load(card.split("---\n")[1])["library_name"] == "mllm-balance"
    assert "No evaluation results were provided with this upload." in card
    assert "This model is a fine-tuned version of" not in card


def test_create_model_card_passes_its_metadata_to_the_card(model, tmp_path):
    """`trainer.create_model_card(license=..., language=..., tags=...)` writes them into the README's metadata."""
    trainer = make_trainer(model, tmp_path / "run")
    trainer.create_model_card(license="mit", language="fr", tags="kaomoji")
    card = (tmp_path / "run" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "mit"
    assert meta["language"] in ("fr", ["fr"])
    assert "kaomoji" in meta["tags"] and meta["library_name"] == "mllm-balance"
