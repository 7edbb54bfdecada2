"""Sharing trained adapters: saving them (weights, config, model card, contribution plot) and pushing them to the Hub.

A [`BalancedModel`] holds only what trains (adapters, mapping statistics, memory unit, classifier); the frozen
backbone is never saved or pushed, only referenced in the config ([`~mllm_balance.reference.record_backbone`]).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, ModelCard
from safetensors import safe_open

from .atomic import staged_folder
from .model_card import LIBRARY_NAME, write_model_card
from .results import load_results


def save_adapters(
    model: torch.nn.Module,
    directory: str | os.PathLike,
    results: Mapping[str, Any] | None = None,
    **card_kwargs: Any,
) -> list[str]:
    """Write what a user needs next to the backbone: trained weights (safetensors), config, card and plot.

    Args:
        model ([`BalancedModel`]): the trained model (its config should record the backbone, see
            [`~mllm_balance.reference.record_backbone`]).
        directory (`str`): output folder.
        results (`Mapping`, *optional*): the `results.json` dict for the card.
        card_kwargs: passed to [`~mllm_balance.model_card.render_model_card`] (`repo_id`, `license`, `tags`, ...).

    Returns:
        `list[str]`: the file names written.
    """
    if not model.config.backbone_id:
        warnings.warn(
            "config.backbone_id is not set: the saved adapters cannot be matched to their backbone. Call "
            "mllm_balance.reference.record_backbone(model.config, backbone) before saving",
            stacklevel=2,
        )
    os.makedirs(directory, exist_ok=True)
    state_dict = model.trainable_state_dict()
    expected = set(state_dict)
    with staged_folder(directory) as staging:  # weights and config land whole, config.json last
        model.save_pretrained(staging, state_dict=dict(state_dict))  # (save_pretrained empties the dict it is given)
    write_model_card(directory, model, results, **card_kwargs)
    saved = _safetensors_keys(directory)
    if saved != expected:
        raise RuntimeError(f"the saved weights differ from the trained ones in {sorted(saved ^ expected)[:10]}")
    return sorted(os.listdir(directory))


def push_adapters_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    results: Mapping[str, Any] | str | os.PathLike | None = None,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    api: HfApi | None = None,
    **card_kwargs: Any,
):
    """Push the trained weights, config, model card and contribution plot (never the backbone) to the Hub.

    Args:
        model ([`BalancedModel`]): the trained model.
        repo_id (`str`): the Hub repo (created if missing).
        results (`Mapping` or `str`, *optional*): the `results.json` dict, or its path (or its folder).
        commit_message, commit_description, private, token, revision, create_pr: as in
            `huggingface_hub.HfApi.upload_folder` / `create_repo`.
        api (`HfApi`, *optional*): the client to use.
        card_kwargs: passed to [`~mllm_balance.model_card.render_model_card`] (`license`, `language`, `tags`, ...).

    Returns:
        The `CommitInfo` of the upload.
    """
    if isinstance(results, (str, os.PathLike)):
        path = results
        results = load_results(path)
        if results is None:
            raise ValueError(f"no results found at {path}")
    api = api or HfApi(token=token, library_name=LIBRARY_NAME)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model", token=token)
    repo_id = getattr(repo_url, "repo_id", None) or repo_id
    with tempfile.TemporaryDirectory() as folder:
        save_adapters(model, folder, results, repo_id=repo_id, **card_kwargs)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            commit_message=commit_message or "Upload balanced multimodal adapters",
            commit_description=commit_description,
            revision=revision,
            create_pr=create_pr,
            token=token,
        )


def create_trainer_model_card(
    trainer: Any,
    *,
    language: str | None = None,
    license: str | None = None,
    tags: str | list[str] | None = None,
    model_name: str | None = None,
    finetuned_from: str | None = None,
    tasks: str | list[str] | None = None,
    dataset_tags: str | list[str] | None = None,
    dataset: str | list[str] | None = None,
    dataset_args: str | list[str] | None = None,
    results: Mapping[str, Any] | None = None,
) -> ModelCard | None:
    """Body of `BalanceTrainer.create_model_card`: the card of [`push_adapters_to_hub`], written into
    `trainer.args.output_dir` (with the contribution plot), filled from `<output_dir>/results.json` when present.

    `Trainer.push_to_hub` saves the model (its config then records the last order and the Shapley history), calls
    this, then uploads the output folder. `finetuned_from`, `tasks`, `dataset_tags` and `dataset_args` are accepted
    for compatibility and unused: the base model is the recorded backbone.
    """
    del finetuned_from, tasks, dataset_tags, dataset_args
    if not trainer.is_world_process_zero():
        return None
    model = trainer.accelerator.unwrap_model(trainer.model)
    output_dir = trainer.args.output_dir
    if results is None:
        results = load_results(output_dir)
    repo_id = getattr(trainer, "hub_model_id", None) or trainer.args.hub_model_id or model_name
    return write_model_card(
        output_dir,
        model,
        results,
        repo_id=repo_id,
        license=license,
        language=language,
        tags=[tags] if isinstance(tags, str) else tags,
        datasets=dataset,
    )


def _safetensors_keys(directory: str | os.PathLike) -> set[str]:
    keys: set[str] = set()
    for file in Path(directory).glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            keys.update(f.keys())
    return keys


__all__ = ["save_adapters", "push_adapters_to_hub", "create_trainer_model_card"]
