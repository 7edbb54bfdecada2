"""Pushing adapters: exactly the expected files and card go to the Hub client (intercepted; no network)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import torch
import yaml
from hub_helpers import TINY_ID, full_results
from PIL import Image
from safetensors.torch import load

from mllm_balance.hub import push_adapters_to_hub
from mllm_balance.model_card import render_model_card
from mllm_balance.results import save_results


class Recorder:
    """Stands in for the Hub: records `create_repo` and the folder given to `upload_folder`."""

    def __init__(self):
        self.repos: list[tuple[str, dict]] = []
        self.uploads: list[dict] = []

    def create_repo(self, repo_id, **kwargs):
        self.repos.append((repo_id, kwargs))
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        root = Path(folder_path)
        files = {}
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix()
            ignored = any(
                Path(name).match(p) or name.split("/")[0].startswith("checkpoint-") for p in ignore_patterns or []
            )
            if path.is_file() and not ignored:
                files[name] = path.read_bytes()
        self.uploads.append({"repo_id": repo_id, "files": files, **kwargs})
        return SimpleNamespace(commit_url=f"https://hub.invalid/{repo_id}/commit/0")


@pytest.fixture
def hub(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: recorder.create_repo(repo_id, **kw)
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: recorder.upload_folder(**kw))

    def refuse(*args, **kwargs):
        raise AssertionError("a Hub call that the test does not intercept")

    for name in ("create_commit", "upload_file", "preupload_lfs_files", "model_info"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, refuse)
    return recorder


def test_push_sends_exactly_the_adapter_files(model, hub):
    info = push_adapters_to_hub(model, "me/balanced-kaomoji", full_results(), private=True, token="hf_fake")
    assert info.commit_url.endswith("/commit/0")
    assert hub.repos == [
        ("me/balanced-kaomoji", {"private": True, "exist_ok": True, "repo_type": "model", "token": "hf_fake"})
    ]
    (upload,) = hub.uploads
    assert upload["repo_id"] == "me/balanced-kaomoji" and upload["repo_type"] == "model"
    assert sorted(upload["files"]) == ["README.md", "config.json", "contributions.png", "model.safetensors"]
    weights = load(upload["files"]["model.safetensors"])
    assert set(weights) == set(model.state_dict())
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    card = upload["files"]["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == TINY_ID and meta["library_name"] == "mllm-balance"
    assert 'model="me/balanced-kaomoji"' in card
    assert card == str(
        render_model_card(
            model.config,
            full_results(),
            repo_id="me/balanced-kaomoji",
            plot_file="contributions.png",
            num_parameters=sum(p.numel() for p in model.parameters()),
        )
    )
    assert Image.open(io.BytesIO(upload["files"]["contributions.png"])).format == "PNG"


def test_push_without_history_sends_no_plot(model, hub):
    model.config.shapley_history = None
    push_adapters_to_hub(model, "me/x")
    assert sorted(hub.uploads[0]["files"]) == ["README.md", "config.json", "model.safetensors"]
    assert "No evaluation results" in hub.uploads[0]["files"]["README.md"].decode()


def test_push_reads_results_from_a_path(model, hub, tmp_path):
    save_results(full_results(), str(tmp_path))
    push_adapters_to_hub(model, "me/x", tmp_path)
    assert "| 0.5 | 66.50 |" in hub.uploads[0]["files"]["README.md"].decode()
    with pytest.raises(ValueError, match="no results found"):
        push_adapters_to_hub(model, "me/x", tmp_path / "missing")


def _trainer(model, output_dir):
    from mllm_balance import BalanceTrainer, BalanceTrainingArguments, build_feature_dataset

    rng = np.random.default_rng(0)
    data = build_feature_dataset(
        {m: rng.standard_normal((12, d)).astype(np.float32) for m, d in model.config.modality_dims.items()},
        rng.integers(0, 3, 12),
    )
    args = BalanceTrainingArguments(
        output_dir=str(output_dir),
        use_cpu=True,
        report_to="none",
        hub_model_id="me/balanced-kaomoji",
        save_strategy="no",
    )
    return BalanceTrainer(model=model, args=args, train_dataset=data, eval_dataset=data)


def test_trainer_push_produces_the_same_card(model, hub, tmp_path, monkeypatch):
    """`BalanceTrainer.push_to_hub` (its `create_model_card` delegates to the hub module) sends the same card."""
    import transformers.trainer

    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: huggingface_hub.HfApi())
    trainer = _trainer(model, tmp_path / "run")
    save_results(full_results(), trainer.args.output_dir)
    trainer.push_to_hub()
    push_adapters_to_hub(trainer.model, "me/balanced-kaomoji", full_results())
    from_trainer, from_push = hub.uploads
    assert from_trainer["files"]["README.md"] == from_push["files"]["README.md"]
    assert from_trainer["files"]["contributions.png"] == from_push["files"]["contributions.png"]
    assert from_trainer["files"]["model.safetensors"] == from_push["files"]["model.safetensors"]


def test_model_push_to_hub_is_the_adapter_push(model, hub):
    """`BalancedModel.push_to_hub(repo, results=..., **kwargs)` sends what `push_adapters_to_hub` sends, with the
    same repo options (the `max_shard_size` of `PreTrainedModel.push_to_hub` is accepted: adapters are one file)."""
    model.push_to_hub("me/balanced-kaomoji", results=full_results(), max_shard_size="1GB", private=True)
    push_adapters_to_hub(model, "me/balanced-kaomoji", full_results(), private=True)
    first, second = hub.uploads
    assert first == second and "Fusion accuracy" in first["files"]["README.md"].decode()
    assert hub.repos[0] == hub.repos[1] and hub.repos[0][1]["private"] is True
